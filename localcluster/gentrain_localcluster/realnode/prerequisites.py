"""What the real node needs from the host, each missing piece named with how to get it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..layout import Layout
from . import oci_layout

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
# Every pod sandbox's image, built by `make images` (upstream's pause.c, static).
PAUSE_IMAGE = "localhost/gentrain-pause:3.10"
DEBIAN_PACKAGES = "containerd runc containernetworking-plugins iptables conntrack"


def missing(layout: Layout) -> list[str]:
    """Every missing prerequisite, each as 'what: how to get it'; empty when the node can start."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("root: containerd, the kubelet and the pod network need it")
    for program in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables"):
        if shutil.which(program) is None:
            problems.append(f"{program}: apt-get install {DEBIAN_PACKAGES}")
    absent = [p for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()]
    if absent:
        problems.append(
            f"CNI plugins {', '.join(absent)} in {CNI_BIN_DIR}: "
            "apt-get install containernetworking-plugins"
        )
    if not layout.binary("kubelet").exists() or not layout.binary("kube-proxy").exists():
        problems.append(
            f"kubelet and kube-proxy in {layout.tools_bin}: `scripts/setup.sh node` builds them "
            "from the Kubernetes module (tools/k8s/node)"
        )
    if oci_layout.manifest_of(layout.images_dir / "oci", PAUSE_IMAGE) is None:
        problems.append(
            f"the pause image {PAUSE_IMAGE} in {layout.images_dir}/oci: `make images` builds "
            "it (with the operator and trainer images)"
        )
    return problems
