"""The local cluster's DNS (CoreDNS from its Go module): pods find Services and each other
by name as on any cluster, which an Indexed Job's or a JobSet's pods need to join rank 0."""

from __future__ import annotations

import pytest

from gentrain_localcluster import dns
from tests.cluster.test_node_agent import pod, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def test_a_pod_finds_a_service_and_a_named_peer_and_fails_fast_outside(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "peers"},
            "spec": {
                "clusterIP": "None",
                "selector": {"app": "peer"},
                "publishNotReadyAddresses": True,
            },
        },
        namespace,
    )
    peer = pod("rank-zero", "import time; time.sleep(300)", hostname="rank-0", subdomain="peers")
    peer["metadata"]["labels"] = {"app": "peer"}
    cluster.apply(peer, namespace)
    running = wait_for(
        lambda: status(cluster, namespace, "rank-zero"),
        lambda s: s.phase == "Running" and bool(s.pod_ip),
        "the named peer to run",
    )
    script = """
        import socket, time
        def lookup(name):
            for attempt in range(30):  # the EndpointSlice may trail the pod by a moment
                try:
                    return socket.gethostbyname(name)
                except OSError:
                    time.sleep(1)
            return "unresolved"
        print("peer", lookup("rank-0.peers"))
        print("service", socket.gethostbyname("kubernetes.default"))
        started = time.monotonic()
        try:
            socket.gethostbyname("pypi.org")
            print("outside resolved")
        except OSError:
            print("outside failed after %.1f s" % (time.monotonic() - started))
        print("search", open("/etc/resolv.conf").read().split("\\n")[0])
    """
    cluster.apply(pod("client", script), namespace)
    final = wait_for(
        lambda: status(cluster, namespace, "client"),
        lambda s: s.phase in ("Succeeded", "Failed"),
        "the client pod to finish",
        timeout=90,
    )
    log = cluster.core.read_namespaced_pod_log("client", namespace)
    assert final.phase == "Succeeded", log
    assert f"peer {running.pod_ip}\n" in log, log
    kubernetes_ip = cluster.core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert f"service {kubernetes_ip}\n" in log, log
    outside = float(log.split("outside failed after ")[1].split(" s")[0])
    assert outside < 2, log
    assert f"search {namespace}.svc.{dns.CLUSTER_DOMAIN} " in log, log
