"""Starts and stops etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

The flags follow controller-runtime envtest's defaults and kwokctl's binary runtime, plus
what envtest leaves out and the operator needs: RBAC with the Node authorizer,
service-account token signing (TokenRequest, projected tokens), and the controller
manager and scheduler, which envtest does not run (garbage collection, namespace
deletion, Jobs and scheduling all happen here for real).
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from . import network
from .kubeconfig import write_kubeconfig
from .layout import DEFAULT_APISERVER_PORT, ClusterState, Layout
from .pki import CLIENTS, CertificateAuthority
from .processes import ComponentError, Supervisor, free_port, port_in_use

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CIDR = "10.96.0.0/16"
REQUIRED_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
)


class SetupError(RuntimeError):
    """Something outside the cluster is missing or in the way; the message says what to do."""


def _check_binaries(layout: Layout) -> None:
    missing = [b for b in REQUIRED_BINARIES if not layout.binary(b).exists()]
    if missing:
        raise SetupError(
            f"missing {', '.join(missing)} in {layout.tools_bin}. Run `make setup` to build them "
            "from Go modules (needs Go and the Go module proxy), or point KUBECONFIG at an "
            "existing cluster and set GENTRAIN_TEST_CLUSTER=kubeconfig to use that instead."
        )


def _choose_state(layout: Layout, pod_network: bool, node: str) -> ClusterState:
    port = int(os.environ.get("GENTRAIN_APISERVER_PORT", DEFAULT_APISERVER_PORT))
    if port_in_use(port):
        raise SetupError(
            f"port {port} (kube-apiserver) is in use by another process: stop it "
            f"(`ss -ltnp 'sport = :{port}'` shows which) or choose another port with "
            "GENTRAIN_APISERVER_PORT=<port>."
        )
    can_network, why = network.available() if pod_network else (False, "not wanted")
    if pod_network and not can_network:
        print(f"warning: no pod network ({why}); pods will share the host network")
    return ClusterState(
        apiserver_port=port,
        etcd_client_port=free_port(),
        etcd_peer_port=free_port(),
        advertise_address=network.GATEWAY if can_network else "127.0.0.1",
        pod_network=can_network,
        node=node,
    )


def _etcd_args(layout: Layout, state: ClusterState) -> list[str]:
    client = f"http://127.0.0.1:{state.etcd_client_port}"
    return [
        str(layout.binary("etcd")),
        "--name=gentrain-etcd",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls=http://127.0.0.1:{state.etcd_peer_port}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{state.etcd_peer_port}",
        f"--initial-cluster=gentrain-etcd=http://127.0.0.1:{state.etcd_peer_port}",
        # A throwaway test store: durability across power loss is not worth the fsyncs.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def _apiserver_args(layout: Layout, state: ClusterState, ca: CertificateAuthority) -> list[str]:
    pki = layout.pki
    hosts = [
        "127.0.0.1",
        "localhost",
        "10.96.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    if state.advertise_address not in hosts:
        hosts.append(state.advertise_address)
    serving_cert, serving_key = ca.ensure_serving("apiserver", hosts)
    return [
        str(layout.binary("kube-apiserver")),
        f"--advertise-address={state.advertise_address}",
        "--bind-address=0.0.0.0",
        f"--secure-port={state.apiserver_port}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={serving_cert}",
        f"--tls-private-key-file={serving_key}",
        f"--client-ca-file={ca.cert_path}",
        f"--etcd-servers=http://127.0.0.1:{state.etcd_client_port}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'service-account.pub'}",
        f"--service-account-signing-key-file={pki / 'service-account.key'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        # `kubectl logs` reaches the node agent's log endpoint with this identity.
        f"--kubelet-client-certificate={pki / 'admin.crt'}",
        f"--kubelet-client-key={pki / 'admin.key'}",
        f"--kubelet-certificate-authority={ca.cert_path}",
        "--kubelet-preferred-address-types=InternalIP",
        "--endpoint-reconciler-type=lease",
        "--v=1",
    ]


# One instance of each: no election. With one, a component whose API server stalls past
# the lease's renew deadline (10 s) exits by design ("leaderelection lost") — in a real
# cluster its kubelet restarts it; here nothing would, and the cluster lost its controllers.
LEADER_ELECTION = "--leader-elect=false"


def _controller_manager_args(layout: Layout, ca: CertificateAuthority) -> list[str]:
    pki = layout.pki
    return [
        str(layout.binary("kube-controller-manager")),
        f"--kubeconfig={layout.component_kubeconfig('controller-manager')}",
        "--secure-port=0",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'service-account.key'}",
        f"--root-ca-file={ca.cert_path}",
        f"--cluster-signing-cert-file={ca.cert_path}",
        f"--cluster-signing-key-file={ca.key_path}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # A lost node agent is noticed in 20 s rather than 50 s, so tests of pods lost
        # with their node do not wait for minutes.
        "--node-monitor-grace-period=20s",
        LEADER_ELECTION,
        "--v=1",
    ]


def _scheduler_args(layout: Layout) -> list[str]:
    return [
        str(layout.binary("kube-scheduler")),
        f"--kubeconfig={layout.component_kubeconfig('scheduler')}",
        f"--authentication-kubeconfig={layout.component_kubeconfig('scheduler')}",
        f"--authorization-kubeconfig={layout.component_kubeconfig('scheduler')}",
        "--secure-port=0",
        LEADER_ELECTION,
        "--v=1",
    ]


def _wait(what: str, ready: Callable[[], bool], timeout: float, check: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        if ready():
            return
        time.sleep(0.25)
    raise ComponentError(f"{what} not ready after {timeout:.0f} s")


def _https_ok(url: str, ca: Path, cert: Path, key: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _etcd_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return b'"health":"true"' in r.read()
    except (urllib.error.URLError, OSError):
        return False


def start(
    layout: Layout, supervisor: Supervisor, pod_network: bool = True, node: str = "agent"
) -> ClusterState:
    """Starts the control plane and returns once the API server is ready."""
    _check_binaries(layout)
    running = [c for c in COMPONENTS if supervisor.pid(c) is not None]
    if running:
        raise SetupError(
            f"{', '.join(running)} already running from {layout.state_dir}: "
            "run `make cluster-down` first"
        )
    state = _choose_state(layout, pod_network, node)
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    state.save(layout.state_file)
    if state.pod_network:
        network.ensure_bridge()
    ca = CertificateAuthority(layout.pki)
    ca.ensure()
    for client in CLIENTS:
        cert, key = ca.ensure_client(client)
        write_kubeconfig(
            layout.component_kubeconfig(client.file_stem),
            state.server,
            ca.cert_path,
            cert,
            key,
            client.user,
        )
    admin_cert, admin_key = ca.ensure_client(CLIENTS[0])
    write_kubeconfig(
        layout.kubeconfig, state.server, ca.cert_path, admin_cert, admin_key, CLIENTS[0].user
    )

    supervisor.start("etcd", _etcd_args(layout, state))
    _wait(
        "etcd", lambda: _etcd_ok(state.etcd_client_port), 60, lambda: supervisor.check_alive("etcd")
    )
    supervisor.start("kube-apiserver", _apiserver_args(layout, state, ca))
    _wait(
        "kube-apiserver",
        lambda: _https_ok(f"{state.server}/readyz", ca.cert_path, admin_cert, admin_key),
        120,
        lambda: supervisor.check_alive("kube-apiserver"),
    )
    supervisor.start("kube-controller-manager", _controller_manager_args(layout, ca))
    supervisor.start("kube-scheduler", _scheduler_args(layout))
    return state


def stop(supervisor: Supervisor) -> None:
    # Reverse order: the API server must outlive the controllers that talk to it.
    for name in reversed(COMPONENTS):
        supervisor.stop(name)
