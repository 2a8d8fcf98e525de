"""The operator's Prometheus-API mode against a real Prometheus server (built from Go
modules by `make setup`) that discovers and scrapes the trainer pod on the cluster."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.operator.test_operator_cluster import GROUP, PLURAL, VERSION, gtj
from tests.support.kube import REPO, Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    binary = REPO / ".tools" / "bin" / "prometheus"
    if not binary.exists():
        pytest.skip("prometheus is built by `make setup`")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "gentrain-trainers",
                "kubernetes_sd_configs": [
                    {"role": "pod", "kubeconfig_file": str(cluster.kubeconfig)}
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                        "regex": "gentrain-trainer",
                        "action": "keep",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "regex": "metrics",
                        "action": "keep",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)

    try:
        wait_for(ready, bool, "Prometheus to be ready", timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_decisions_from_a_real_prometheus_server(
    cluster: Cluster, namespace: str, operator: None, prometheus: str
) -> None:
    job = gtj(
        "via-prometheus", max_steps=100_000, interval=500, monitoring={"prometheusURL": prometheus}
    )
    cluster.apply(job, namespace)
    custom = client.CustomObjectsApi(cluster.api)
    status = wait_for(
        lambda: (
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "via-prometheus"
            ).get("status")
            or {}
        ),
        lambda s: len(s.get("milestones", [])) >= 2,
        "two milestones read through Prometheus",
        timeout=180,
    )
    assert status["checkpointStep"] >= 1000
    assert status["milestones"][-1]["modes"] == 8
    available = next(c for c in status["conditions"] if c["type"] == "MetricsAvailable")
    assert available["status"] == "True"
