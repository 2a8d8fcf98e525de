"""What prometheus-operator reads from the chart: the labels its selectors match, the label
contract of the operator's series, and values that would leave Prometheus silently empty."""

from __future__ import annotations

import pytest

from tests.chart.test_chart import CHART, helm, render

MONITORING = (
    "alerts.enabled=true,metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true"
)
SELECTED_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def monitoring_objects(*extra: str) -> dict[str, dict]:
    docs = render("--set", MONITORING, *extra)
    return {d["kind"]: d for d in docs if d["kind"] in SELECTED_KINDS}


def test_kube_prometheus_stack_selects_every_object_by_default() -> None:
    # kube-prometheus-stack's Prometheus selects monitors and rules labelled with its release.
    objects = monitoring_objects()
    assert set(objects) == SELECTED_KINDS
    for kind, obj in objects.items():
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", kind


def test_an_objects_own_labels_win_over_the_shared_selector_labels() -> None:
    objects = monitoring_objects(
        "--set", "prometheusSelectorLabels.release=kps,alerts.labels.release=rules-only"
    )
    assert objects["PrometheusRule"]["metadata"]["labels"]["release"] == "rules-only"
    assert objects["PodMonitor"]["metadata"]["labels"]["release"] == "kps"


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("prometheusSelectorLabels.release=bad value", "/prometheusSelectorLabels/release"),
        ("metrics.podMonitor.labels.team=a/b", "/metrics/podMonitor/labels/team"),
    ],
)
def test_a_selector_label_prometheus_could_never_match_fails_the_install(
    setting: str, field: str
) -> None:
    result = helm("template", "t", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert field in result.stderr


def test_a_number_as_a_selector_label_value_is_refused_not_stringified() -> None:
    result = helm(
        "template", "t", str(CHART), "--set", "prometheusSelectorLabels.release=1", check=False
    )
    assert result.returncode != 0 and "/prometheusSelectorLabels/release" in result.stderr


def test_the_operator_monitor_keeps_the_jobs_namespace_label() -> None:
    # Without honorLabels Prometheus renames the series' `namespace` to
    # `exported_namespace` and every per-job alert names the operator's namespace.
    [endpoint] = monitoring_objects()["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True


def test_the_operator_series_never_carry_a_job_label() -> None:
    # `job` is the scrape job Prometheus attaches; a series of the operator's own named
    # `job` either overwrote it (honorLabels) or became exported_job.
    from prometheus_client.metrics import MetricWrapperBase

    from gentrain_operator import metrics

    declared = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    assert len(declared) >= 10
    for metric in declared:
        assert "job" not in metric._labelnames, metric._name
        if "namespace" in metric._labelnames:
            assert "gtj" in metric._labelnames, metric._name


def test_the_trainer_monitor_covers_the_watched_namespaces() -> None:
    objects = monitoring_objects(
        "--set", "operator.scope=namespace", "--set", "operator.watchNamespaces={ml,vision}"
    )
    selector = objects["PodMonitor"]["spec"]["namespaceSelector"]
    assert selector == {"matchNames": ["ml", "vision"]}


def test_every_per_job_alert_groups_by_the_jobs_namespace_and_name() -> None:
    rules = monitoring_objects()["PrometheusRule"]["spec"]["groups"][0]["rules"]
    for rule in rules:
        if rule["alert"] != "OperatorDown":
            assert "by (namespace, gtj)" in rule["expr"], rule["alert"]
