"""The pod network: one Linux bridge on the host and one network namespace per pod.

Each pod gets its own namespace with a veth pair into the bridge and a distinct address
in POD_CIDR, so that two pods can listen on the same port, as they can on a real node,
and the operator reaches a trainer at `http://<podIP>:9090` exactly as it would there.
Everything stays on this machine: the bridge has no uplink and no route leaves it.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

BRIDGE = "gentrain0"
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
GATEWAY = str(next(POD_CIDR.hosts()))  # 10.244.0.1, the host side of the bridge


class NetworkError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def available() -> tuple[bool, str]:
    """Whether this process may create network namespaces (root with iproute2)."""
    import os
    import shutil

    if shutil.which("ip") is None:
        return False, "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return False, "creating network namespaces needs root"
    return True, ""


def ensure_bridge() -> None:
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    addresses = _ip("-o", "addr", "show", "dev", BRIDGE).stdout
    if f"{GATEWAY}/" not in addresses:
        _ip("addr", "add", f"{GATEWAY}/{POD_CIDR.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def remove_bridge() -> None:
    _ip("link", "del", BRIDGE, check=False)


def namespace_name(pod_uid: str) -> str:
    return f"gtpod-{pod_uid[:13]}"


def namespace_path(pod_uid: str) -> Path:
    return Path("/run/netns") / namespace_name(pod_uid)


def create_pod_network(pod_uid: str, index: int) -> str:
    """Creates the pod's namespace and returns its IP address (10.244.x.y)."""
    if not 2 <= index < POD_CIDR.num_addresses - 1:
        raise NetworkError(f"pod address index {index} is outside {POD_CIDR}")
    address = str(POD_CIDR.network_address + index)
    ns = namespace_name(pod_uid)
    host_if = f"gtv{pod_uid[:10]}"
    delete_pod_network(pod_uid)
    _ip("netns", "add", ns)
    _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _ip("link", "set", host_if, "master", BRIDGE, "up")
    _ip("-n", ns, "addr", "add", f"{address}/{POD_CIDR.prefixlen}", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "route", "add", "default", "via", GATEWAY)
    return address


def delete_pod_network(pod_uid: str) -> None:
    # Deleting the namespace deletes its end of the veth pair, and with it the host end.
    _ip("netns", "del", namespace_name(pod_uid), check=False)
    _ip("link", "del", f"gtv{pod_uid[:10]}", check=False)


def leftover_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("gtpod-")]
