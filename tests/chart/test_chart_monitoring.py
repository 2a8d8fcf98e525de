"""What prometheus-operator reads from the chart: the labels its selectors match, the label
contract of the operator's series, and values that would leave Prometheus silently empty."""

from __future__ import annotations

import pytest
import yaml

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


def grafana_rules(*extra: str) -> list[dict]:
    [config_map] = [
        d
        for d in render("--set", "alerts.enabled=true,grafanaAlerts.enabled=true", *extra)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "t-grafana-alerts"
    ]
    assert config_map["metadata"]["labels"]["grafana_alert"] == "1"
    provisioning = yaml.safe_load(config_map["data"]["gentrain-alerts.yaml"])
    assert provisioning["apiVersion"] == 1
    [group] = provisioning["groups"]
    return list(group["rules"])


def test_grafana_managed_rules_are_the_prometheus_rules() -> None:
    prometheus = monitoring_objects()["PrometheusRule"]["spec"]["groups"][0]["rules"]
    grafana = grafana_rules()
    assert [r["title"] for r in grafana] == [r["alert"] for r in prometheus]
    assert len({r["uid"] for r in grafana}) == len(grafana)
    assert all(len(r["uid"]) <= 40 for r in grafana)
    for ours, theirs in zip(grafana, prometheus, strict=True):
        queries = {q["refId"]: q for q in ours["data"]}
        assert ours["condition"] in queries
        assert queries["A"]["model"]["expr"] == theirs["expr"]
        assert queries["A"]["datasourceUid"] == "prometheus"
        assert ours["labels"] == theirs["labels"]
        assert ours["for"] == theirs.get("for", "0s")
        assert set(ours["annotations"]) == set(theirs["annotations"])
        # Grafana's templates know no $value: each value is $values.<refId>.Value.
        assert not any("$value " in text for text in ours["annotations"].values()), ours["title"]


def test_grafana_rules_follow_the_alert_values() -> None:
    rules = grafana_rules(
        "--set",
        "alerts.disabled.OperatorDown=true,alerts.remediationStormPerHour=2,"
        "grafanaAlerts.datasourceUid=mimir",
    )
    assert "OperatorDown" not in [r["title"] for r in rules]
    [storm] = [r for r in rules if r["title"] == "RemediationStorm"]
    assert storm["data"][0]["model"]["expr"].endswith("> 2")
    assert storm["data"][0]["datasourceUid"] == "mimir"
