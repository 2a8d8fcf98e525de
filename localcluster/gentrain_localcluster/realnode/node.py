"""The real node's processes, started after the control plane and stopped before it:
containerd, the kubelet and kube-proxy, under the cluster's Supervisor."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..controlplane import SetupError
from ..kubeconfig import write_kubeconfig
from ..layout import NODE_NAME, ClusterState, Layout
from ..network import GATEWAY, POD_CIDR
from ..pki import CertificateAuthority, ClientIdentity, node_identity
from ..processes import ComponentError, Supervisor
from . import containerd, prerequisites
from .kubelet import (
    KubeletFiles,
    kube_proxy_argv,
    kube_proxy_config,
    kubelet_argv,
    kubelet_config,
    write_yaml,
)

CONTAINERD = "containerd"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
COMPONENTS = (CONTAINERD, KUBELET, KUBE_PROXY)
# The bootstrap RBAC binds system:node-proxier to this user.
KUBE_PROXY_IDENTITY = ClientIdentity("kube-proxy", "system:kube-proxy")


def _paths(layout: Layout) -> containerd.Paths:
    return containerd.Paths(layout.node_dir / "containerd")


def _wait_for_containerd(paths: containerd.Paths, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        supervisor.check_alive(CONTAINERD)
        if paths.socket.exists() and containerd.ctr(paths, "version").returncode == 0:
            return
        time.sleep(0.25)
    raise ComponentError(f"containerd not answering on {paths.socket} after 60 s")


def start(layout: Layout, state: ClusterState, supervisor: Supervisor) -> None:
    problems = prerequisites.missing(layout)
    if problems:
        raise SetupError(
            "the real node (GENTRAIN_NODE=kubelet) cannot start here; missing:\n  - "
            + "\n  - ".join(problems)
            + "\nThe node agent (the default, GENTRAIN_NODE=agent) needs none of these."
        )
    if not state.pod_network or state.advertise_address != GATEWAY:
        raise SetupError("the real node needs the pod network (root and iproute2)")
    paths = _paths(layout)
    containerd.write_config(paths)
    shutil.rmtree(paths.root / "cni" / "ipam", ignore_errors=True)
    supervisor.start(CONTAINERD, ["containerd", f"--config={paths.config}"])
    _wait_for_containerd(paths, supervisor)
    containerd.remove_containers(paths)  # a killed run's, which no API object owns now
    started = time.monotonic()
    if names := containerd.import_images(paths, layout.images_dir):
        print(f"node: imported {', '.join(names)} in {time.monotonic() - started:.0f} s")

    ca = CertificateAuthority(layout.pki)
    cert, key = ca.ensure_client(node_identity(NODE_NAME))
    kubelet_kubeconfig = layout.component_kubeconfig(f"kubelet-{NODE_NAME}")
    write_kubeconfig(
        kubelet_kubeconfig, state.server, ca.cert_path, cert, key, f"system:node:{NODE_NAME}"
    )
    serving_cert, serving_key = ca.ensure_serving(
        f"node-{NODE_NAME}-serving", [GATEWAY, "127.0.0.1"]
    )
    files = KubeletFiles(
        root_dir=layout.node_dir / "kubelet",
        config=layout.node_dir / "kubelet.yaml",
        kubeconfig=kubelet_kubeconfig,
        ca=ca.cert_path,
        serving_cert=serving_cert,
        serving_key=serving_key,
        runtime_socket=paths.socket,
    )
    write_yaml(files.config, kubelet_config(files))
    supervisor.start(KUBELET, kubelet_argv(layout.binary(KUBELET), files))

    proxy_cert, proxy_key = ca.ensure_client(KUBE_PROXY_IDENTITY)
    proxy_kubeconfig = layout.component_kubeconfig(KUBE_PROXY_IDENTITY.file_stem)
    write_kubeconfig(
        proxy_kubeconfig,
        state.server,
        ca.cert_path,
        proxy_cert,
        proxy_key,
        KUBE_PROXY_IDENTITY.user,
    )
    proxy_config = layout.node_dir / "kube-proxy.yaml"
    write_yaml(proxy_config, kube_proxy_config(proxy_kubeconfig))
    supervisor.start(KUBE_PROXY, kube_proxy_argv(layout.binary(KUBE_PROXY), proxy_config))


def stop(layout: Layout, supervisor: Supervisor) -> None:
    supervisor.stop(KUBE_PROXY)
    supervisor.stop(KUBELET, grace_seconds=20)
    paths = _paths(layout)
    if supervisor.pid(CONTAINERD) is not None:
        containerd.remove_containers(paths)
    containerd.kill_pod_processes()
    supervisor.stop(CONTAINERD, grace_seconds=20)
    if layout.binary(KUBE_PROXY).exists():  # its Service rules, out of the host's tables
        subprocess.run(
            [str(layout.binary(KUBE_PROXY)), "--cleanup"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    _remove_kubelet_chains()
    containerd.unmount_below(layout.node_dir)
    _delete_pod_namespaces()


# The chains the kubelet makes itself (kube-proxy --cleanup removes only kube-proxy's):
# KUBE-FIREWALL drops traffic to 127.0.0.0/8 from elsewhere; the others are markers.
KUBELET_CHAINS = {
    "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"),
    "nat": ("KUBE-KUBELET-CANARY",),
    "mangle": ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"),
}


def _remove_kubelet_chains() -> None:
    def run(*args: str) -> bool:
        return subprocess.run(args, capture_output=True, check=False).returncode == 0

    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for parent in ("INPUT", "OUTPUT"):
            while run(tool, "-t", "filter", "-D", parent, "-j", "KUBE-FIREWALL"):
                pass
        for table, chains in KUBELET_CHAINS.items():
            for chain in chains:
                run(tool, "-t", table, "-F", chain)
                run(tool, "-t", table, "-X", chain)


def holds_pod_address(addresses: str) -> bool:
    """Whether `ip -o -4 addr` output shows an address of this cluster's pod network."""
    for match in re.finditer(r"\binet (\S+)", addresses):
        with contextlib.suppress(ValueError):
            if ipaddress.ip_interface(match.group(1)).ip in POD_CIDR:
                return True
    return False


def _delete_pod_namespaces() -> None:
    """The sandboxes' network namespaces (containerd names them cni-*) holding an address
    of this cluster's pod network: deleting them deletes their veths on the bridge."""
    if not Path("/run/netns").exists():
        return
    for namespace in Path("/run/netns").glob("cni-*"):
        addresses = subprocess.run(
            ["ip", "-n", namespace.name, "-o", "-4", "addr"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if holds_pod_address(addresses):
            subprocess.run(["ip", "netns", "del", namespace.name], capture_output=True, check=False)
