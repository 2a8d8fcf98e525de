"""A GTJ as a batch job (pure): what batch/v1 Job says beside its phase, and the job-level
limits that end a run — a deadline, a time to live once finished, and what to do when a
fault remains that no remediation is left for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .conditions import get as get_condition
from .conditions import now, set_condition, since

TERMINAL = ("Succeeded", "Failed")
# The conditions a batch Job has beside its phase (written with it: job_object.write_job_status).
BATCH_CONDITIONS = ("Succeeded", "Failed", "Suspended")


def with_batch_status(
    status: Mapping[str, Any], changes: dict[str, Any], generation: int
) -> dict[str, Any]:
    """`changes` with what batch/v1 Job and Kubeflow's TrainJob say beside the phase, for
    tools that read those (`kubectl wait --for=condition=Succeeded`, Kueue, dashboards):
    Succeeded, Failed and Suspended conditions, startTime (the first trainer pod made) and
    completionTime (set on success only, as a Job's)."""
    if changes.get("attempts") and not status.get("startTime"):
        changes["startTime"] = now()
    phase = changes.get("phase")
    if phase is None or phase == status.get("phase"):
        return changes
    conditions = changes.get("conditions", status.get("conditions"))
    message = str(changes.get("message") or "")

    def set_(kind: str, value: bool, reason: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, kind, value, reason, message, generation)
        changes["conditions"] = conditions

    if phase == "Succeeded":
        set_("Succeeded", True, "Completed")
        changes["completionTime"] = now()
        changes.update({"progress": "100%", "eta": None})
    elif phase == "Failed":
        ready = get_condition(conditions, "Ready") or {}
        set_("Failed", True, str(ready.get("reason") or "Failed"))
        changes["eta"] = None
    elif phase == "Suspended":
        set_("Suspended", True, "SuspendedBySpec")
        # As a batch Job's: the next start sets it again, and activeDeadlineSeconds counts
        # from there (a job suspended for a week has not trained for a week).
        changes.update({"eta": None, "startTime": None})
    else:  # Pending or Running: a suspended or failed job that resumed says so
        for kind in ("Suspended", "Failed"):
            if (get_condition(conditions, kind) or {}).get("status") == "True":
                set_(kind, False, "Resumed")
    return changes


def exhausted_action(
    spec: Mapping[str, Any], status: Mapping[str, Any], generation: int
) -> str | None:
    """Suspend or Fail when spec.remediation.onExhausted says so and the monitor found a
    fault with no remediation left at this generation of the spec (a spec changed since,
    such as the user's resume, waits for the next milestone to say so again)."""
    remediation = spec.get("remediation") or {}
    action = remediation.get("onExhausted", "Continue")
    if action == "Continue" or remediation.get("mode", "auto") != "auto":
        return None
    if status.get("phase") in (*TERMINAL, "Suspended"):
        return None
    healthy = get_condition(status.get("conditions"), "Healthy") or {}
    if (healthy.get("status"), healthy.get("reason")) != ("False", "RemediationExhausted"):
        return None
    return str(action) if int(healthy.get("observedGeneration") or 0) == generation else None


def ttl_expired(job: Mapping[str, Any]) -> bool:
    """Whether a finished job's spec.ttlSecondsAfterFinished has run out (counted from
    completionTime, or from when the Failed condition turned True)."""
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    if ttl is None:
        return False
    status = job.get("status") or {}
    failed = get_condition(status.get("conditions"), "Failed") or {}
    finished = status.get("completionTime") or failed.get("lastTransitionTime")
    return bool(finished) and since(finished) >= int(ttl)
