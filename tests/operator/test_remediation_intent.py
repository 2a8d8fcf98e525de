"""A remediation is applied once, and told (its Event) and counted (the operator's
remediations counter) once, even when its status write is lost.

The monitor patches the spec, then the status. If the operator dies, or the API server
fails the status PATCH, in between, the same milestone is handled again. Before the
intent annotation, that decided again on the changed spec: the learning rate halved on
every retry (1e-3 -> 5e-4 -> 2.5e-4), every record was `r1`, and the rollback's command
id `r1-0` was reused (the API refuses duplicate ids: a 422 every retry)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from gentrain_operator import job_object, kube, monitor, names, policy
from gentrain_operator.announce import announce
from gentrain_operator.milestones import intent, intent_annotation, process
from gentrain_operator.settings import Settings
from tests.operator.test_missed_milestones import transformer_job
from tests.operator.test_rate_check import healthy
from tests.operator.test_rate_check import job as rate_check_job


def milestone(step: int, nonfinite: int = 0) -> dict[str, Any]:
    return {
        "step": step,
        "time": 1000.0 + step,
        "generation": 1,
        "nonfinite": nonfinite,
        "loss_mean": {"model": 2.0},
        "loss_last": {"model": 2.0},
        "baseline_loss": 3.26,
    }


def applied_without_status(job: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """What the API server holds when the spec PATCH (with its annotation) went through
    and the status PATCH after it did not."""
    outcome = process(record, job, now=0.0)
    assert outcome.spec is not None and outcome.record is not None
    after = copy.deepcopy(job)
    after["spec"] = outcome.spec
    after["metadata"]["generation"] += 1
    after["metadata"]["annotations"] = {
        names.INTENT_ANNOTATION: intent_annotation(record, outcome.record)
    }
    return after


def test_a_milestone_handled_again_after_a_lost_status_write_is_not_decided_again() -> None:
    job = transformer_job()
    job["status"] = process(milestone(100), job, now=0.0).status
    diverged = milestone(200, nonfinite=5)
    after = applied_without_status(job, diverged)
    assert after["spec"]["training"]["hyperparameters"]["learningRate"] == 5e-4

    retried = process(diverged, after, now=1.0)
    assert retried.spec is None, retried.spec  # nothing changed twice
    assert retried.record is not None and retried.record["id"] == "r1"
    assert [r["id"] for r in retried.status["remediations"]] == ["r1"]
    assert retried.status["remediationCount"] == 1
    assert retried.record["actions"] == ["rollback", "lower_lr", "enable_clipping"]
    assert "Remediating" in {reason for _, reason, _ in retried.events}

    # Once its record is in status, the annotation is history, not an intent.
    after["status"] = retried.status
    assert intent(after) is None


def test_the_next_milestone_handled_may_be_a_later_one_and_still_records_it() -> None:
    # The trainer does not wait for the operator: by the retry it may be a milestone on.
    job = transformer_job()
    job["status"] = process(milestone(100), job, now=0.0).status
    after = applied_without_status(job, milestone(200, nonfinite=5))
    later = process(milestone(300), after, now=1.0)
    assert later.spec is None
    assert later.record is not None and later.record["id"] == "r1"
    assert later.record["step"] == 200  # recorded as decided, at the milestone that decided it
    assert [r["id"] for r in later.status["remediations"]] == ["r1"]


def test_an_intent_older_than_what_status_knows_or_unreadable_is_ignored() -> None:
    job = transformer_job()
    job["status"] = process(milestone(100), job, now=0.0).status
    after = applied_without_status(job, milestone(200, nonfinite=5))
    # Status has moved past the milestone that decided it (a record trimmed from history).
    moved_on = copy.deepcopy(after)
    moved_on["status"]["milestones"].append({"step": 300, "time": 1300.0})
    assert intent(moved_on) is None
    # An annotation someone edited into garbage is not ours to read.
    after["metadata"]["annotations"][names.INTENT_ANNOTATION] = "{not json"
    assert intent(after) is None
    assert process(milestone(200, nonfinite=5), after, now=1.0).spec is not None


def test_a_rate_check_whose_record_was_lost_is_told_as_a_rate_check() -> None:
    # A fresh clone's CI: the healthy DDPM's rate check was applied, its status write met a
    # 409, and the retry announced the routine check as a Warning "Remediating".
    job = rate_check_job()
    job["status"] = process(healthy(100), job, now=0.0).status
    after = applied_without_status(job, healthy(200))
    retried = process(healthy(200), after, now=1.0)
    assert retried.spec is None and retried.record is not None
    assert retried.record["finding"] == policy.RATE_CHECK
    assert [(kind, reason) for kind, reason, _ in retried.events] == [("Normal", policy.RATE_CHECK)]
    assert retried.status["health"] == "Healthy"


def remediations_counted(name: str, record: dict[str, Any]) -> float:
    labels = {"namespace": "n", "gtj": name, "finding": record["finding"], "mode": "auto"}
    return sum(
        REGISTRY.get_sample_value("gentrain_operator_remediations_total", {**labels, "action": a})
        or 0.0
        for a in record["actions"]
    )


def test_a_replayed_remediation_is_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The status write that failed came before the count: a replay is the only count.
    monkeypatch.setattr(kube, "write_retention", lambda *_: False)
    job = transformer_job()
    job["metadata"]["name"] = "replayed"
    job["status"] = process(milestone(100), job, now=0.0).status
    diverged = milestone(200, nonfinite=5)
    retried = process(diverged, applied_without_status(job, diverged), now=1.0)
    assert retried.record is not None
    posted: list[str] = []
    asyncio.run(
        announce("n", "replayed", diverged, retried, job, lambda _, r, __: posted.append(r))
    )
    assert remediations_counted("replayed", retried.record) == len(retried.record["actions"])
    assert posted.count("Remediating") == 1


def test_a_remediation_recorded_after_its_job_ended_is_announced_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The job ended before a milestone could carry the lost record: the monitor writes it
    # alone, and it was neither told (no Event) nor counted.
    job = transformer_job()
    job["metadata"]["name"] = "ended"
    job["status"] = process(milestone(100), job, now=0.0).status
    after = applied_without_status(job, milestone(200, nonfinite=5))
    after["status"]["phase"] = "Succeeded"
    after["metadata"]["resourceVersion"] = "7"
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(job_object, "read_job", lambda *_: after)
    monkeypatch.setattr(job_object, "record_milestone", lambda *args: written.append(args[2]))
    posted: list[tuple[str, str, str]] = []
    watcher = monitor.JobMonitor(
        "n",
        "ended",
        Settings(),
        lambda *event: posted.append(event),
        lambda: after,
        lambda *_: None,
    )

    async def once() -> None:
        async with aiohttp.ClientSession() as session:
            await watcher.once(session)

    asyncio.run(once())
    assert [r["id"] for r in written[0]["remediations"]] == ["r1"]
    assert [(kind, reason) for kind, reason, _ in posted] == [("Warning", "Remediating")]
    assert remediations_counted("ended", written[0]["remediations"][0]) == 3
