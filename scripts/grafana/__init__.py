"""The Helm chart's Grafana files (helm/gentrain/files/): its dashboards and the shape of
its Grafana-managed alert rules, built with Grafana's own typed builders
(grafana-foundation-sdk), so that they follow Grafana's schema.

The JSON is committed; tests check that it is what `build` makes, that every metric a panel
queries exists, and (on the live monitoring stack) that every panel returns data. Write it
again after changing a panel: `.venv/bin/python -m scripts.grafana`.
"""

from __future__ import annotations

from typing import Any

from .alert_rule import alert_rule_shape
from .dashboards import fleet, gpu, job


def build() -> dict[str, dict[str, Any]]:
    """Each file's path under the chart's files/ and its JSON."""
    return {
        "dashboards/fleet.json": fleet(),
        "dashboards/job.json": job(),
        "dashboards/gpu.json": gpu(),
        "grafana-alert-rule.json": alert_rule_shape(),
    }
