"""Writes the Grafana dashboards of the Helm chart (helm/gentrain/files/dashboards/).

Kept as code so that panels stay consistent; the JSON it writes is committed, and a test
checks that every metric a panel queries exists in the trainer's or operator's registry.
Run it after changing a panel: `.venv/bin/python scripts/dashboards.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "helm" / "gentrain" / "files" / "dashboards"
JOB = '{namespace="$namespace", gtj="$job"}'


def growth(series: str, window: str) -> str:
    """How much an operator counter grew in the window, its first increment included (the
    chart's gentrain.growth: a job's series is born at 1, which increase() never counts)."""
    return f"({series} unless {series} offset {window}) or increase({series}[{window}])"


def panel(
    title: str,
    exprs: list[tuple[str, str]],
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"expr": e, "legendFormat": legend, "refId": chr(65 + i)}
            for i, (e, legend) in enumerate(exprs)
        ],
    }


def dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], job_variables: bool
) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "type": "datasource", "query": "prometheus"}
    ]
    if job_variables:
        variables += [
            {
                "name": "namespace",
                "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": "label_values(gentrain_step, namespace)",
                "refresh": 2,
            },
            {
                "name": "job",
                "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": 'label_values(gentrain_step{namespace="$namespace"}, gtj)',
                "refresh": 2,
            },
        ]
    return {
        "uid": uid,
        "title": title,
        "schemaVersion": 39,
        "version": 1,
        "tags": ["gentrain"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "annotations": {
            "list": [
                {
                    "name": "Remediations",
                    "enable": True,
                    "iconColor": "red",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    # On a job's dashboards, only that job's remediations.
                    "expr": "changes(gentrain_operator_remediations_total"
                    + (
                        '{mode="auto", namespace="$namespace", gtj="$job"}'
                        if job_variables
                        else '{mode="auto"}'
                    )
                    + "[2m]) > 0",
                    "titleFormat": "{{finding}}: {{action}}",
                    "textFormat": "{{namespace}}/{{gtj}}",
                }
            ]
        },
        "panels": panels,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fleet = dashboard(
        "gentrain-fleet",
        "gentrain / fleet",
        [
            panel(
                "Jobs by phase", [("sum by (phase) (gentrain_operator_jobs)", "{{phase}}")], 0, 0
            ),
            panel(
                "Unhealthy jobs",
                [
                    ("count(gentrain_operator_job_healthy == 0) or vector(0)", "unhealthy"),
                    (
                        "count(gentrain_operator_job_remediation_exhausted == 1) or vector(0)",
                        "exhausted",
                    ),
                ],
                12,
                0,
            ),
            panel(
                "Findings per hour",
                [
                    (
                        f"sum by (finding) ({growth('gentrain_operator_findings_total', '1h')})",
                        "{{finding}}",
                    )
                ],
                0,
                8,
            ),
            panel(
                "Remediations per hour",
                [
                    (
                        f"sum by (finding, action) ({growth('gentrain_operator_remediations_total', '1h')})",
                        "{{finding}} → {{action}}",
                    )
                ],
                12,
                8,
            ),
            panel(
                "Scrape errors",
                [
                    (
                        "sum by (reason) (rate(gentrain_operator_scrape_errors_total[5m]))",
                        "{{reason}}",
                    )
                ],
                0,
                16,
            ),
            panel(
                "Milestone to decision (p90)",
                [
                    (
                        "histogram_quantile(0.9, sum by (le) "
                        "(rate(gentrain_operator_milestone_latency_seconds_bucket[10m])))",
                        "p90",
                    )
                ],
                12,
                16,
                unit="s",
            ),
        ],
        job_variables=False,
    )
    job = dashboard(
        "gentrain-job",
        "gentrain / job",
        [
            panel("Losses (smoothed)", [(f"gentrain_loss{JOB}", "{{component}}")], 0, 0),
            panel(
                "Milestone loss: mean and max",
                [
                    (f"gentrain_milestone_loss_mean{JOB}", "mean {{component}}"),
                    (f"gentrain_milestone_loss_max{JOB}", "max {{component}}"),
                ],
                12,
                0,
            ),
            panel(
                "FID / KID",
                [
                    (f"gentrain_milestone_fid{JOB}", "FID ({{extractor}})"),
                    (f"gentrain_milestone_kid{JOB}", "KID ({{extractor}})"),
                ],
                0,
                8,
            ),
            panel(
                "Diversity",
                [
                    (f"gentrain_milestone_modes_covered{JOB}", "modes covered"),
                    (f"gentrain_milestone_high_quality_ratio{JOB}", "high-quality ratio"),
                    (f"gentrain_milestone_recall{JOB}", "recall"),
                    (f"gentrain_milestone_active_units{JOB}", "active units"),
                ],
                12,
                8,
            ),
            panel(
                "Gradient norms",
                [
                    (f"gentrain_grad_norm{JOB}", "{{component}}"),
                    (f"gentrain_milestone_grad_norm_max{JOB}", "window max {{component}}"),
                ],
                0,
                16,
            ),
            panel(
                "Learning rates and hyperparameters",
                [
                    (f"gentrain_learning_rate{JOB}", "lr {{component}}"),
                    (f"gentrain_hyperparameter{JOB}", "{{name}}"),
                ],
                12,
                16,
            ),
            panel(
                "Step time: data vs compute",
                [
                    (f"gentrain_step_data_seconds{JOB}", "data"),
                    (f"gentrain_step_compute_seconds{JOB}", "compute"),
                ],
                0,
                24,
                unit="s",
            ),
            panel(
                "Validation loss",
                [
                    (f"gentrain_milestone_validation_loss{JOB}", "validation"),
                    (f"gentrain_milestone_kl{JOB}", "KL"),
                ],
                12,
                24,
            ),
        ],
        job_variables=True,
    )
    gpu = dashboard(
        "gentrain-gpu",
        "gentrain / GPUs",
        [
            panel(
                "Utilisation",
                [(f"gentrain_gpu_utilization_ratio{JOB}", "GPU {{gpu}}")],
                0,
                0,
                unit="percentunit",
            ),
            panel(
                "Memory",
                [
                    (f"gentrain_gpu_memory_used_bytes{JOB}", "used {{gpu}}"),
                    (f"gentrain_gpu_memory_total_bytes{JOB}", "total {{gpu}}"),
                ],
                12,
                0,
                unit="bytes",
            ),
            panel("Power", [(f"gentrain_gpu_power_watts{JOB}", "GPU {{gpu}}")], 0, 8, unit="watt"),
            panel(
                "Temperature",
                [(f"gentrain_gpu_temperature_celsius{JOB}", "GPU {{gpu}}")],
                12,
                8,
                unit="celsius",
            ),
        ],
        job_variables=True,
    )
    for name, board in (("fleet", fleet), ("job", job), ("gpu", gpu)):
        (OUT / f"{name}.json").write_text(json.dumps(board, indent=1) + "\n")


if __name__ == "__main__":
    main()
