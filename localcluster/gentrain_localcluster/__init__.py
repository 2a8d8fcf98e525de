"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, built from Go modules) and a node agent that runs pods as local processes.

Used by gentrain's integration tests and `make demo`; never by the operator itself.
"""
