"""What a trainer pod's status says (pure, but for the node it runs on): why it cannot be
placed, whether its node was lost, how its container ended, and whether its final
milestone may still be on its way to the job's status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import kube
from .conditions import get as get_condition
from .conditions import since

# A trainer exits as soon as its final milestone has been scraped; the monitor then still
# has to write it. Succeeded waits for that write (at most this long), so that a job seen
# Succeeded shows its final milestone: `kubectl wait` then a read of status.checkpointStep
# once read the one before it, on a busy operator.
FINAL_MILESTONE_WAIT_SECONDS = 30.0
# The trainer's termination message for a run whose final milestone was scraped.
COMPLETED = re.compile(r"completed (\d+) steps")


def unschedulable_for_gpus(pod: Mapping[str, Any]) -> tuple[bool, float]:
    """(unschedulable for lack of GPUs, seconds since the pod was created)."""
    reason = unschedulable(pod)
    short_of_gpus = reason is not None and "nvidia.com/gpu" in reason
    return short_of_gpus, since(pod["metadata"]["creationTimestamp"])


def unschedulable(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's reason the pod cannot be placed, or None."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return str(condition.get("message") or "no node fits the pod")
    return None


def node_trouble(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(node, why) when the trainer's node stopped reporting, else None. The node is read
    only when the pod is marked not ready while running, which is what the node lifecycle
    controller does to every pod of a node it has lost (the trainer has no readiness
    probe, so nothing else does)."""
    ready = get_condition((pod.get("status") or {}).get("conditions"), "Ready")
    node = (pod.get("spec") or {}).get("nodeName")
    if ready is None or ready.get("status") != "False" or not node:
        return None
    readiness = kube.node_readiness(node)
    if readiness is None or readiness[0] == "True":
        return None
    return node, f"Ready={readiness[0]}: {readiness[1] or 'no message'}"


def terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}).get("terminated") or {} if statuses else {}


def completed_steps(pod: Mapping[str, Any]) -> int | None:
    """The steps the trainer says it completed (scraped at the end or not), or None."""
    found = COMPLETED.match((terminated(pod).get("message") or "").strip())
    return int(found[1]) if found else None


def final_milestone_unrecorded(pod: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the trainer completed with its final milestone scraped (its message says so)
    but status does not hold it yet, and the monitor may still be writing it."""
    ended = terminated(pod)
    completed = COMPLETED.fullmatch((ended.get("message") or "").strip())
    if completed is None:  # not scraped before it exited, or not gentrain's trainer
        return False
    if int(status.get("checkpointStep") or 0) >= int(completed[1]):
        return False
    return since(ended.get("finishedAt")) < FINAL_MILESTONE_WAIT_SECONDS
