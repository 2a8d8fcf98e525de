"""The Alertmanager routing example (examples/monitoring/kube-prometheus-stack-values.yaml)
against the chart's rules: every alert reaches the gentrain route and exactly one severity
route, and carries the labels that route groups by."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.chart.test_chart import VALUE_SETS, render
from tests.support.kube import REPO

EXAMPLE = REPO / "examples" / "monitoring" / "kube-prometheus-stack-values.yaml"
MATCHER = re.compile(r'^\s*(\w+)\s*(=~|=)\s*"(.*)"\s*$')


def matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    for matcher in route.get("matchers", []):
        name, op, value = MATCHER.match(matcher).groups()  # type: ignore[union-attr]
        actual = labels.get(name, "")
        if (op == "=" and actual != value) or (op == "=~" and not re.fullmatch(value, actual)):
            return False
    return True


def alert_labels(rule: dict[str, Any]) -> dict[str, str]:
    """The labels an alert of this rule carries: its name, its own labels, and the ones
    its aggregation keeps (values stand in for the real ones)."""
    kept = re.search(r"\bby \(([^)]*)\)", rule["expr"])
    labels = {name.strip(): "x" for name in kept.group(1).split(",")} if kept else {}
    return {**labels, **rule["labels"], "alertname": rule["alert"]}


def test_every_alert_is_routed_by_severity_and_grouped_per_job() -> None:
    route = yaml.safe_load(EXAMPLE.read_text())["alertmanager"]["config"]["route"]
    [gentrain] = route["routes"]
    [rule_doc] = [d for d in render(*VALUE_SETS["everything"]) if d["kind"] == "PrometheusRule"]
    rules = rule_doc["spec"]["groups"][0]["rules"]
    assert len(rules) == 10
    for rule in rules:
        labels = alert_labels(rule)
        assert matches(gentrain, labels), rule["alert"]
        assert len([r for r in gentrain["routes"] if matches(r, labels)]) == 1, rule["alert"]
        if rule["alert"] != "OperatorDown":  # the one alert about no job
            assert set(gentrain["group_by"]) <= set(labels), (rule["alert"], labels)
