"""The trainer's "checkpoint volume full" exit (3) ends the job at once with a condition
that says so, and a spec change (a lower `keep`, after growing the claim) resumes it.
Before, it was a crash like any other: retried until BackoffLimitExceeded, each attempt
filling the volume again, with no word of the cause in status."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator import following, kube, launching, lifecycle
from gentrain_operator.settings import Settings

MESSAGE = "checkpoint volume full: no room for step 600 in /checkpoints (0 MiB free); ..."


def failed_pod(code: int, message: str) -> dict[str, Any]:
    terminated = {"exitCode": code, "reason": "Error", "message": message}
    return {
        "metadata": {"name": "j-trainer-2", "creationTimestamp": "2026-12-02T00:00:00Z"},
        "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": terminated}}]},
    }


def job(generation: int, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "n", "uid": "u", "generation": generation},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {"maxSteps": 1000},
        },
        "status": status,
    }


def test_a_full_volume_fails_once_and_a_spec_change_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
    monkeypatch.setattr(
        kube, "create", lambda kind, ns, body: created.append(body["metadata"]["name"]) or True
    )
    running = {"phase": "Running", "attempts": 2, "failures": 0}
    events: list[tuple[str, str, str]] = []

    def read_pod(namespace: str, name: str) -> dict[str, Any]:
        return failed_pod(following.VOLUME_FULL_EXIT, MESSAGE)

    failed = lifecycle.reconcile(job(1, running), Settings(), events, read_pod, spec_changed=False)
    assert failed["phase"] == "Failed" and not created  # no second attempt to fill it again
    assert failed["message"].startswith(MESSAGE)
    assert "lower spec.checkpoints.keep" in failed["message"]
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "CheckpointVolumeFull"
    assert [reason for _, reason, _ in events] == ["CheckpointVolumeFull"]

    after = {**running, **failed}
    periodic = lifecycle.reconcile(job(1, after), Settings(), [], read_pod, spec_changed=False)
    assert periodic == {} and not created  # terminal until the user acts

    resumed = lifecycle.reconcile(job(2, after), Settings(), [], read_pod, spec_changed=True)
    assert created == ["j-trainer-3"] and resumed["phase"] == "Pending"
    assert resumed["attempts"] == 3
