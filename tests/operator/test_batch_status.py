"""What batch/v1 Job says beside its phase, a GTJ says too: Succeeded, Failed and
Suspended conditions (`kubectl wait --for=condition=Succeeded gtj/x` works), startTime,
completionTime; and `kubectl get gtj` shows progress and the time left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from gentrain_operator import batch, following, job_object, kube, launching, lifecycle
from gentrain_operator.conditions import get
from gentrain_operator.progress import human_duration, progress
from gentrain_operator.settings import Settings


def job(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "n", "uid": "u", "generation": 1},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {"maxSteps": 1000},
            **spec,
        },
        "status": status,
    }


def pod(phase: str, **terminated: Any) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {
        "metadata": {"name": "j-trainer-1", "creationTimestamp": "2026-12-02T00:00:00Z"},
        "status": {"phase": phase, "podIP": "10.0.0.9", "containerStatuses": [{"state": state}]},
    }


def reconcile(status: dict[str, Any], found: dict[str, Any] | None, **spec: Any) -> dict:
    return lifecycle.reconcile(
        job(status, **spec), Settings(), [], lambda namespace, name: found, spec_changed=False
    )


@pytest.fixture(autouse=True)
def no_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
    monkeypatch.setattr(kube, "create", lambda *a: True)
    monkeypatch.setattr(kube, "delete_pod", lambda *a, **k: None)


def condition(changes: dict[str, Any], kind: str) -> dict[str, Any]:
    return dict(get(changes["conditions"], kind) or {})


def test_the_first_launch_sets_the_start_time_once() -> None:
    # A job whose first pod the API server refused is Pending already when one is made.
    first = reconcile({"phase": "Pending", "message": "the API server refused..."}, None)
    assert first["attempts"] == 1 and first["startTime"]
    again = batch.with_batch_status(
        {"phase": "Running", "startTime": first["startTime"]},
        {"phase": "Pending", "attempts": 2, "message": "resuming"},
        1,
    )
    assert "startTime" not in again


def test_success_sets_the_condition_and_the_completion_time() -> None:
    done = reconcile(
        {"phase": "Running", "attempts": 1, "checkpointStep": 1000, "eta": "5s"},
        pod("Succeeded", exitCode=0, message="completed 1000 steps"),
    )
    assert done["phase"] == "Succeeded"
    assert condition(done, "Succeeded")["status"] == "True"
    assert done["completionTime"]
    assert done["progress"] == "100%" and done["eta"] is None  # null: removed by the patch


def test_failure_says_why_in_the_failed_condition() -> None:
    failed = reconcile(
        {"phase": "Running", "attempts": 1},
        pod("Failed", exitCode=following.CONFIG_ERROR_EXIT, message="invalid configuration: x"),
    )
    assert failed["phase"] == "Failed"
    assert condition(failed, "Failed") | {"lastTransitionTime": None} == {
        "type": "Failed",
        "status": "True",
        "reason": "InvalidConfiguration",
        "message": "invalid configuration: x",
        "lastTransitionTime": None,
        "observedGeneration": 1,
    }
    assert "completionTime" not in failed


def test_an_oom_killed_trainer_at_its_backoff_limit_says_so_in_the_failure() -> None:
    # The kernel's kill leaves the trainer no message of its own: the operator's stands
    # for it in the backoff limit's message too (once lost when the lifecycle was split:
    # the job then said only "last: exit code 137").
    failed = reconcile(
        {"phase": "Running", "attempts": 2, "failures": 1},
        pod("Failed", exitCode=137, reason="OOMKilled"),
        backoffLimit=1,
        resources={"memory": "1Gi"},
    )
    assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
    assert failed["message"].startswith("trainer failed 2 times; last: exit code 137: OOMKilled")
    assert "(1Gi)" in failed["message"] and "spec.resources.memory" in failed["message"]


def test_suspension_and_resumption_show_in_the_suspended_condition() -> None:
    suspended = reconcile({"phase": "Running", "attempts": 1}, pod("Running"), suspend=True)
    assert suspended["phase"] == "Suspended"
    assert condition(suspended, "Suspended")["status"] == "True"
    after = {"phase": "Suspended", "attempts": 1, "conditions": suspended["conditions"]}
    resumed = reconcile(after, pod("Succeeded", exitCode=0, message="stopped by SIGTERM"))
    assert resumed["phase"] == "Pending"
    assert condition(resumed, "Suspended") | {"lastTransitionTime": None} == {
        "type": "Suspended",
        "status": "False",
        "reason": "Resumed",
        "message": "resumed after suspension, from the latest checkpoint",
        "lastTransitionTime": None,
        "observedGeneration": 1,
    }


def test_progress_and_time_left_as_kubectl_shows_them() -> None:
    assert progress(450, 1000, 0.5) == {"progress": "45%", "eta": "4m"}
    assert progress(0, 10_000, None) == {"progress": "0%", "eta": None}
    assert progress(1000, 1000, 0.5) == {"progress": "100%", "eta": "0s"}
    assert [human_duration(s) for s in (45, 720, 3 * 3600 + 300, 49 * 3600, 3 * 86400)] == [
        "45s",
        "12m",
        "3h5m",
        "2d1h",
        "3d",
    ]


def test_a_first_launch_without_conditions_writes_none() -> None:
    """`conditions: None` in the changes broke the create handler (every new job)."""
    created = batch.with_batch_status({}, {"phase": "Pending", "attempts": 1}, 1)
    assert "conditions" not in created


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_jobs_own_backoff_limit_wins_over_the_operators() -> None:
    crashed = pod("Failed", exitCode=1, message="Traceback ...")
    strict = reconcile({"phase": "Running", "attempts": 1}, crashed, backoffLimit=0)
    assert strict["phase"] == "Failed"
    assert condition(strict, "Failed")["reason"] == "BackoffLimitExceeded"
    lenient = reconcile({"phase": "Running", "attempts": 1}, crashed)  # the operator's 3
    assert lenient["phase"] == "Pending" and lenient["attempts"] == 2


def test_the_deadline_stops_the_trainer_and_fails_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[tuple[str, Any]] = []
    monkeypatch.setattr(kube, "delete_pod", lambda ns, name, **k: stopped.append((name, k)))
    running = {"phase": "Running", "attempts": 1, "step": 420, "startTime": ago(90)}
    assert "phase" not in reconcile(running, pod("Running"), activeDeadlineSeconds=120)
    assert not stopped
    late = reconcile(running, pod("Running"), activeDeadlineSeconds=60)
    # Deleted with its grace period: SIGTERM, and the trainer saves a checkpoint.
    assert stopped == [("j-trainer-1", {})]
    assert late["phase"] == "Failed" and "step 420" in late["message"]
    assert condition(late, "Failed")["reason"] == "DeadlineExceeded"


def test_suspension_restarts_the_deadlines_clock() -> None:
    suspended = batch.with_batch_status(
        {"phase": "Running", "startTime": ago(500)}, {"phase": "Suspended"}, 1
    )
    assert suspended["startTime"] is None  # null: removed by the patch; set at the next start


def test_a_finished_job_is_deleted_after_its_ttl_and_its_claim_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        kube, "release_claim", lambda ns, name, uid: calls.append(f"release {name}")
    )
    monkeypatch.setattr(kube, "delete_job", lambda ns, name, uid: calls.append(f"delete {name}"))
    done = {"phase": "Succeeded", "completionTime": ago(100)}
    assert reconcile(done, None, ttlSecondsAfterFinished=600) == {} and not calls
    assert reconcile(done, None) == {} and not calls  # no TTL: kept for ever
    reconcile(done, None, ttlSecondsAfterFinished=60)
    assert calls == ["release j-checkpoints", "delete j"]  # in that order
    failed_at = [{"type": "Failed", "status": "True", "lastTransitionTime": ago(30)}]
    calls.clear()
    reconcile({"phase": "Failed", "conditions": failed_at}, None, ttlSecondsAfterFinished=10)
    assert calls == ["release j-checkpoints", "delete j"]


def exhausted(generation: int) -> dict[str, Any]:
    healthy = {
        "type": "Healthy",
        "status": "False",
        "reason": "RemediationExhausted",
        "message": "ModeCollapse remains after 8 actions",
        "observedGeneration": generation,
    }
    return {"phase": "Running", "attempts": 1, "conditions": [healthy]}


@pytest.mark.parametrize("remediation", [{}, {"onExhausted": "Continue"},
                                         {"onExhausted": "Fail", "mode": "recommend"}])  # fmt: skip
def test_an_exhausted_job_trains_on_unless_told_otherwise(remediation: dict[str, str]) -> None:
    assert "phase" not in reconcile(exhausted(1), pod("Running"), remediation=remediation)


def test_an_exhausted_job_fails_when_told_keeping_its_checkpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(kube, "delete_pod", lambda ns, name, **k: stopped.append(name))
    told = {"onExhausted": "Fail"}
    # Exhausted at an older generation of the spec (the user changed it since): not yet.
    assert "phase" not in reconcile(exhausted(0), pod("Running"), remediation=told)
    failed = reconcile(exhausted(1), pod("Running"), remediation=told)
    assert stopped == ["j-trainer-1"]  # SIGTERM: the trainer saves, then exits
    assert failed["phase"] == "Failed"
    assert condition(failed, "Failed")["reason"] == "RemediationExhausted"
    assert "ModeCollapse remains" in failed["message"]


def test_an_exhausted_job_is_suspended_through_its_spec_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patched: list[dict[str, Any]] = []
    monkeypatch.setattr(
        job_object, "patch_job_spec", lambda ns, name, spec, rv: patched.append(spec)
    )
    manifest = job(exhausted(1), remediation={"onExhausted": "Suspend"})
    manifest["metadata"]["resourceVersion"] = "42"
    events: list[tuple[str, str, str]] = []
    lifecycle.reconcile(manifest, Settings(), events, lambda ns, n: pod("Running"), False)
    assert patched == [{"suspend": True}]
    assert [reason for _, reason, _ in events] == ["SuspendedExhausted"]


def test_the_phase_and_the_batch_condition_land_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader that waits for phase Failed then reads the Failed condition (CI's run of
    693be40: it was not there yet), or waits for the condition then reads the phase, finds
    both; Ready's reason goes before them. A write refused because the monitor wrote
    between is made again on the list as the API server has it then, keeping its entry."""
    monitors = {"type": "Healthy", "status": "False", "reason": "NonFiniteLoss"}
    versions = iter([("1", []), ("2", [monitors])])
    writes: list[dict[str, Any]] = []

    def read_job(namespace: str, name: str) -> dict[str, Any]:
        version, conditions = next(versions)
        return {"metadata": {"resourceVersion": version}, "status": {"conditions": conditions}}

    def write(namespace: str, name: str, body: Any, **options: Any) -> None:
        writes.append(body)
        if body.get("metadata", {}).get("resourceVersion") == "1":
            raise ApiException(status=409)

    monkeypatch.setattr(job_object, "read_job", read_job)
    monkeypatch.setattr(job_object, "_patch_status_subresource", write)
    failed = reconcile(
        {"phase": "Running", "attempts": 1}, pod("Failed", exitCode=1, message="boom"),
        backoffLimit=0,
    )  # fmt: skip
    job_object.write_job_status("n", "j", failed, {"phase": "Running"})
    assert [c["type"] for c in writes[0]["status"]["conditions"]] == ["Ready"]  # applied first
    with_phase = [w["status"] for w in writes if "phase" in w["status"]]
    assert all("conditions" in status for status in with_phase), writes
    last = writes[-1]["status"]
    assert last["phase"] == "Failed"
    assert len(writes) == 3 and writes[-1]["metadata"]["resourceVersion"] == "2"
    assert [(c["type"], c["status"]) for c in last["conditions"]] == [
        ("Healthy", "False"),
        ("Failed", "True"),
    ]
