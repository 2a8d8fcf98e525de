"""A job's lifecycle, reconciled from what exists (level-triggered, idempotent): its
children, what the job itself asks — suspension, the queue it waits in, a deadline, the
end once every remediation was tried, its expiry — and then its current attempt (see
following). Returns the status fields to patch."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import batch, following, job_object, kube, kueue, launching, names, queueing
from .conditions import get as get_condition
from .conditions import since
from .reconcile_pass import Pass
from .settings import Settings

log = logging.getLogger("gentrain.lifecycle")
WORKLOAD_REFUSED = launching.WORKLOAD_REFUSED
TERMINAL = batch.TERMINAL
PodReader = launching.PodReader


def reconcile(
    job: Mapping[str, Any],
    settings: Settings,
    events: list[tuple[str, str, str]],
    read_pod: PodReader = kube.read_attempt_pod,
    spec_changed: bool = True,
) -> dict[str, Any]:
    """Brings the children in line with the job; returns status changes. `events` collects
    (type, reason, message) for the caller to post. The periodic check passes
    `spec_changed=False` and an in-memory `read_pod`, so that a steady job costs the API
    server nothing; the ConfigMap and claim are then only checked before a launch."""
    changes = _reconcile(job, settings, events, read_pod, spec_changed)
    ended = (
        changes.get("phase") in TERMINAL and (job.get("status") or {}).get("phase") not in TERMINAL
    )
    if ended and queueing.queue_name(job):
        # Before the status that says so: a failed write is retried with the next check.
        kueue.finish(job, changes["phase"] == "Succeeded", str(changes.get("message", "")))
    return batch.with_batch_status(
        job.get("status") or {}, changes, int(job["metadata"].get("generation", 1))
    )


def _reconcile(
    job: Mapping[str, Any],
    settings: Settings,
    events: list[tuple[str, str, str]],
    read_pod: PodReader,
    spec_changed: bool,
) -> dict[str, Any]:
    meta, spec = job["metadata"], job["spec"]
    status: dict[str, Any] = dict(job.get("status") or {})
    namespace, name = meta["namespace"], meta["name"]
    generation = int(meta.get("generation", 1))
    changes: dict[str, Any] = {}
    ready = get_condition(status.get("conditions"), "Ready") or {}
    # Terminal, except a job that failed for want of room whose spec changed since.
    if status.get("phase") in TERMINAL and not (
        spec_changed
        and ready.get("reason") == "CheckpointVolumeFull"
        and int(ready.get("observedGeneration") or 0) < generation
    ):
        if batch.ttl_expired(job):
            # The claim first: deleting the job would take it (and the trained weights)
            # with it, by its ownerReference.
            kube.release_claim(namespace, names.claim_name(name), meta["uid"])
            kube.delete_job(namespace, name, meta["uid"])
            log.info("%s/%s: deleted, spec.ttlSecondsAfterFinished after it ended", namespace, name)
        return changes
    if not spec_changed and status.get("phase") is None:
        # Not handled yet: the create (or resume) handler, running now, launches it. Both
        # would try, and a refused pod would be reported twice.
        return changes
    if spec_changed:
        launching.ensure_children(job, settings)

    rejected = ready.get("reason") == "TrainerPodRejected" and ready.get("status") == "False"
    queued = queueing.queue_name(job) is not None
    if rejected and not queued and WORKLOAD_REFUSED in (ready.get("message") or ""):
        # Refused for its queue label ("install Kueue, or remove the label"), which is
        # gone: not a spec change, but what was refused is no longer asked. Start now.
        rejected = False
    if not queued and status.get("workload"):
        # Its queue label removed: Kueue no longer decides for it. A waiting job starts
        # now (below); a running one trains on, outside Kueue's quota.
        if not kueue.release(job):
            return changes  # changed by Kueue meanwhile: the next check deletes it
        changes["workload"] = None
        events.append(
            (
                "Normal",
                "Dequeued",
                f"the {names.QUEUE_LABEL} label was removed: Workload {status['workload']} "
                "deleted (what Kueue reserved for it is free); the job runs outside Kueue",
            )
        )

    starter = launching.Launcher(job, settings, events, changes, read_pod, spec_changed, rejected)
    attempts = int(status.get("attempts", 0))
    p = Pass(
        job,
        settings,
        events,
        changes,
        read_pod,
        starter,
        attempts=attempts,
        failures=int(status.get("failures", 0)),
        fallback=(get_condition(status.get("conditions"), "GPUFallback") or {}).get("status")
        == "True",
    )
    pod = read_pod(namespace, names.pod_name(name, attempts)) if attempts else None

    if spec.get("suspend"):
        running = pod is not None and (pod.get("status") or {}).get("phase") not in TERMINAL
        if pod is not None and running:
            following.stop(namespace, pod)
            events.append(
                ("Normal", "Suspended", "trainer stopped; it saves a checkpoint on SIGTERM")
            )
        if queued:  # its quota freed for others
            kueue.suspend(job, trainer_stopped=not running)
        if status.get("phase") != "Suspended":
            changes.update({"phase": "Suspended", "message": "suspended by spec.suspend"})
        return changes

    pod_phase = (pod.get("status") or {}).get("phase") if pod is not None else None
    on_exhausted = batch.exhausted_action(spec, status, generation)
    if on_exhausted is not None:
        message = (
            "a fault remains and every remediation was tried "
            f"({(get_condition(p.conditions, 'Healthy') or {}).get('message', '')}); "
            f"spec.remediation.onExhausted: {on_exhausted}"
        )
        if on_exhausted == "Suspend":
            # Through the spec, where the user sees it and turns it back (the generation
            # then moves on, and this exhaustion no longer counts).
            try:
                job_object.patch_job_spec(
                    namespace, name, {"suspend": True}, meta["resourceVersion"]
                )
            except ApiException as error:
                if error.status != 409:
                    raise
                return changes  # changed meanwhile: the next check decides on the new spec
            events.append(("Warning", "SuspendedExhausted", message))
            return changes
        if pod is not None and pod_phase not in TERMINAL:
            following.stop(namespace, pod)  # SIGTERM: it saves, then exits
        p.fail("RemediationExhausted", message)
        events.append(("Warning", "FailedExhausted", message))
        return changes
    deadline = spec.get("activeDeadlineSeconds")
    if (
        deadline
        and status.get("startTime")
        and status.get("phase") != "Suspended"
        and since(status["startTime"]) > int(deadline)
    ):
        if pod is not None and pod_phase not in TERMINAL:
            following.stop(namespace, pod)  # SIGTERM: it saves, then exits
        message = (
            f"stopped at step {status.get('step', 0)}: the job trained longer than "
            f"spec.activeDeadlineSeconds ({int(deadline)} s); its checkpoints are kept"
        )
        p.fail("DeadlineExceeded", message)
        events.append(("Warning", "DeadlineExceeded", message))
        return changes
    if status.get("phase") == "Suspended" and (pod is None or pod_phase in TERMINAL):
        p.launch("resumed after suspension, from the latest checkpoint")
        return changes
    if status.get("phase") == "Failed":  # only a volume-full failure gets here (see above)
        p.launch("the spec changed after the checkpoint volume filled; resuming")
        if changes.get("attempts"):
            p.not_ready("TrainerStarting", changes["message"])
        return changes
    if queued and pod is not None and pod_phase not in TERMINAL:
        eviction = kueue.evicted(job)
        if eviction is not None:
            following.stop(namespace, pod)  # SIGTERM: it saves, then exits
            if ready.get("reason") != "EvictedByKueue":
                message = (
                    f"evicted by Kueue ({eviction[0]}: {eviction[1]}); the trainer saves a "
                    "checkpoint and stops, and resumes from it once Kueue admits the job again"
                )
                changes.update({"phase": "Pending", "message": message})
                p.not_ready("EvictedByKueue", message)
                events.append(("Warning", "Evicted", message))
            return changes
    if pod is None:
        following.gone(p)
    else:
        following.follow(p, pod)
    return changes
