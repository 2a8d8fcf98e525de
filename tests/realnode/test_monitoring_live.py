"""The chart's alerts and dashboards on a live Prometheus, as kube-prometheus-stack users
run them: prometheus-operator reads the chart's ServiceMonitor, PodMonitor and
PrometheusRule by its default selectors, its Prometheus (a pod on the real node) scrapes
the operator and the trainer pods with their real labels (`honorLabels` as the chart sets
it), and evaluates the rules. A broken job and a healthy job train side by side."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.recorder import merged
from tests.chart.test_chart_monitoring import grafana_rules
from tests.operator.test_operator_cluster import status
from tests.realnode import monitoring_stack
from tests.realnode.conftest import installed
from tests.support import kube
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.realnode, pytest.mark.monitoring, pytest.mark.cluster, pytest.mark.slow]
REPO = kube.REPO
DASHBOARDS = REPO / "helm" / "gentrain" / "files" / "dashboards"
ZOO = REPO / "bench" / "zoo" / "calibration"
# Thresholds low enough for a test to see each alert fire in seconds; the rest as shipped.
VALUES = (
    "operator.replicas=1",
    "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.interval=5s",
    "metrics.podMonitor.enabled=true,metrics.podMonitor.interval=5s",
    "alerts.enabled=true,alerts.remediationStormPerHour=0,alerts.metricsStaleSeconds=30",
    "alerts.operatorDownFor=10s,grafanaAlerts.enabled=true",
)
# The findings TrainingDiverged reports.
DIVERGED = {"NonFiniteLoss", "Divergence", "NotLearning", "AttentionCollapse"}
# GPU panels read series only a GPU trainer (or dcgm-exporter) exports.
NEEDS_A_GPU = {"gentrain-gpu"}
# Panels whose series only a GAN trainer exports: the test's jobs are a transformer and a
# VAE (tests/chart/test_chart.py checks that every series a panel queries exists).
NEEDS_A_GAN = "GAN: "


@pytest.fixture(scope="module")
def stack(real_node: kube.Cluster) -> Iterator[monitoring_stack.Stack]:
    if not real_node.local:
        pytest.skip("prometheus-operator runs on the host with the local cluster's certificates")
    if absent := monitoring_stack.missing():
        pytest.fail(f"the monitoring tier needs {', '.join(absent)}")
    stack = monitoring_stack.start(real_node, REPO / ".cluster" / "logs")
    try:
        yield stack
    finally:
        monitoring_stack.stop(real_node, stack.operator)


def broken_job(name: str = "broken", **monitoring: Any) -> dict[str, Any]:
    """A transformer at 500x its healthy rate, without warm-up or clipping: its loss runs
    away or never leaves what a model that learned nothing scores, whatever the CPU (the
    zoo's 25x case is at the edge: on one host it still learned enough to pass)."""
    case = yaml.safe_load((ZOO / "transformer-no-warmup.yaml").read_text())
    rates = {"hyperparameters": {"learningRate": 1.0, "warmupSteps": 0, "gradientClip": 0}}
    spec = merged(case["base"], {"training": {"maxSteps": 300, **rates}})
    return job(name, spec, **monitoring)


def healthy_job() -> dict[str, Any]:
    """The VAE example, long enough to train through the whole test."""
    example = yaml.safe_load((REPO / "examples" / "vae-digits.yaml").read_text())
    spec = merged(
        example["spec"], {"training": {"maxSteps": 100_000}, "checkpoints": {"interval": 100}}
    )
    return job("healthy", spec)


def job(name: str, spec: dict[str, Any], **monitoring: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gentrain.io/v1alpha1",
        "kind": "GenerativeTrainingJob",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "monitoring": {"scrapeIntervalSeconds": 1, **monitoring},
            "remediation": {"mode": "auto"},
            # Three trainers beside the operator and Prometheus on two cores.
            "resources": {"cpu": "500m", "memory": "1536Mi"},
        },
    }


def freezer_state(real_node: kube.Cluster, namespace: str, job_name: str, state: str) -> None:
    """Freezes (or thaws) every process of a job's trainer pod through its cgroup, as a
    hung trainer would be: its metrics endpoint stops answering, nothing exits."""
    [pod] = real_node.core.list_namespaced_pod(
        namespace, label_selector=f"gentrain.io/job={job_name}"
    ).items
    [cgroup] = Path("/sys/fs/cgroup/freezer").glob(f"kubepods/**/pod{pod.metadata.uid}")
    (cgroup / "freezer.state").write_text(state)


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(p["title"], [t["expr"] for t in p["targets"]]) for p in dashboard["panels"]]


def has_data(stack: monitoring_stack.Stack, expr: str) -> bool:
    return any(not math.isnan(float(series["value"][1])) for series in stack.query(expr))


def test_alerts_fire_for_the_broken_job_only_and_every_panel_shows_live_data(
    real_node: kube.Cluster, namespace: str, stack: monitoring_stack.Stack
) -> None:
    figures: dict[str, float] = {}
    with installed(real_node, namespace, *VALUES):
        # prometheus-operator selected the chart's objects: the operator is a target, the
        # rules are loaded.
        wait_for(
            lambda: {t["labels"].get("job") for t in stack.active_targets()},
            lambda jobs: "gentrain-operator" in jobs,
            "the operator's ServiceMonitor to become a target",
            timeout=240,
        )
        groups = [g["name"] for g in stack.get("/api/v1/rules")["groups"]]
        assert "gentrain.training-health" in groups, groups

        # The broken job twice: the operator scrapes one trainer itself and reads the
        # other's series from this Prometheus (spec.monitoring.prometheusURL).
        through_prometheus = broken_job("broken-prom", prometheusURL=stack.service_url)
        real_node.apply([broken_job(), through_prometheus, healthy_job()], namespace)
        # The trainers are targets, labelled with their job (the PodMonitor's relabelling).
        wait_for(
            lambda: {t["labels"].get("gtj") for t in stack.active_targets()},
            lambda gtjs: {"broken", "broken-prom", "healthy"} <= gtjs,
            "the trainer pods to become targets",
            timeout=300,
        )

        # The broken job's fault: NotLearning, then the remediation, as the operator wrote it.
        remediated = wait_for(
            lambda: status(real_node, namespace, "broken").get("remediations") or [],
            bool,
            "the broken job's first remediation",
            timeout=600,
        )
        seen_at = time.monotonic()
        assert remediated[0]["finding"] in DIVERGED, remediated
        gtj = {"namespace": namespace, "gtj": "broken"}
        for alert in ("TrainingDiverged", "RemediationStorm"):
            labels, waited = monitoring_stack.wait_for_alert(stack, alert, gtj, timeout=120)
            figures[f"{alert} after the remediation was written (s)"] = time.monotonic() - seen_at
            assert labels["namespace"] == namespace and labels["gtj"] == "broken", labels
        # The Grafana-managed rules' queries, as Grafana would send them to this Prometheus.
        for rule in grafana_rules(*(arg for v in VALUES for arg in ("--set", v))):
            answer = stack.query(rule["data"][0]["model"]["expr"])
            if rule["title"] == "TrainingDiverged":
                assert gtj in [s["metric"] for s in answer], answer
        # Nothing collapsed onto the operator's own target: the job's namespace survived.
        assert not stack.query('{__name__=~"gentrain_operator_.+", exported_namespace!=""}')
        # Read through Prometheus, the same run drew the same decision.
        via = wait_for(
            lambda: status(real_node, namespace, "broken-prom").get("remediations") or [],
            bool,
            "the broken job's remediation, read through Prometheus",
            timeout=300,
        )
        decision = [(r["finding"], r["actions"], r["step"]) for r in (remediated[0], via[0])]
        print(f"monitoring: scraped directly and through Prometheus: {decision}")
        assert decision[0] == decision[1], decision
        # The healthy job, trained beside it for as long, raised no alert.
        healthy = status(real_node, namespace, "healthy")
        assert len(healthy.get("milestones") or []) >= 1, healthy
        assert not healthy.get("remediations"), healthy["remediations"]
        assert not [
            a for a in stack.alerts("pending") + stack.alerts() if a.get("gtj") == "healthy"
        ]

        # A hung trainer: its metrics stop answering, the operator's age of them grows.
        freezer_state(real_node, namespace, "healthy", "FROZEN")
        try:
            labels, waited = monitoring_stack.wait_for_alert(
                stack, "TrainerMetricsStale", {"namespace": namespace, "gtj": "healthy"}, 180
            )
            figures["TrainerMetricsStale after the trainer froze (s)"] = waited
        finally:
            freezer_state(real_node, namespace, "healthy", "THAWED")
        # Once it answers again, the alert resolves.
        wait_for(
            lambda: [a for a in stack.alerts() if a["alertname"] == "TrainerMetricsStale"],
            lambda firing: not firing,
            "TrainerMetricsStale to resolve after the trainer thawed",
            timeout=180,
        )

        figures.update(check_dashboards(stack, namespace))

        # The operator gone: OperatorDown, named for the release's operator.
        real_node.kubectl("scale", "deployment/gentrain-operator", "-n", "gentrain-system",
                          "--replicas=0")  # fmt: skip
        _, waited = monitoring_stack.wait_for_alert(stack, "OperatorDown", {}, timeout=180)
        figures["OperatorDown after scaling to 0 (s)"] = waited
    for name, value in figures.items():
        print(f"monitoring: {name}: {value:.1f}")


def check_dashboards(stack: monitoring_stack.Stack, namespace: str) -> dict[str, float]:
    """Runs every panel query of the three dashboards against the live series, with the
    dashboard variables set to each job; a panel that can never show data is a defect."""
    # The variables' own queries offer the test's namespace and both jobs.
    namespaces = stack.get("/api/v1/label/namespace/values", **{"match[]": "gentrain_step"})
    assert namespace in namespaces
    jobs = stack.get(
        "/api/v1/label/gtj/values", **{"match[]": f'gentrain_step{{namespace="{namespace}"}}'}
    )
    assert {"broken", "healthy"} <= set(jobs), jobs

    panels = with_data = 0
    empty: list[str] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for title, exprs in panel_queries(dashboard):
            panels += 1
            filled = any(
                has_data(stack, e.replace("$namespace", namespace).replace("$job", job))
                for e in exprs
                for job in ("broken", "healthy")
            )
            if filled:
                with_data += 1
            elif dashboard["uid"] not in NEEDS_A_GPU and not title.startswith(NEEDS_A_GAN):
                empty.append(f"{dashboard['uid']}: {title}")
    print(f"dashboards: {panels} panels, {with_data} with live data on CPU trainers")
    assert not empty, f"panels without data: {empty}"
    return {"dashboard panels": panels, "dashboard panels with live data": with_data}
