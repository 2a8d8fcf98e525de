"""A job's lifecycle, reconciled from what exists (level-triggered, idempotent):
ConfigMap, checkpoint claim, the trainer pod and its attempts, suspension, completion,
failure, and the CPU fallback. Returns the status fields to patch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import batch, gang, job_object, jobset, kube, kueue, launching, names, pod_status, queueing
from .conditions import get as get_condition
from .conditions import set_condition, since
from .gang_loss import lost_first, restarted_by_loss
from .settings import Settings

log = logging.getLogger("gentrain.lifecycle")
# The trainer's exit codes that no retry can fix (gentrain_trainer.__main__).
CONFIG_ERROR_EXIT, VOLUME_FULL_EXIT = 2, 3
WORKLOAD_REFUSED = launching.WORKLOAD_REFUSED
TERMINAL = batch.TERMINAL
# (namespace, name) -> the pod as a dict, or None when it does not exist.
PodReader = Callable[[str, str], Mapping[str, Any] | None]


def _stop(namespace: str, pod: Mapping[str, Any], grace_seconds: int | None = None) -> None:
    """Stops an attempt: its trainer pod, or the JobSet whose rank 0 it is (the workers
    with it; a rank 0 deleted alone would fail the JobSet, and the attempt, for nothing)."""
    owner = jobset.jobset_of(pod)
    if owner is not None:
        jobset.delete(namespace, owner)
    elif grace_seconds is None:  # the pod's own grace: SIGTERM, and time to save
        kube.delete_pod(namespace, pod["metadata"]["name"])
    else:
        kube.delete_pod(namespace, pod["metadata"]["name"], grace_seconds=grace_seconds)


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

    attempts = int(status.get("attempts", 0))
    failures = int(status.get("failures", 0))
    backoff_limit = int(spec.get("backoffLimit", settings.backoff_limit))
    fallback = (get_condition(status.get("conditions"), "GPUFallback") or {}).get(
        "status"
    ) == "True"
    pod = read_pod(namespace, names.pod_name(name, attempts)) if attempts else None
    conditions = status.get("conditions")
    resources = spec.get("resources") or {}
    wants_gpus = int(resources.get("gpus", 0)) > 0

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

    def launch(reason: str) -> None:
        nonlocal attempts
        attempts = starter.start(reason, attempts, with_gpus=wants_gpus and not fallback)

    def fail(reason: str, message: str) -> None:
        changes.update({"phase": "Failed", "message": message})
        changes["conditions"] = set_condition(
            conditions, "Ready", False, reason, message, generation
        )

    if spec.get("suspend"):
        running = pod is not None and (pod.get("status") or {}).get("phase") not in TERMINAL
        if pod is not None and running:
            _stop(namespace, pod)
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
            f"({(get_condition(conditions, 'Healthy') or {}).get('message', '')}); "
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
            _stop(namespace, pod)  # SIGTERM: it saves, then exits
        fail("RemediationExhausted", message)
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
            _stop(namespace, pod)  # SIGTERM: it saves, then exits
        message = (
            f"stopped at step {status.get('step', 0)}: the job trained longer than "
            f"spec.activeDeadlineSeconds ({int(deadline)} s); its checkpoints are kept"
        )
        fail("DeadlineExceeded", message)
        events.append(("Warning", "DeadlineExceeded", message))
        return changes
    if status.get("phase") == "Suspended" and (pod is None or pod_phase in TERMINAL):
        launch("resumed after suspension, from the latest checkpoint")
        return changes
    if status.get("phase") == "Failed":  # only a volume-full failure gets here (see above)
        launch("the spec changed after the checkpoint volume filled; resuming")
        if changes.get("attempts"):
            changes["conditions"] = set_condition(
                conditions, "Ready", False, "TrainerStarting", changes["message"], generation
            )
        return changes
    if queued and pod is not None and pod_phase not in TERMINAL:
        eviction = kueue.evicted(job)
        if eviction is not None:
            _stop(namespace, pod)  # SIGTERM: it saves, then exits
            if ready.get("reason") != "EvictedByKueue":
                message = (
                    f"evicted by Kueue ({eviction[0]}: {eviction[1]}); the trainer saves a "
                    "checkpoint and stops, and resumes from it once Kueue admits the job again"
                )
                changes.update({"phase": "Pending", "message": message})
                changes["conditions"] = set_condition(
                    conditions, "Ready", False, "EvictedByKueue", message, generation
                )
                events.append(("Warning", "Evicted", message))
            return changes
    if pod_phase == "Succeeded" and pod_status.terminated(pod or {}).get("message", "").startswith(
        "stopped"
    ):
        # SIGTERM from outside (a drained node, an evicted pod): the trainer saved and
        # stopped before the end. Not a failure: carry on from that checkpoint. (A job that
        # waits for Kueue after an eviction said so already.)
        if not (queued and status.get("phase") == "Pending"):
            events.append(
                ("Warning", "TrainerStopped", pod_status.terminated(pod or {}).get("message", ""))
            )
        launch("the trainer was stopped before the end; resuming from its checkpoint")
        return changes

    if pod is None:
        starting = gang.jobset_starting(job, attempts, events) if attempts else None
        if starting is not None:  # its JobSet has not made rank 0's pod yet: not lost
            changes.update(starting)
            return changes
        if attempts and status.get("phase") not in ("Suspended", None, "Pending"):
            failures += 1
            changes["failures"] = failures
            rank_zero_name = names.pod_name(name, attempts)
            lost = lost_first(job, None, attempts, read_pod)
            if lost:
                how = "was removed"  # with its failed JobSet
                changes.update(restarted_by_loss(job, lost, rank_zero_name, how, events))
            else:
                events.append(("Warning", "TrainerLost", f"trainer pod {rank_zero_name} is gone"))
        if failures > backoff_limit:
            fail(
                "BackoffLimitExceeded",
                f"{failures} trainer attempts failed (backoff limit {backoff_limit})",
            )
            return changes
        launch("resuming from the latest checkpoint" if attempts else "job created")
        return changes

    phase = (pod.get("status") or {}).get("phase")
    # Not for a job Kueue admitted: it runs where its flavours are, as admitted.
    if (
        phase == "Pending"
        and wants_gpus
        and not fallback
        and not queued
        and resources.get("allowCPUFallback")
    ):
        short_of_gpus, age = pod_status.unschedulable_for_gpus(pod)
        wait = float(resources.get("fallbackAfterSeconds", 120))
        if (short_of_gpus and age >= wait) or (
            age >= min(wait, 5.0) and not kube.any_node_has_gpus()
        ):
            message = (
                f"no node could give {resources['gpus']} nvidia.com/gpu for {age:.0f} s; "
                "running on CPU instead (allowCPUFallback)"
            )
            _stop(namespace, pod, grace_seconds=0)
            fallback = True
            changes["conditions"] = set_condition(
                conditions, "GPUFallback", True, "NoGPUAvailable", message, generation
            )
            events.append(("Warning", "GPUFallback", message))
            launch("CPU fallback")
            return changes
    trouble = pod_status.node_trouble(pod) if phase == "Running" else None
    if trouble is not None:
        node, why = trouble
        if ready.get("reason") != "NodeLost":
            message = (
                f"the trainer's node {node} is not reporting ({why}). The trainer may still "
                "be running there, so no second pod is started: two would write the same "
                f"checkpoints. If the node is gone for good, delete it (kubectl delete node "
                f"{node}) or taint it node.kubernetes.io/out-of-service=nodeshutdown:NoExecute; "
                "its pods are then removed and the job resumes from its latest checkpoint"
            )
            changes["message"] = message
            changes["conditions"] = set_condition(
                conditions, "Ready", False, "NodeLost", message, generation
            )
            events.append(("Warning", "NodeLost", message))
        return changes
    if phase == "Running" and ready.get("reason") == "NodeLost":
        changes["message"] = "training"
        changes["conditions"] = set_condition(
            conditions, "Ready", True, "TrainerRunning", "the trainer's node is back", generation
        )
        events.append(("Normal", "NodeRecovered", "the trainer's node is reporting again"))
    if names.nodes(spec) > 1 and phase == "Running":
        with_gpus = wants_gpus and not fallback
        joined = (
            gang.check_jobset(job, pod, attempts, settings, events)
            if jobset.jobset_of(pod)
            else gang.check(job, pod, attempts, read_pod, with_gpus, settings, events)
        )
        changes.update(joined)
        if "gangStopping" in joined:
            return changes
    unschedulable = pod_status.unschedulable(pod) if phase == "Pending" else None
    if unschedulable is not None and ready.get("reason") != "Unschedulable":
        message = (
            f"the scheduler cannot place the trainer pod: {unschedulable}. The job waits for a "
            "node that fits (one may be added); change spec.scheduling or spec.resources to "
            "run elsewhere"
        )
        changes["message"] = message
        changes["conditions"] = set_condition(
            conditions, "Ready", False, "Unschedulable", message, generation
        )
        events.append(("Warning", "Unschedulable", message))
    if phase == "Running" and status.get("phase") != "Running":
        changes.update(
            {"phase": "Running", "message": "training", "podIP": pod["status"].get("podIP")}
        )
        changes["conditions"] = set_condition(
            conditions, "Ready", True, "TrainerRunning", "the trainer is running", generation
        )
    elif phase == "Running" and status.get("podIP") != pod["status"].get("podIP"):
        changes["podIP"] = pod["status"].get("podIP")
    elif phase == "Succeeded" and pod_status.final_milestone_unrecorded(pod, status):
        pass  # the next check, a few seconds on, finds it written (or the wait over)
    elif phase == "Succeeded":
        message = "training finished"
        completed, recorded = (
            pod_status.completed_steps(pod),
            int(status.get("checkpointStep") or 0),
        )
        if completed is not None and recorded < completed:
            # Said, not hidden: status (and the report's "after") stops at an earlier step.
            message = (
                f"training finished ({completed} steps), but its final milestone was never "
                f"read: status shows step {recorded}'s. The checkpoint of step {completed} "
                "is on the volume"
            )
            events.append(("Warning", "FinalMilestoneUnread", message))
        changes.update({"phase": "Succeeded", "message": message})
        changes["conditions"] = set_condition(
            conditions, "Ready", False, "Completed", message, generation
        )
        events.append(("Normal", "Completed", "training finished"))
    elif phase == "Failed":
        terminated = pod_status.terminated(pod)
        code = terminated.get("exitCode")
        message = (terminated.get("message") or "").strip()
        if code == CONFIG_ERROR_EXIT:
            fail("InvalidConfiguration", message or "the trainer rejected its configuration")
            events.append(("Warning", "InvalidConfiguration", changes["message"]))
            return changes
        if code == VOLUME_FULL_EXIT:
            # Another attempt would fill the volume again; every earlier checkpoint is kept.
            fail(
                "CheckpointVolumeFull",
                f"{message or 'checkpoint volume full'}. Grow PersistentVolumeClaim "
                f"{names.claim_name(name)} (where its StorageClass allows expansion) or lower "
                "spec.checkpoints.keep: any change to the spec resumes the job from its last "
                "checkpoint",
            )
            events.append(("Warning", "CheckpointVolumeFull", changes["message"]))
            return changes
        lost = lost_first(job, pod, attempts, read_pod)
        if lost is None:
            return changes  # its JobSet has still to say which pod failed first
        failures += 1
        changes["failures"] = failures
        if terminated.get("reason") == "OOMKilled":
            message = (
                f"OOMKilled: the trainer went over its memory limit "
                f"({resources.get('memory', '2Gi')}); raise spec.resources.memory or lower "
                "spec.dataset.batchSize"
            )
            changes["conditions"] = set_condition(
                conditions, "Ready", False, "OOMKilled", message, generation
            )
            events.append(("Warning", "OOMKilled", message))
        elif lost:
            how = f"exited with code {code}"
            changes.update(restarted_by_loss(job, lost, pod["metadata"]["name"], how, events))
        else:
            events.append(("Warning", "TrainerFailed", f"exit code {code}: {message[-300:]}"))
        if failures > backoff_limit:
            fail(
                "BackoffLimitExceeded",
                f"trainer failed {failures} times; last: exit code {code}: {message[-500:]}",
            )
            return changes
        launch(f"attempt after exit code {code}, resuming from the latest checkpoint")
    if changes.get("phase") in ("Running", None) and status.get("observedGeneration") != generation:
        changes["observedGeneration"] = generation
    return changes
