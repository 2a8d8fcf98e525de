"""The real node (`GENTRAIN_NODE=kubelet`): the upstream kubelet and kube-proxy (built from
the Kubernetes module, tools/k8s/node), Debian's containerd and runc, and the CNI plugins,
so that pods run their images, as their user, on a read-only root, under enforced limits.

The node agent (`nodeagent`) stays the fast tier: it runs pods as host processes from the
project's environment, with no images to build. This tier is what users run.
"""
