"""The kubelet's and kube-proxy's configuration files (pure) and command lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import dns
from ..layout import NODE_NAME
from ..network import GATEWAY, POD_CIDR


@dataclass(frozen=True)
class KubeletFiles:
    root_dir: Path  # the kubelet's --root-dir: pod volumes, plugins, checkpoints
    config: Path
    kubeconfig: Path
    ca: Path
    serving_cert: Path
    serving_key: Path
    runtime_socket: Path


def kubelet_config(files: KubeletFiles) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This host is cgroup v1 (hybrid, no systemd): kubelet 1.35+ refuses it unless told,
        # and containerd 1.6 cannot report its cgroup driver (no RuntimeConfig RPC).
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{files.runtime_socket}",
        # The API server reaches the kubelet (logs, exec, port-forward) with a client
        # certificate of the cluster's CA; everything else is refused.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(files.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(files.serving_cert),
        "tlsPrivateKeyFile": str(files.serving_key),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "failSwapOn": False,
        # A development machine's disk is shared with everything else: evict only when it
        # is really full, not at upstream's 10-15% free.
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
            "nodefs.inodesFree": "2%",
        },
        # The images were imported, not pulled, and no registry can give them back: never
        # collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        # The cluster's DNS (dns.py): pods under ClusterFirst get it and its search path.
        "clusterDNS": [dns.SERVER],
        "clusterDomain": dns.CLUSTER_DOMAIN,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "maxPods": 110,
        "shutdownGracePeriod": "0s",
    }


def kubelet_argv(binary: Path, files: KubeletFiles) -> list[str]:
    return [
        str(binary),
        f"--config={files.config}",
        f"--kubeconfig={files.kubeconfig}",
        f"--root-dir={files.root_dir}",
        f"--hostname-override={NODE_NAME}",
        # The API server, the operator and Prometheus reach the node where pods reach the
        # API server: the bridge's gateway.
        f"--node-ip={GATEWAY}",
        "--v=1",
    ]


def kube_proxy_config(kubeconfig: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": str(POD_CIDR),
        "hostnameOverride": NODE_NAME,
        "bindAddress": "0.0.0.0",
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Pods share one bridge without br_netfilter: a reply from a Service's backend to a
        # pod on the same bridge would skip the un-NAT, so every Service hop is masqueraded.
        "iptables": {"masqueradeAll": True},
        # Leave the host's conntrack table size alone (a sandbox may not let us set it).
        "conntrack": {"maxPerCore": 0},
    }


def kube_proxy_argv(binary: Path, config: Path) -> list[str]:
    return [str(binary), f"--config={config}", "--v=1"]


def write_yaml(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
