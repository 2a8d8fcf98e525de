"""The operator's Prometheus-API mode against a real Prometheus server (built from Go
modules by `make setup`) that discovers and scrapes the trainer pod on the cluster; and
against a Prometheus that is gone, or answers nothing: the metrics are stale, the job says
so in its MetricsAvailable condition, and nothing stale is acted on."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def prometheus(cluster: Cluster, tmp_path: Path) -> Iterator[PrometheusServer]:
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
        yield PrometheusServer(url, process)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def read_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(cluster.api)
    job = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return dict(job.get("status") or {})


def metrics_available(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "MetricsAvailable"), {})


def stale_for_want_of_prometheus(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The job's status once its MetricsAvailable condition says Prometheus failed it."""
    status = wait_for(
        lambda: read_status(cluster, namespace, name),
        lambda s: metrics_available(s).get("status") == "False",
        f"{name}'s metrics to be marked stale",
        timeout=180,
    )
    condition = metrics_available(status)
    assert condition["reason"] == "Stale" and "Prometheus" in condition["message"], condition
    return status


def test_decisions_from_a_real_prometheus_server_and_none_once_it_is_gone(
    cluster: Cluster, namespace: str, operator: None, prometheus: PrometheusServer
) -> None:
    job = gtj(
        "via-prometheus",
        max_steps=100_000,
        interval=500,
        monitoring={"prometheusURL": prometheus.url},
    )
    cluster.apply(job, namespace)
    status = wait_for(
        lambda: read_status(cluster, namespace, "via-prometheus"),
        lambda s: len(s.get("milestones", [])) >= 2,
        "two milestones read through Prometheus",
        timeout=180,
    )
    assert status["checkpointStep"] >= 1000
    assert status["milestones"][-1]["modes"] == 8
    assert metrics_available(status)["status"] == "True"

    # Prometheus goes away while the trainer trains on.
    prometheus.process.terminate()
    prometheus.process.wait(30)
    stale = stale_for_want_of_prometheus(cluster, namespace, "via-prometheus")
    # Nothing is judged on what the operator cannot read: no milestone after the last read.
    judged = len(stale.get("milestones", []))
    time.sleep(10)
    later = read_status(cluster, namespace, "via-prometheus")
    assert len(later.get("milestones", [])) == judged
    assert later.get("remediationCount", 0) == stale.get("remediationCount", 0)


def test_the_final_milestone_is_read_through_prometheus_after_the_trainer_exits(
    cluster: Cluster, namespace: str, operator: None, prometheus: PrometheusServer
) -> None:
    """The trainer exits at the scrape that carries its final milestone; "now" that
    Prometheus has marked its series stale, no query sees it. It was never read: the
    report's "after" was the milestone before the last, and the job said Succeeded with
    checkpointStep short of maxSteps. The operator queries Prometheus every 10 s here,
    Prometheus scrapes every second: the window in which a query "now" still finds the
    final milestone is about a tenth of the time."""
    job = gtj(
        "final-via-prometheus",
        max_steps=1500,
        interval=500,
        monitoring={"prometheusURL": prometheus.url, "scrapeIntervalSeconds": 10},
    )
    cluster.apply(job, namespace)
    status = wait_for(
        lambda: read_status(cluster, namespace, "final-via-prometheus"),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        "the job read through Prometheus to finish",
        timeout=240,
    )
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["checkpointStep"] == 1500
    assert status["milestones"][-1]["step"] == 1500


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A Prometheus URL that accepts connections and never answers (a Prometheus stuck on
    a query)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_prometheus_that_never_answers_leaves_the_job_stale_not_stuck(
    cluster: Cluster, namespace: str, operator: None, silent_server: str
) -> None:
    job = gtj("slow-prometheus", max_steps=100_000, interval=500,
              monitoring={"prometheusURL": silent_server})  # fmt: skip
    cluster.apply(job, namespace)
    status = stale_for_want_of_prometheus(cluster, namespace, "slow-prometheus")
    assert not status.get("milestones") and not status.get("remediations")
    # The operator still serves the job: the trainer runs (its pod was made).
    assert status.get("podName")
