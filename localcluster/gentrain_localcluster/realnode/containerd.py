"""Debian's containerd for the real node: its configuration (pure), the local images it
is given (no registry is reachable: every image is imported from `.images/`), and the
clean-up of whatever its containers leave behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..network import BRIDGE, GATEWAY, POD_CIDR
from .prerequisites import CNI_BIN_DIR

NAMESPACE = "k8s.io"  # the namespace containerd's CRI plugin serves to the kubelet
PAUSE_IMAGE = "localhost/gentrain-pause:3.10"
# Archives under .images/ that the node imports, in the order a pod needs them.
ARCHIVES = (
    "gentrain-pause",
    "gentrain-operator",
    "gentrain-trainer",
    # The monitoring tier's Prometheus pods (tests marked `monitoring`).
    "prometheus",
    "prometheus-config-reloader",
    # Users' own images (examples/custom-*.yaml), on the trainer image; the adapters' two
    # only where `scripts/images.sh huggingface-gpt2|lightning-regression` built them.
    "plain-loop",
    "huggingface-gpt2",
    "lightning-regression",
)
# Pod addresses start above the ones the node agent hands out, so the two never collide
# in a state directory that both have used.
POD_RANGE_START = str(POD_CIDR.network_address + 256)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def imported(self) -> Path:
        return self.root / "imported"


def config_toml(paths: Paths) -> str:
    """containerd 1.6's configuration (version 2): cgroupfs (this host is cgroup v1 and has
    no systemd), the locally built pause image, the CNI bridge shared with the node agent."""
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    return f"""version = 2
root = "{paths.root / "lib"}"
state = "{paths.root / "run"}"

[grpc]
  address = "{paths.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.root / "opt"}"

{cri}
  sandbox_image = "{PAUSE_IMAGE}"
  # The kubelet asks for negative OOM scores (-998 for sandboxes, -997 for Guaranteed
  # pods); lowering a score needs CAP_SYS_RESOURCE, which a machine run inside a sandbox
  # (as this one) may not grant, and runc then fails every pod ("can't get final child's
  # PID from pipe"). Scores are kept no lower than containerd's own instead.
  restrict_oom_score_adj = true
  enable_selinux = false
  max_container_log_line_size = 16384

{cri[:-1]}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{cri[:-1]}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri[:-1]}.containerd.runtimes.runc.options]
  SystemdCgroup = false

{cri[:-1]}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{paths.cni_conf_dir}"
"""


def cni_conflist(paths: Paths) -> str:
    """The bridge the node agent uses (gentrain0, gateway 10.244.0.1, where the API server
    listens), addresses from host-local, port mappings; containerd adds loopback itself."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "gentrain",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(paths.root / "cni" / "ipam"),
                        "ranges": [
                            [
                                {
                                    "subnet": str(POD_CIDR),
                                    "gateway": GATEWAY,
                                    "rangeStart": POD_RANGE_START,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def write_config(paths: Paths) -> None:
    paths.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_toml(paths))
    (paths.cni_conf_dir / "10-gentrain.conflist").write_text(cni_conflist(paths))


def ctr(paths: Paths, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(paths.socket), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def import_images(paths: Paths, images_dir: Path) -> list[str]:
    """Imports each archive `make images` wrote whose stamp differs from the one imported
    last (an import of the trainer image takes minutes); returns the names imported."""
    paths.imported.mkdir(parents=True, exist_ok=True)
    imported: list[str] = []
    for name in ARCHIVES:
        archive = images_dir / f"{name}.tar"
        if not archive.exists():
            continue
        stamp_file = images_dir / "stamps" / name
        stamp = stamp_file.read_text() if stamp_file.exists() else str(archive.stat().st_mtime)
        seen = paths.imported / name
        if seen.exists() and seen.read_text() == stamp:
            continue
        result = ctr(paths, "images", "import", str(archive), timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"ctr images import {archive} failed: {result.stderr.strip()}")
        seen.write_text(stamp)
        imported.append(name)
    return imported


def remove_containers(paths: Paths) -> None:
    """Kills and deletes every container of the node's namespace: the kubelet is gone, and
    a new one must start from a clean runtime (fresh etcd, no pods)."""
    tasks = ctr(paths, "tasks", "ls", "-q").stdout.split()
    for task in tasks:
        ctr(paths, "tasks", "kill", "--signal", "SIGKILL", "--all", task)
    for task in tasks:
        ctr(paths, "tasks", "delete", "--force", task)
    for container in ctr(paths, "containers", "ls", "-q").stdout.split():
        ctr(paths, "containers", "delete", container)


def kill_pod_processes() -> None:
    """Whatever still runs in the kubelet's pod cgroups (a shim that lost its containerd)."""
    for procs in Path("/sys/fs/cgroup/pids/kubepods").glob("**/cgroup.procs"):
        with contextlib.suppress(OSError):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)


def unmount_below(directory: Path) -> None:
    """The kubelet's volume mounts (tmpfs for tokens, binds for hostPath) and containerd's
    snapshots and sandbox mounts under `directory`, deepest first."""
    prefix = str(directory.resolve()) + "/"
    with Path("/proc/self/mounts").open() as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
