"""Cluster DNS: CoreDNS (built from its Go module, tools/coredns) serving `cluster.local`
from the API server, as a cluster's kube-dns does.

A cluster reaches its DNS server through a Service address and kube-proxy; here pods and
the host meet on one bridge, so CoreDNS listens on the bridge's gateway, which every pod
routes to (the node agent's and the kubelet's resolv.conf name it). It answers only for
the cluster's domain: nothing leaves this network, and any other name is refused at once
rather than waited on. Pods find each other by name as on any cluster: a Service's
`NAME.NAMESPACE.svc.cluster.local`, and a pod with `hostname` and `subdomain` (an Indexed
Job's, a JobSet's) at `HOSTNAME.SUBDOMAIN.NAMESPACE.svc.cluster.local` once a headless
Service of that name selects it.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from .layout import Layout
from .network import GATEWAY
from .processes import ComponentError, Supervisor, free_port

COMPONENT = "coredns"
CLUSTER_DOMAIN = "cluster.local"
SERVER = GATEWAY  # where pods send their lookups


def corefile(kubeconfig: Path, ready_port: int) -> str:
    """CoreDNS's configuration: the cluster's zone from the API server, on the gateway."""
    return (
        f"{CLUSTER_DOMAIN}:53 {{\n"
        f"    bind {SERVER}\n"
        "    errors\n"
        f"    ready 127.0.0.1:{ready_port}\n"
        f"    kubernetes {CLUSTER_DOMAIN} {{\n"
        f"        kubeconfig {kubeconfig}\n"
        "    }\n"
        # Short: a test makes a Service and looks it up at once.
        "    cache 5\n"
        "}\n"
    )


def resolv_conf(namespace: str) -> str:
    """A pod's resolv.conf under the ClusterFirst policy, as a kubelet writes it."""
    search = " ".join(
        [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
    )
    return f"search {search}\nnameserver {SERVER}\noptions ndots:5\n"


def start(layout: Layout, supervisor: Supervisor, timeout: float = 60) -> None:
    """Starts CoreDNS and returns once it serves the cluster's names."""
    binary = layout.binary(COMPONENT)
    if not binary.exists():
        raise ComponentError(f"{binary} is missing: run `scripts/setup.sh go` (tools/coredns)")
    ready_port = free_port()
    config = layout.state_dir / "dns" / "Corefile"
    config.parent.mkdir(parents=True, exist_ok=True)
    # The admin's credentials: CoreDNS reads Services, EndpointSlices and Namespaces.
    config.write_text(corefile(layout.kubeconfig, ready_port))
    supervisor.start(COMPONENT, [str(binary), "-conf", str(config)])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check_alive(COMPONENT)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ready_port}/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise ComponentError(
        f"CoreDNS not ready after {timeout:.0f} s:\n{supervisor.log_tail(COMPONENT)}"
    )
