"""A node agent standing in for the kubelet and a container runtime.

It registers a Node, keeps its status and Lease fresh, and runs the containers of the
pods bound to it as local processes — each pod in its own network namespace, each
container in its own mount namespace with the pod's volumes bind-mounted where the pod
spec says. Images are not pulled: a container's command runs with this machine's
programs and the project's Python environment.
"""
