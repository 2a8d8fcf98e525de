"""What a recorded milestone tells the world beyond the job's status: the operator's
metrics (findings, remediations, health), the trainer's checkpoint retention (the verdict
pins the last healthy checkpoint), the job's events, and one log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import kube, metrics
from .milestones import Outcome

log = logging.getLogger("gentrain.monitor")


def described(outcome: Outcome) -> str:
    """The remediation a milestone's log line names: decided now, or applied before and
    only recorded now (which read like a second decision in the log)."""
    if outcome.record is None:
        return ""
    when = "applied earlier, recorded now" if outcome.replayed else outcome.record["mode"]
    return f"; {outcome.record['actions']} ({when})"


def count_remediation(namespace: str, name: str, record: Mapping[str, Any]) -> None:
    for action in record["actions"]:
        metrics.REMEDIATIONS.labels(
            namespace, name, record["finding"], action, record["mode"]
        ).inc()


async def announce(
    namespace: str,
    name: str,
    record: Mapping[str, Any],
    outcome: Outcome,
    job: Mapping[str, Any],
    post_event: Callable[[str, str, str], None],
) -> None:
    """After milestone `record` of job `namespace/name` and its `outcome` were written."""
    for finding in outcome.findings:
        metrics.FINDINGS.labels(namespace, name, finding.kind, finding.severity).inc()
    if outcome.record is not None:
        # Replayed too: the write that failed came before this, so it was never counted.
        count_remediation(namespace, name, outcome.record)
    metrics.JOB_HEALTH.labels(namespace, name).set(
        1 if outcome.status["health"] == "Healthy" else 0
    )
    metrics.JOB_EXHAUSTED.labels(namespace, name).set(
        1 if outcome.status["health"] == "Exhausted" else 0
    )
    # The verdict reaches the trainer's rotation now, not at the next spec change: it
    # keeps every checkpoint newer than the last milestone judged until it knows whether
    # that one is the next healthy checkpoint, which a rollback would need.
    healthy = outcome.status["lastHealthyCheckpoint"]
    retention = await asyncio.to_thread(
        kube.write_retention,
        namespace,
        name,
        [healthy] if healthy is not None else [],
        record["step"],
    )
    if retention:
        pod = (job.get("status") or {}).get("podName")
        await asyncio.to_thread(kube.nudge_trainer, namespace, pod, retention)
    metrics.MILESTONE_LATENCY.observe(max(0.0, time.time() - record["time"]))
    for kind, reason, message in outcome.events:
        post_event(kind, reason, message)
    log.info(
        "%s/%s milestone %d: %s%s",
        namespace,
        name,
        record["step"],
        ", ".join(f.kind for f in outcome.findings) or "healthy",
        described(outcome),
    )
