"""Following a job's current attempt: what the state of its trainer pod — stopped from
outside, gone, pending, running, finished, failed — means for the job, and the attempt
that follows where one should."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import gang, jobset, kube, names, pod_status
from .conditions import set_condition
from .gang_loss import lost_first, restarted_by_loss
from .reconcile_pass import Pass

# The trainer's exit codes that no retry can fix (gentrain_trainer.__main__).
CONFIG_ERROR_EXIT, VOLUME_FULL_EXIT = 2, 3


def stop(namespace: str, pod: Mapping[str, Any], grace_seconds: int | None = None) -> None:
    """Stops an attempt: its trainer pod, or the JobSet whose rank 0 it is (the workers
    with it; a rank 0 deleted alone would fail the JobSet, and the attempt, for nothing)."""
    owner = jobset.jobset_of(pod)
    if owner is not None:
        jobset.delete(namespace, owner)
    elif grace_seconds is None:  # the pod's own grace: SIGTERM, and time to save
        kube.delete_pod(namespace, pod["metadata"]["name"])
    else:
        kube.delete_pod(namespace, pod["metadata"]["name"], grace_seconds=grace_seconds)


def gone(p: Pass) -> None:
    """No trainer pod: none started yet, or the attempt's pod was removed."""
    status, changes, events = p.status, p.changes, p.events
    starting = gang.jobset_starting(p.job, p.attempts, events) if p.attempts else None
    if starting is not None:  # its JobSet has not made rank 0's pod yet: not lost
        changes.update(starting)
        return
    if p.attempts and status.get("phase") not in ("Suspended", None, "Pending"):
        p.failures += 1
        changes["failures"] = p.failures
        rank_zero_name = names.pod_name(p.name, p.attempts)
        lost = lost_first(p.job, None, p.attempts, p.read_pod)
        if lost:
            how = "was removed"  # with its failed JobSet
            changes.update(restarted_by_loss(p.job, lost, rank_zero_name, how, events))
        else:
            events.append(("Warning", "TrainerLost", f"trainer pod {rank_zero_name} is gone"))
    if p.failures > p.backoff_limit:
        p.fail(
            "BackoffLimitExceeded",
            f"{p.failures} trainer attempts failed (backoff limit {p.backoff_limit})",
        )
        return
    p.launch("resuming from the latest checkpoint" if p.attempts else "job created")


def follow(p: Pass, pod: Mapping[str, Any]) -> None:
    """The attempt's trainer pod, as it is now."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded" and pod_status.terminated(pod).get("message", "").startswith("stopped"):
        _stopped_from_outside(p, pod)
        return
    if phase == "Pending" and _fell_back_to_cpu(p, pod):
        return
    if phase == "Running" and not _on_a_reporting_node(p, pod):
        return
    if names.nodes(p.spec) > 1 and phase == "Running":
        joined = (
            gang.check_jobset(p.job, pod, p.attempts, p.settings, p.events)
            if jobset.jobset_of(pod)
            else gang.check(p.job, pod, p.attempts, p.read_pod, p.with_gpus, p.settings, p.events)
        )
        p.changes.update(joined)
        if "gangStopping" in joined:
            return
    if phase == "Pending":
        _unschedulable(p, pod)
    if phase == "Running":
        _running(p, pod)
    elif phase == "Succeeded":
        _succeeded(p, pod)
    elif phase == "Failed" and not _failed(p, pod):
        return
    if p.changes.get("phase") in ("Running", None) and p.status.get("observedGeneration") != (
        p.generation
    ):
        p.changes["observedGeneration"] = p.generation


def _stopped_from_outside(p: Pass, pod: Mapping[str, Any]) -> None:
    # SIGTERM from outside (a drained node, an evicted pod): the trainer saved and stopped
    # before the end. Not a failure: carry on from that checkpoint. (A job that waits for
    # Kueue after an eviction said so already.)
    if not (p.queued and p.status.get("phase") == "Pending"):
        p.events.append(
            ("Warning", "TrainerStopped", pod_status.terminated(pod).get("message", ""))
        )
    p.launch("the trainer was stopped before the end; resuming from its checkpoint")


def _fell_back_to_cpu(p: Pass, pod: Mapping[str, Any]) -> bool:
    """A pod pending for want of GPUs, replaced by one on CPU where the spec allows it. Not
    for a job Kueue admitted: it runs where its flavours are, as admitted."""
    resources = p.resources
    if not (p.with_gpus and not p.queued and resources.get("allowCPUFallback")):
        return False
    short_of_gpus, age = pod_status.unschedulable_for_gpus(pod)
    wait = float(resources.get("fallbackAfterSeconds", 120))
    if not (
        (short_of_gpus and age >= wait) or (age >= min(wait, 5.0) and not kube.any_node_has_gpus())
    ):
        return False
    message = (
        f"no node could give {resources['gpus']} nvidia.com/gpu for {age:.0f} s; "
        "running on CPU instead (allowCPUFallback)"
    )
    stop(p.namespace, pod, grace_seconds=0)
    p.fallback = True
    p.changes["conditions"] = set_condition(
        p.conditions, "GPUFallback", True, "NoGPUAvailable", message, p.generation
    )
    p.events.append(("Warning", "GPUFallback", message))
    p.launch("CPU fallback")
    return True


def _on_a_reporting_node(p: Pass, pod: Mapping[str, Any]) -> bool:
    """False while the running trainer's node is not reporting: no second pod is started."""
    trouble = pod_status.node_trouble(pod)
    if trouble is not None:
        node, why = trouble
        if p.ready.get("reason") != "NodeLost":
            message = (
                f"the trainer's node {node} is not reporting ({why}). The trainer may still "
                "be running there, so no second pod is started: two would write the same "
                f"checkpoints. If the node is gone for good, delete it (kubectl delete node "
                f"{node}) or taint it node.kubernetes.io/out-of-service=nodeshutdown:NoExecute; "
                "its pods are then removed and the job resumes from its latest checkpoint"
            )
            p.changes["message"] = message
            p.not_ready("NodeLost", message)
            p.events.append(("Warning", "NodeLost", message))
        return False
    if p.ready.get("reason") == "NodeLost":
        p.changes["message"] = "training"
        p.changes["conditions"] = set_condition(
            p.conditions,
            "Ready",
            True,
            "TrainerRunning",
            "the trainer's node is back",
            p.generation,
        )
        p.events.append(("Normal", "NodeRecovered", "the trainer's node is reporting again"))
    return True


def _unschedulable(p: Pass, pod: Mapping[str, Any]) -> None:
    unschedulable = pod_status.unschedulable(pod)
    if unschedulable is None or p.ready.get("reason") == "Unschedulable":
        return
    message = (
        f"the scheduler cannot place the trainer pod: {unschedulable}. The job waits for a "
        "node that fits (one may be added); change spec.scheduling or spec.resources to "
        "run elsewhere"
    )
    p.changes["message"] = message
    p.not_ready("Unschedulable", message)
    p.events.append(("Warning", "Unschedulable", message))


def _running(p: Pass, pod: Mapping[str, Any]) -> None:
    pod_ip = pod["status"].get("podIP")
    if p.status.get("phase") != "Running":
        p.changes.update({"phase": "Running", "message": "training", "podIP": pod_ip})
        p.changes["conditions"] = set_condition(
            p.conditions, "Ready", True, "TrainerRunning", "the trainer is running", p.generation
        )
    elif p.status.get("podIP") != pod_ip:
        p.changes["podIP"] = pod_ip


def _succeeded(p: Pass, pod: Mapping[str, Any]) -> None:
    if pod_status.final_milestone_unrecorded(pod, p.status):
        return  # the next check, a few seconds on, finds it written (or the wait over)
    message = "training finished"
    completed = pod_status.completed_steps(pod)
    recorded = int(p.status.get("checkpointStep") or 0)
    if completed is not None and recorded < completed:
        # Said, not hidden: status (and the report's "after") stops at an earlier step.
        message = (
            f"training finished ({completed} steps), but its final milestone was never "
            f"read: status shows step {recorded}'s. The checkpoint of step {completed} "
            "is on the volume"
        )
        p.events.append(("Warning", "FinalMilestoneUnread", message))
    p.changes.update({"phase": "Succeeded", "message": message})
    p.not_ready("Completed", message)
    p.events.append(("Normal", "Completed", "training finished"))


def _failed(p: Pass, pod: Mapping[str, Any]) -> bool:
    """The trainer failed: the job fails, or the next attempt starts. False when nothing
    more is to be decided this pass."""
    terminated = pod_status.terminated(pod)
    code = terminated.get("exitCode")
    message = (terminated.get("message") or "").strip()
    if code == CONFIG_ERROR_EXIT:
        p.fail("InvalidConfiguration", message or "the trainer rejected its configuration")
        p.events.append(("Warning", "InvalidConfiguration", p.changes["message"]))
        return False
    if code == VOLUME_FULL_EXIT:
        # Another attempt would fill the volume again; every earlier checkpoint is kept.
        p.fail(
            "CheckpointVolumeFull",
            f"{message or 'checkpoint volume full'}. Grow PersistentVolumeClaim "
            f"{names.claim_name(p.name)} (where its StorageClass allows expansion) or lower "
            "spec.checkpoints.keep: any change to the spec resumes the job from its last "
            "checkpoint",
        )
        p.events.append(("Warning", "CheckpointVolumeFull", p.changes["message"]))
        return False
    lost = lost_first(p.job, pod, p.attempts, p.read_pod)
    if lost is None:
        return False  # its JobSet has still to say which pod failed first
    p.failures += 1
    p.changes["failures"] = p.failures
    if terminated.get("reason") == "OOMKilled":
        # The kernel's kill leaves no message of the trainer's: this one stands for it,
        # in the backoff limit's message too.
        message = (
            f"OOMKilled: the trainer went over its memory limit "
            f"({p.resources.get('memory', '2Gi')}); raise spec.resources.memory or lower "
            "spec.dataset.batchSize"
        )
        p.not_ready("OOMKilled", message)
        p.events.append(("Warning", "OOMKilled", message))
    elif lost:
        how = f"exited with code {code}"
        p.changes.update(restarted_by_loss(p.job, lost, pod["metadata"]["name"], how, p.events))
    else:
        p.events.append(("Warning", "TrainerFailed", f"exit code {code}: {message[-300:]}"))
    if p.failures > p.backoff_limit:
        p.fail(
            "BackoffLimitExceeded",
            f"trainer failed {p.failures} times; last: exit code {code}: {message[-500:]}",
        )
        return False
    p.launch(f"attempt after exit code {code}, resuming from the latest checkpoint")
    return True
