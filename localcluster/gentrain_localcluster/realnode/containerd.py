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
from . import oci_layout
from .prerequisites import CNI_BIN_DIR, PAUSE_IMAGE

NAMESPACE = "k8s.io"  # the namespace containerd's CRI plugin serves to the kubelet
# The images of `.images/oci` that the node imports, in the order a pod needs them.
IMAGES = (
    PAUSE_IMAGE,
    "localhost/gentrain-operator:dev",
    "localhost/gentrain-trainer:dev",
    # The monitoring tier's Prometheus pods (tests marked `monitoring`).
    "localhost/prometheus:v3.16.0",
    "localhost/prometheus-config-reloader:v0.85.0",
    # Users' own images (examples/custom-*.yaml), on the trainer image; the adapters' two
    # only where `scripts/images.sh huggingface-gpt2|lightning-regression` built them.
    "localhost/plain-loop:dev",
    "localhost/huggingface-gpt2:dev",
    "localhost/lightning-regression:dev",
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


def _ctr_command(paths: Paths, *args: str) -> list[str]:
    return ["ctr", "--address", str(paths.socket), "--namespace", NAMESPACE, *args]


def ctr(paths: Paths, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _ctr_command(paths, *args),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def image_name(ref: str) -> str:
    """`localhost/gentrain-trainer:dev` -> `gentrain-trainer`: the name `make images`
    keeps the image's input stamp under."""
    return ref.rsplit("/", 1)[-1].split(":", 1)[0]


def import_images(paths: Paths, images_dir: Path) -> list[str]:
    """Imports each image of the layout `make images` wrote whose stamp differs from the
    one imported last (an import of the trainer image takes minutes), streamed from the
    layout (no archive is written); returns the names imported."""
    paths.imported.mkdir(parents=True, exist_ok=True)
    layout = images_dir / "oci"
    imported: list[str] = []
    for ref in IMAGES:
        manifest = oci_layout.manifest_of(layout, ref)
        if manifest is None:
            continue
        name = image_name(ref)
        stamp_file = images_dir / "stamps" / name
        stamp = stamp_file.read_text() if stamp_file.exists() else str(manifest)
        seen = paths.imported / name
        if seen.exists() and seen.read_text() == stamp:
            continue
        _import(paths, layout, ref)
        seen.write_text(stamp)
        imported.append(name)
    return imported


def _import(paths: Paths, layout: Path, ref: str) -> None:
    with subprocess.Popen(
        _ctr_command(paths, "images", "import", "-"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as importer:
        assert importer.stdin is not None and importer.stderr is not None
        try:
            oci_layout.write_image_tar(layout, ref, importer.stdin)
        except BrokenPipeError:
            pass  # ctr stopped reading: its error below says why
        finally:
            importer.stdin.close()
        error = importer.stderr.read().decode(errors="replace").strip()
        if importer.wait(timeout=1800) != 0:
            raise RuntimeError(f"ctr images import of {ref} from {layout} failed: {error}")


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
