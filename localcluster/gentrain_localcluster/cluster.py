"""The whole local cluster: control plane + node agent, up and down, with readiness checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import controlplane, dns, network
from .kubeconfig import write_kubeconfig
from .layout import NODE_NAME, ClusterState, Layout
from .nodeagent import memory
from .pki import CertificateAuthority, node_identity
from .processes import ComponentError, Supervisor, port_in_use
from .realnode import node as realnode

AGENT = "node-agent"
PROVISIONER = "volume-provisioner"


def agent_env(layout: Layout) -> dict[str, str]:
    """The environment of a node agent of this cluster (and of the volume provisioner)."""
    env = dict(os.environ)
    # Containers run `python`, `kubectl`, ... from the project's environment.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), str(layout.tools_bin), env.get("PATH", "")]
    )
    env["GENTRAIN_CLUSTER_DIR"] = str(layout.state_dir)
    env["GENTRAIN_TOOLS_BIN"] = str(layout.tools_bin)
    # Editable installs point into the checkout: pods must see it wherever it lives.
    env["GENTRAIN_KEEP_VISIBLE"] = os.pathsep.join(
        [str(layout.tools_bin.parent.parent), str(layout.tools_bin)]
    )
    env.pop("KUBECONFIG", None)
    return env


def _kill_orphan_containers(layout: Layout) -> None:
    """Containers of a killed agent are still running: stop them before anything reuses state."""
    for pid_file in layout.pods_dir.glob("*/containers/*/pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    if layout.pods_dir.is_dir():  # and what they started in sessions of their own
        memory.end_leftovers(p.name for p in layout.pods_dir.iterdir())
    for namespace in network.leftover_namespaces():
        network.delete_pod_network(namespace.removeprefix("gtpod-"))


NODES = ("agent", "kubelet")


def _components(node: str, pod_network: bool) -> tuple[str, ...]:
    """Every process the cluster runs with this kind of node."""
    node_side = realnode.COMPONENTS if node == "kubelet" else (AGENT,)
    cluster_dns = (dns.COMPONENT,) if pod_network else ()
    return (*controlplane.COMPONENTS, *cluster_dns, *node_side, PROVISIONER)


def _wait_ready(
    api: client.ApiClient, supervisor: Supervisor, components: tuple[str, ...], timeout: float
) -> None:
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pending: list[str] = []
    while time.monotonic() < deadline:
        for name in components:
            supervisor.check_alive(name)
        pending = []
        try:
            node = core.read_node(NODE_NAME)
            ready = any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            )
            if not ready:
                pending.append(f"node {NODE_NAME} Ready")
            if any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or []):
                pending.append(f"node {NODE_NAME} not-ready taint removed")
        except ApiException:
            pending.append(f"node {NODE_NAME} registered")
        try:
            core.read_namespaced_service_account("default", "default")
        except ApiException:
            pending.append("default ServiceAccount (serviceaccount controller)")
        try:
            client.StorageV1Api(api).read_storage_class("gentrain-local")
        except ApiException:
            pending.append("StorageClass gentrain-local (volume provisioner)")
        if not pending:
            return
        time.sleep(0.5)
    raise ComponentError(
        f"cluster not ready after {timeout:.0f} s; still waiting for: {', '.join(pending)}"
    )


def up(layout: Layout, gpus: int = 0, fresh: bool = True, node: str = "agent") -> ClusterState:
    if node not in NODES:
        raise controlplane.SetupError(
            f"GENTRAIN_NODE={node!r} is not a node kind: use one of {', '.join(NODES)}"
        )
    if node == "kubelet" and gpus:
        raise controlplane.SetupError(
            "--gpus advertises fake GPUs through the node agent; the real node reports what "
            "its device plugins find (none here)"
        )
    supervisor = Supervisor(layout.state_dir)
    _kill_orphan_containers(layout)
    if fresh:
        for path in (layout.etcd_data, layout.pods_dir, supervisor.log_dir):
            shutil.rmtree(path, ignore_errors=True)
    if port_in_use(10250):
        raise controlplane.SetupError(
            "port 10250 (the kubelet's, or the node agent's log endpoint) is in use: "
            "stop whatever holds it (`ss -ltnp 'sport = :10250'`)"
        )
    started = time.monotonic()
    try:
        state = controlplane.start(layout, supervisor, node=node)
        if state.pod_network:  # pods on their own network find each other by name
            dns.start(layout, supervisor)
        ca = CertificateAuthority(layout.pki)
        identity = node_identity(NODE_NAME)
        cert, key = ca.ensure_client(identity)
        write_kubeconfig(
            layout.component_kubeconfig(identity.file_stem),
            state.server,
            ca.cert_path,
            cert,
            key,
            identity.user,
        )
        if node == "kubelet":
            realnode.start(layout, state, supervisor)
        else:
            supervisor.start(
                AGENT,
                [sys.executable, "-m", "gentrain_localcluster.nodeagent", f"--gpus={gpus}"],
                env=agent_env(layout),
            )
        supervisor.start(
            PROVISIONER,
            [sys.executable, "-m", "gentrain_localcluster.provisioner"],
            env=agent_env(layout),
        )
        api = config.new_client_from_config(str(layout.kubeconfig))
        try:
            _wait_ready(api, supervisor, _components(node, state.pod_network), timeout=120)
        finally:
            api.close()
    except Exception:
        down(layout)
        raise
    print(
        f"local cluster ready in {time.monotonic() - started:.1f} s: "
        f"export KUBECONFIG={layout.kubeconfig}"
    )
    return state


def down(layout: Layout, purge: bool = False) -> None:
    supervisor = Supervisor(layout.state_dir)
    supervisor.stop(PROVISIONER)
    supervisor.stop(dns.COMPONENT)
    supervisor.stop(AGENT, grace_seconds=20)
    if _node_kind(layout) == "kubelet":  # never touch a host's own kubelet rules otherwise
        realnode.stop(layout, supervisor)
    controlplane.stop(supervisor)
    for name in supervisor.names():
        supervisor.stop(name)
    _kill_orphan_containers(layout)
    if network.available()[0]:
        network.remove_bridge()
    if purge:
        shutil.rmtree(layout.state_dir, ignore_errors=True)


def _last_state(layout: Layout) -> ClusterState | None:
    try:
        return ClusterState.load(layout.state_file)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _node_kind(layout: Layout) -> str:
    """The node the last `up` started ("agent" where no state says otherwise)."""
    state = _last_state(layout)
    return state.node if state is not None else "agent"


def status(layout: Layout) -> dict[str, int | None]:
    supervisor = Supervisor(layout.state_dir)
    state = _last_state(layout)
    components = _components(_node_kind(layout), state is not None and state.pod_network)
    return {name: supervisor.pid(name) for name in components}
