"""The shape of the chart's Grafana-managed alert rules (files/grafana-alert-rule.json):
the chart's grafana-alerts.yaml fills it in once per alert of its PrometheusRule."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange


def alert_rule_shape() -> dict[str, Any]:
    """One Grafana-managed alert rule for a Prometheus alerting rule of the chart; the
    chart's grafana-alerts.yaml fills in each rule's name, expression, labels and
    annotations (from the same list as its PrometheusRule). Query A is the Prometheus
    rule's expression: it returns the series for which its condition holds, each with its
    value; C is 1 for each of them (any value, 0 included), and the rule fires where C is.
    No data is OK: no series means no job in that state."""
    query = (
        alerting.Query("A")
        .datasource_uid("DATASOURCE")
        .relative_time_range(RelativeTimeRange(from_val=600, to=0))
        .model(prometheus.Dataquery().expr("EXPR").instant().ref_id("A"))
    )
    condition = (
        alerting.Query("C")
        .datasource_uid("__expr__")
        .model(expr.TypeMath().expression("$A == $A").ref_id("C"))
    )
    rule = (
        alerting.Rule("ALERT")
        .uid("UID")
        .condition("C")
        .with_query(query)
        .with_query(condition)
        .no_data_state("OK")
        .exec_err_state("Error")
        .for_val("0s")
        .labels({})
        .annotations({})
    )
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(rule.build()))
    # The API's placement fields; in a provisioning file the group says where a rule goes.
    for placement in ("folderUID", "orgID", "ruleGroup"):
        encoded.pop(placement, None)
    return encoded
