"""A command the trainer refused is not judged as if it had happened.

Before, a rollback refused for want of a checkpoint (with `keep: 2`, rotated out before the
pin arrived) left the remediation `pending` and then `persisting`, exactly as a rollback
that took place and did not help: nothing said the weights were never rolled back. The
trainer now exports each refused command with its reason, and the operator marks the
remediation `refused` with an Event that says why."""

from __future__ import annotations

import copy
from typing import Any

from gentrain_operator.milestones import process
from gentrain_operator.snapshot import milestone as milestone_of
from gentrain_operator.snapshot import parse
from gentrain_sdk.exporter import milestone_series
from tests.operator.test_missed_milestones import transformer_job
from tests.operator.test_remediation_intent import milestone


def decided_rollback() -> dict[str, Any]:
    job = transformer_job()
    job["status"] = process(milestone(100), job, now=0.0).status
    outcome = process(milestone(200, nonfinite=5), job, now=1.0)
    assert outcome.record is not None and outcome.spec is not None
    assert outcome.record["actions"][0] == "rollback"
    after = copy.deepcopy(job)
    after["spec"], after["status"] = outcome.spec, outcome.status
    after["metadata"]["generation"] += 1
    return after


def test_a_refused_rollback_is_reported_refused_and_the_ladder_goes_on() -> None:
    job = decided_rollback()
    (rollback_id,) = job["status"]["remediations"][0]["commands"]
    # The trainer took the change up at 300 and refused the rollback there.
    at_300 = {**milestone(300, nonfinite=5), "generation": 2}
    at_300["refused_commands"] = {rollback_id: "no_checkpoint"}
    outcome = process(at_300, job, now=2.0)
    first = outcome.status["remediations"][0]
    assert first["outcome"] == "refused", first
    assert first["refused"] == {rollback_id: "no_checkpoint"}
    refusals = [message for _, reason, message in outcome.events if reason == "RemediationRefused"]
    assert len(refusals) == 1 and "no checkpoint at or before its step" in refusals[0]
    # Not waiting on it any more: the next rung is decided at once.
    assert outcome.record is not None and outcome.record["id"] == "r2", outcome.record

    # Reported once: the trainer exports the refusal at every later milestone.
    job["status"] = outcome.status
    again = process({**at_300, "step": 400}, job, now=3.0)
    assert [r for _, r, _ in again.events].count("RemediationRefused") == 0


def test_the_refusal_reaches_the_operator_through_the_exposition() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from gentrain_sdk.exporter import TrainerCollector
    from gentrain_sdk.window import SinceStart, Window

    collector = TrainerCollector(None)
    window = Window()
    window.add({"model": 2.0}, {"model": 1.0}, {}, {}, 0.0, 0.01, {})
    collector.milestone = milestone_series(
        300, 1300.0, window.summary(), {}, SinceStart(), refused={"r1-0": "no_checkpoint"}
    )
    registry = CollectorRegistry()
    registry.register(collector)
    record = milestone_of(parse(generate_latest(registry).decode(), 0.0))
    assert record is not None and record["refused_commands"] == {"r1-0": "no_checkpoint"}
