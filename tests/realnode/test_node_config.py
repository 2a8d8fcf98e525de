"""The real node's configuration files, rendered without starting anything: what each
setting is there for (this host is cgroup v1 without systemd; nothing may reach the kubelet
without the cluster's certificates; imported images cannot be pulled again)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from gentrain_localcluster.layout import Layout
from gentrain_localcluster.network import GATEWAY
from gentrain_localcluster.realnode import containerd, prerequisites
from gentrain_localcluster.realnode.kubelet import KubeletFiles, kube_proxy_config, kubelet_config


def test_containerd_serves_the_local_pause_image_over_the_shared_bridge(tmp_path: Path) -> None:
    paths = containerd.Paths(tmp_path)
    config = tomllib.loads(containerd.config_toml(paths))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert config["grpc"]["address"] == str(tmp_path / "containerd.sock")
    assert cri["sandbox_image"] == containerd.PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == str(paths.cni_conf_dir)
    bridge = json.loads(containerd.cni_conflist(paths))["plugins"][0]
    # Pods reach the API server where it listens: the bridge's gateway.
    assert bridge["bridge"] == "gentrain0"
    assert bridge["ipam"]["ranges"][0][0]["gateway"] == GATEWAY


def test_the_kubelet_accepts_only_the_clusters_certificates(tmp_path: Path) -> None:
    files = KubeletFiles(*(tmp_path / n for n in ("root", "c", "k", "ca", "crt", "key", "s")))
    config = kubelet_config(files)
    assert config["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": str(tmp_path / "ca")},
    }
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["readOnlyPort"] == 0
    assert (config["failCgroupV1"], config["cgroupDriver"]) == (False, "cgroupfs")
    assert config["imageGCHighThresholdPercent"] == 100  # imported images are never collected
    assert kube_proxy_config(tmp_path / "kp")["mode"] == "iptables"


def test_a_host_without_the_pieces_is_told_each_one_and_how_to_get_it(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path / "state", tools_bin=tmp_path / "bin")
    problems = prerequisites.missing(layout)
    assert any("scripts/setup.sh node" in p for p in problems)
    assert any("make images" in p for p in problems)


def test_only_namespaces_holding_a_pod_address_of_this_cluster_are_deleted() -> None:
    from gentrain_localcluster.realnode.node import holds_pod_address

    ours = "2: eth0    inet 10.244.1.7/16 brd 10.244.255.255 scope global eth0\\n"
    assert holds_pod_address("1: lo    inet 127.0.0.1/8 scope host lo\\n" + ours)
    # Another runtime's pods, in ranges that start alike, are left alone.
    assert not holds_pod_address("2: eth0    inet 10.24.4.9/24 scope global eth0\\n")
    assert not holds_pod_address("2: eth0    inet 10.245.0.3/16 scope global eth0\\n")
    assert not holds_pod_address("")
