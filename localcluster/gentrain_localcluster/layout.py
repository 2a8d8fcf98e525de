"""Where the local cluster keeps its files, and where the built tools are."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_APISERVER_PORT = 6443
NODE_NAME = "gentrain-node-0"


@dataclass(frozen=True)
class Layout:
    state_dir: Path
    tools_bin: Path

    @classmethod
    def from_environment(cls) -> Layout:
        root = Path(os.environ.get("GENTRAIN_REPO_ROOT", Path.cwd()))
        return cls(
            state_dir=Path(os.environ.get("GENTRAIN_CLUSTER_DIR", root / ".cluster")).resolve(),
            tools_bin=Path(os.environ.get("GENTRAIN_TOOLS_BIN", root / ".tools" / "bin")).resolve(),
        )

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig that users, tests and the demo use."""
        return self.state_dir / "kubeconfig"

    def component_kubeconfig(self, name: str) -> Path:
        return self.state_dir / "kubeconfigs" / f"{name}.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def binary(self, name: str) -> Path:
        return self.tools_bin / name

    @property
    def images_dir(self) -> Path:
        """Where `make images` keeps its OCI image layout (oci/) and the stamps of each image's
        inputs (the real node imports the images from there)."""
        default = self.tools_bin.parent.parent / ".images"
        return Path(os.environ.get("GENTRAIN_IMAGES_DIR", default)).resolve()

    @property
    def node_dir(self) -> Path:
        """The real node's containerd, kubelet and CNI state. Kept across `up --fresh`:
        imported images live here and cannot be pulled again."""
        return self.state_dir / "node"


@dataclass(frozen=True)
class ClusterState:
    """What `up` chose, so that `status`, the node agent and `down` agree on it."""

    apiserver_port: int
    etcd_client_port: int
    etcd_peer_port: int
    advertise_address: str
    pod_network: bool
    # "agent" (the node agent: pods as host processes, the fast tier) or "kubelet" (the
    # real node: containerd, the kubelet, kube-proxy; pods run their images).
    node: str = "agent"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        return cls(**json.loads(path.read_text()))
