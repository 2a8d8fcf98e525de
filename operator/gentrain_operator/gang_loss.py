"""A gang whose rank 0 ended before the operator saw one of its other pods lost: which
pod was lost first, and the GangRestart that says so. Rank 0 ends through a lost pod —
its collective loses that rank, or its JobSet removes it as the lost pod fails the
JobSet — so without this the attempt read as rank 0's own failure (TrainerFailed) or
loss (TrainerLost)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from . import jobset, names, pod_status
from .conditions import since
from .gang import PodReader, failed_pod

log = logging.getLogger("gentrain.gang")
# How long a failed rank 0 of a JobSet waits for its JobSet to say which of its Jobs failed
# first (its controller does within seconds of the Job controller; none: it does not).
JOBSET_VERDICT_SECONDS = 30.0
# How the JobSet controller names the Job whose failure failed the JobSet.
FIRST_FAILED_JOB = re.compile(r"first failed job: ([a-z0-9.-]+)\)")


def lost_first(
    job: Mapping[str, Any],
    rank_zero: Mapping[str, Any] | None,
    attempt: int,
    read_pod: PodReader,
) -> list[str] | None:
    """For a gang whose rank 0 of `attempt` failed (`rank_zero`, kept for its logs) or is
    gone (None) before the operator stopped the attempt: the other pods lost before it.
    Rank 0 then ended through them — its collective lost their ranks, or its JobSet removed
    it as the lost pod failed the JobSet — and the attempt ended as a GangRestart would
    have ended it. Empty when rank 0 ended on its own, or nothing tells (a gang of the
    operator's own pods whose rank 0 is gone took them with it); None while rank 0's
    JobSet has still to say which of its Jobs failed first (the next check asks again)."""
    meta, status = job["metadata"], job.get("status") or {}
    nodes = names.nodes(job["spec"])
    if (
        nodes <= 1
        or int(status.get("gangAttempt") or 0) != attempt
        or int(status.get("gangStopping") or 0) == attempt
    ):
        return []  # one pod, its others never made, or stopped by the operator already
    namespace = meta["namespace"]
    if rank_zero is None or jobset.jobset_of(rank_zero):
        return _first_failed_worker(namespace, names.pod_name(meta["name"], attempt), rank_zero)
    ended = str(pod_status.terminated(rank_zero).get("finishedAt") or "")
    lost = []
    for rank in range(1, nodes):
        name = names.gang_pod_name(meta["name"], attempt, rank)
        peer = read_pod(namespace, name)
        if peer is None:
            lost.append(f"{name} (deleted)")  # its owner, rank 0, is still there
        elif (peer.get("status") or {}).get("phase") == "Failed" and str(
            pod_status.terminated(peer).get("finishedAt") or "~"
        ) < ended:  # RFC 3339 times, to the second: earlier, not at the same time
            lost.append(failed_pod(peer))
    return lost


def _first_failed_worker(
    namespace: str, name: str, rank_zero: Mapping[str, Any] | None
) -> list[str] | None:
    """The worker Job its JobSet names as the first of its Jobs to fail, if a worker's."""
    found = jobset.read(namespace, name) if jobset.served() else None
    if found is None:
        return []
    ended = jobset.finished(found)
    if ended is None:
        finished_at = pod_status.terminated(rank_zero or {}).get("finishedAt")
        waited = since(finished_at) if finished_at else JOBSET_VERDICT_SECONDS
        return None if waited < JOBSET_VERDICT_SECONDS else []
    first = FIRST_FAILED_JOB.search(ended[1]) if ended[0] == "Failed" else None
    if first is None or not first.group(1).startswith(f"{name}-{jobset.WORKERS}-"):
        return []
    return [f"the pod of Job {first.group(1)} (the first of JobSet {name}'s Jobs to fail)"]


def restarted_by_loss(
    job: Mapping[str, Any],
    lost: list[str],
    rank_zero_name: str,
    how: str,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """The GangRestart of an attempt that rank 0 ended (`how`) after `lost` were lost,
    before the operator saw the loss: said as the operator's own restart says it."""
    status = job.get("status") or {}
    message = (
        f"{', '.join(lost)} of the job's {names.nodes(job['spec'])} pods lost; rank 0 "
        f"({rank_zero_name}) {how} after it: starting all of them again from the latest "
        "checkpoint"
    )
    events.append(("Warning", "GangRestart", message))
    log.warning("%s/%s: %s", job["metadata"]["namespace"], job["metadata"]["name"], message)
    return {"gangRestarts": int(status.get("gangRestarts") or 0) + 1}
