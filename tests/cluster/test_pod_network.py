"""Pod addresses per node: a second node agent on the same bridge hands out another
subnet's, so two nodes' pods never share an address."""

from __future__ import annotations

import pytest

from gentrain_localcluster import network
from gentrain_localcluster.nodeagent import network_hooks
from gentrain_localcluster.nodeagent.network_hooks import PodNetwork


def test_each_node_hands_out_its_own_subnet_and_reuses_freed_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        network, "create_pod_network", lambda uid, index: str(network.POD_CIDR[index])
    )
    monkeypatch.setattr(network, "delete_pod_network", lambda uid: None)
    first, second = PodNetwork(True, "10.0.0.1"), PodNetwork(True, "10.0.0.1", subnet=1)
    assert [first.setup(u) for u in ("a", "b")] == ["10.244.0.2", "10.244.0.3"]
    assert [second.setup(u) for u in ("c", "d")] == ["10.244.1.1", "10.244.1.2"]
    second.release("c")
    assert second.setup("e") == "10.244.1.1"
    with pytest.raises(ValueError, match="0 to 255"):
        PodNetwork(True, "10.0.0.1", subnet=256)


def test_a_pods_hosts_file_names_it_at_its_address() -> None:
    hosts = network_hooks.hosts_file("10.244.1.7", "gang-1", "peers", "ns")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith("10.244.1.7\tgang-1.peers.ns.svc.cluster.local\tgang-1\n")
    assert network_hooks.hosts_file("10.244.0.2", "p", None, "ns").endswith("10.244.0.2\tp\n")


def test_the_resolv_conf_of_a_pod_follows_its_dns_policy() -> None:
    cluster_first = network_hooks.resolv_conf(None, "team-a")
    assert cluster_first.startswith("search team-a.svc.cluster.local svc.cluster.local ")
    assert f"nameserver {network.GATEWAY}" in cluster_first
    assert "options ndots:5" in cluster_first
    assert network_hooks.resolv_conf("Default", "team-a") == network_hooks.HOST_RESOLV_CONF
