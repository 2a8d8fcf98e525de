"""Pod addresses: a network namespace per pod, or the host's network when that is impossible."""

from __future__ import annotations

import threading
from pathlib import Path

from .. import dns, network

# What a kubelet writes for a pod with its own network (pkg/kubelet/kubelet_pods.go).
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def hosts_file(pod_ip: str, hostname: str, subdomain: str | None, namespace: str) -> str:
    """The pod's /etc/hosts as a kubelet writes it: its own name at its own address, so
    that a program resolving its host name (torchrun, gloo) gets the address its peers
    reach, at once, without asking any DNS server."""
    names = [hostname]
    if subdomain:
        names.insert(0, f"{hostname}.{subdomain}.{namespace}.svc.cluster.local")
    return HOSTS_HEADER + MANAGED_HOSTS + "\n" + "\t".join([pod_ip, *names]) + "\n"


# A pod whose dnsPolicy is `Default` would get the host's resolver, which is unreachable
# from this network (each lookup waited 10 s): it asks the gateway, which answers only for
# the cluster's domain, and fails at once for anything else.
HOST_RESOLV_CONF = f"nameserver {network.GATEWAY}\noptions timeout:1 attempts:1\n"


def resolv_conf(dns_policy: str | None, namespace: str) -> str:
    """ClusterFirst (the default) and ClusterFirstWithHostNet: the cluster's DNS, with the
    kubelet's search path."""
    if dns_policy in ("Default", "None"):
        return HOST_RESOLV_CONF
    return dns.resolv_conf(namespace)


def write_network_files(
    directory: Path,
    pod_ip: str,
    hostname: str,
    subdomain: str | None,
    namespace: str,
    dns_policy: str | None,
) -> tuple[Path, Path]:
    """The pod's hosts and resolv.conf, written into its directory; their paths."""
    hosts, resolv = directory / "etc-hosts", directory / "resolv.conf"
    hosts.write_text(hosts_file(pod_ip, hostname, subdomain, namespace))
    resolv.write_text(resolv_conf(dns_policy, namespace))
    for path in (hosts, resolv):
        path.chmod(0o644)
    return hosts, resolv


class PodNetwork:
    """Addresses for one node's pods: 10.244.<subnet>.2 upwards, so that the pods of a
    second node agent (another subnet, as each node of a cluster has its own pod CIDR) on
    the same bridge never share an address with the first's."""

    def __init__(self, isolated: bool, host_ip: str, subnet: int = 0) -> None:
        if not 0 <= subnet < 256:
            raise ValueError(f"pod subnet {subnet}: 0 to 255 (10.244.<subnet>.0/24)")
        self.isolated = isolated
        self.host_ip = host_ip
        self._lock = threading.Lock()
        self._next = subnet * 256 + (2 if subnet == 0 else 1)  # 10.244.0.1: the gateway
        self._free: list[int] = []
        self._by_pod: dict[str, int] = {}

    def setup(self, pod_uid: str) -> str:
        if not self.isolated:
            return self.host_ip
        with self._lock:
            index = self._free.pop(0) if self._free else self._next
            if index == self._next:
                self._next += 1
            self._by_pod[pod_uid] = index
        return network.create_pod_network(pod_uid, index)

    def release(self, pod_uid: str) -> None:
        if not self.isolated:
            return
        network.delete_pod_network(pod_uid)
        with self._lock:
            index = self._by_pod.pop(pod_uid, None)
            if index is not None:
                self._free.append(index)

    def namespace_path(self, pod_uid: str) -> str | None:
        return str(network.namespace_path(pod_uid)) if self.isolated else None
