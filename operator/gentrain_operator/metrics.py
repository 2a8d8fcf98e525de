"""The operator's own metrics, served on :8080/metrics.

Per-job series carry `namespace` (the job's) and `gtj` (its name), the labels the trainer's
series get from the PodMonitor. Never `job`: that is the scrape job Prometheus attaches, and
the chart's ServiceMonitor keeps the operator's `namespace` with honorLabels (see there).
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

JOBS = Gauge("gentrain_operator_jobs", "Jobs by phase.", ["phase"])
REMEDIATIONS = Counter(
    "gentrain_operator_remediations_total",
    "Remediations by job, finding, action and mode.",
    ["namespace", "gtj", "finding", "action", "mode"],
)
FINDINGS = Counter(
    "gentrain_operator_findings_total",
    "Findings raised at milestones, by job.",
    ["namespace", "gtj", "finding", "severity"],
)
SCRAPE_ERRORS = Counter(
    "gentrain_operator_scrape_errors_total", "Failed scrapes of trainers.", ["reason"]
)
SCRAPE_SECONDS = Histogram(
    "gentrain_operator_scrape_duration_seconds", "Time to scrape one trainer."
)
RECONCILE_SECONDS = Histogram(
    "gentrain_operator_reconcile_duration_seconds", "Time to reconcile one job."
)
MILESTONE_LATENCY = Histogram(
    "gentrain_operator_milestone_latency_seconds",
    "From the trainer publishing a milestone to the operator finishing its decision.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
SCRAPE_LAG = Gauge(
    "gentrain_operator_scrape_lag_seconds",
    "How late the latest scrape started, per job.",
    ["namespace", "gtj"],
)
JOB_HEALTH = Gauge(
    "gentrain_operator_job_healthy",
    "1 when the job's latest milestone raised no finding.",
    ["namespace", "gtj"],
)
JOB_EXHAUSTED = Gauge(
    "gentrain_operator_job_remediation_exhausted",
    "1 when no remediation is left to try.",
    ["namespace", "gtj"],
)
METRICS_AGE = Gauge(
    "gentrain_operator_metrics_age_seconds",
    "Age of the newest trainer metrics, per job.",
    ["namespace", "gtj"],
)
CHECKPOINT_AGE = Gauge(
    "gentrain_operator_checkpoint_age_seconds",
    "Time since the newest milestone, per job.",
    ["namespace", "gtj"],
)

_phases: dict[tuple[str, str], str] = {}


def record_phase(namespace: str, name: str, phase: str | None) -> None:
    _phases[(namespace, name)] = phase or "Pending"
    _publish_phases()


def forget_job(namespace: str, name: str) -> None:
    _phases.pop((namespace, name), None)
    for gauge in (JOB_HEALTH, JOB_EXHAUSTED, METRICS_AGE, CHECKPOINT_AGE, SCRAPE_LAG):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
    _publish_phases()


def _publish_phases() -> None:
    counts: dict[str, int] = {}
    for phase in _phases.values():
        counts[phase] = counts.get(phase, 0) + 1
    for phase in ("Pending", "Running", "Suspended", "Succeeded", "Failed"):
        JOBS.labels(phase).set(counts.get(phase, 0))
