"""A job of several pods (spec.resources.nodes): rank 0's pod is the job's trainer pod,
launched, watched and relaunched as a single one is (lifecycle). Where the cluster serves
the JobSet API, an attempt is a JobSet (see jobset) and this module watches it; elsewhere
the operator makes the others itself once rank 0 has an address to join at. Either way it
stops the whole gang when one pod is lost, so that the next attempt starts them all again
from the latest checkpoint: a gang whose ranks no longer all answer cannot train on (its
collectives wait for the missing one).

Status fields: `gangAttempt`, the attempt whose other pods were made (a pod of it missing
after that is lost, not yet to be made); `gangStopping`, the attempt being stopped (one
restart per loss); `gangRestarts`, how many times a lost pod restarted the gang."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gentrain_contract import program

from . import batch, builders, jobset, kube, names, pod_status
from .conditions import set_condition, since
from .settings import Settings

log = logging.getLogger("gentrain.gang")
PodReader = Callable[[str, str], Mapping[str, Any] | None]
# How long rank 0 of a gang that lost a pod has to stop (see _restart).
LOST_GRACE_SECONDS = 5
# How long a JobSet may go without rank 0's pod before the job says so (JobSet's and the
# Job controller make it in seconds; none at all: no JobSet controller is running).
JOBSET_START_SECONDS = 60.0


def check(
    job: Mapping[str, Any],
    rank_zero: Mapping[str, Any],
    attempt: int,
    read_pod: PodReader,
    with_gpus: bool,
    settings: Settings,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """For a job of several pods whose rank 0 (`rank_zero`, of `attempt`) is running:
    makes the others, or stops the gang when one is lost. Returns the status changes."""
    meta, status = job["metadata"], job.get("status") or {}
    namespace, job_name = meta["namespace"], meta["name"]
    nodes = names.nodes(job["spec"])
    if int(status.get("gangStopping") or 0) == attempt:
        return {}  # stopping already: the relaunch follows once rank 0 is gone
    peers = [names.gang_pod_name(job_name, attempt, rank) for rank in range(1, nodes)]
    if int(status.get("gangAttempt") or 0) != attempt:
        return _start(
            job, rank_zero["metadata"]["name"], attempt, peers, with_gpus, settings, events
        )
    lost: list[str] = []
    members: list[Mapping[str, Any]] = [rank_zero]
    for name in peers:
        # The operator's reader asks the API server when its index has no such pod: a
        # pod made a moment ago is not taken for one deleted.
        peer = read_pod(namespace, name)
        if peer is None:
            lost.append(f"{name} (deleted)")
            continue
        members.append(peer)
        if (peer.get("status") or {}).get("phase") == "Failed":
            lost.append(failed_pod(peer))
    if lost:
        return _restart(job, rank_zero["metadata"]["name"], attempt, lost, events)
    return _not_together(job, rank_zero["metadata"]["name"], attempt, members, settings, events)


def _not_together(
    job: Mapping[str, Any],
    rank_zero_name: str,
    attempt: int,
    members: Sequence[Mapping[str, Any]],
    settings: Settings,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """For a gang none of whose pods is lost: names the pods the scheduler cannot place,
    or stops the attempt when some never reached rank 0."""
    waiting = [
        f"{pod['metadata']['name']} ({why})"
        for pod in members
        if (pod.get("status") or {}).get("phase") == "Pending"
        and (why := pod_status.unschedulable(pod)) is not None
    ]
    if waiting:
        return _waiting(job, rank_zero_name, waiting, events)
    apart = not_joined(members, settings.rendezvous_seconds)
    if apart:
        return _apart(job, rank_zero_name, attempt, apart, settings, events)
    return {}


def failed_pod(pod: Mapping[str, Any]) -> str:
    """A failed pod of the gang, as a lost one is named."""
    exit_code = pod_status.terminated(pod).get("exitCode")
    return f"{pod['metadata']['name']} (failed: exit code {exit_code})"


def not_joined(pods: Sequence[Mapping[str, Any]], window: float) -> list[str]:
    """The running pods that have not reached rank 0's rendezvous (not Ready: see
    builders.rendezvous_probe) for longer than `window` seconds."""
    apart = []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") != "Running":
            continue
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if (
            ready is not None
            and ready.get("status") == "False"
            and since(ready.get("lastTransitionTime")) > window
        ):
            apart.append(str(pod["metadata"]["name"]))
    return apart


def _apart(
    job: Mapping[str, Any],
    rank_zero_name: str,
    attempt: int,
    apart: list[str],
    settings: Settings,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """Stops a gang some of whose pods never reached rank 0, naming them: torchrun would
    wait 600 s and then fail without saying which. The attempt counts as failed; the
    next one starts them all again."""
    message = (
        f"{', '.join(apart)} could not reach the rendezvous of {rank_zero_name} (rank 0, "
        f"port {program.RENDEZVOUS_PORT}) for {settings.rendezvous_seconds:.0f} s: stopping "
        "the attempt. Check what lies between the job's pods: a NetworkPolicy (the pods of "
        "a job must reach each other on any port), cluster DNS, routes between nodes"
    )
    return {
        **_stop(job, rank_zero_name, attempt, "RendezvousTimeout", message, events),
        **_not_ready(job, "RendezvousTimeout", message),
    }


def _stop(
    job: Mapping[str, Any],
    rank_zero_name: str,
    attempt: int,
    reason: str,
    message: str,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """Stops the attempt through its rank 0, briefly: a rank waiting on a peer's
    collective never reaches its SIGTERM checkpoint (a lost node's connections do not even
    close), and a checkpoint cut short is never used (written aside, then renamed). Rank 0
    gone, the next check relaunches the gang as it relaunches a lost trainer pod."""
    meta = job["metadata"]
    kube.delete_pod(meta["namespace"], rank_zero_name, grace_seconds=LOST_GRACE_SECONDS)
    events.append(("Warning", reason, message))
    log.warning("%s/%s: %s", meta["namespace"], meta["name"], message)
    return {"gangStopping": attempt, "message": message}


def on_jobset(job_name: str, attempt: int, nodes: int) -> bool:
    """Whether this attempt runs as a JobSet: where the API is served and every pod's host
    name fits a DNS label (else as the operator's own pods, which need no names)."""
    if not jobset.fits(job_name, attempt, nodes):
        log.info(
            "%s: attempt %d as pods: its JobSet's host names would be too long", job_name, attempt
        )
        return False
    return jobset.served()


def check_jobset(
    job: Mapping[str, Any],
    rank_zero: Mapping[str, Any],
    attempt: int,
    settings: Settings,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """For a job whose attempt is a JobSet and whose rank 0 runs: stops the attempt when
    the JobSet failed (a pod of it lost), or says which pods the scheduler cannot place."""
    meta, status = job["metadata"], job.get("status") or {}
    namespace = meta["namespace"]
    if int(status.get("gangStopping") or 0) == attempt:
        return {}
    name = jobset.jobset_of(rank_zero) or ""
    found = jobset.read(namespace, name)
    if found is None:
        return {}  # deleted: rank 0 goes with it, and the lifecycle sees that
    changes: dict[str, Any] = {}
    if int(status.get("gangAttempt") or 0) != attempt:
        changes["gangAttempt"] = attempt
    ended = jobset.finished(found)
    members = jobset.pods(namespace, name)
    if ended is not None and ended[0] == "Failed":
        lost = [
            failed_pod(pod) for pod in members if (pod.get("status") or {}).get("phase") == "Failed"
        ] or [f"a pod of JobSet {name} ({ended[1]})"]
        return {**changes, **_restart(job, rank_zero["metadata"]["name"], attempt, lost, events)}
    rank_zero_name = rank_zero["metadata"]["name"]
    return {**changes, **_not_together(job, rank_zero_name, attempt, members, settings, events)}


def jobset_starting(
    job: Mapping[str, Any], attempt: int, events: list[tuple[str, str, str]]
) -> dict[str, Any] | None:
    """For an attempt whose trainer pod does not exist: the status changes while its
    JobSet is still to make it (empty, or once a condition when that takes longer than
    JOBSET_START_SECONDS); None when the attempt is no live JobSet (its pod is lost)."""
    meta, status = job["metadata"], job.get("status") or {}
    if names.nodes(job["spec"]) <= 1 or not jobset.served():
        return None
    name = names.pod_name(meta["name"], attempt)
    found = jobset.read(meta["namespace"], name)
    if (
        found is None
        or found["metadata"].get("deletionTimestamp")
        or jobset.finished(found) is not None
    ):
        return None
    if since(found["metadata"].get("creationTimestamp")) < JOBSET_START_SECONDS:
        return {}
    message = (
        f"JobSet {name} has made no pod in {JOBSET_START_SECONDS:.0f} s: is JobSet's "
        "controller running? (its pods, in the namespace JobSet was installed in, usually "
        "jobset-system). The job starts when it makes them"
    )
    if status.get("message") == message:
        return {}
    events.append(("Warning", "JobSetNotRunning", message))
    return _not_ready(job, "JobSetNotRunning", message)


def _start(
    job: Mapping[str, Any],
    rank_zero_name: str,
    attempt: int,
    peers: list[str],
    with_gpus: bool,
    settings: Settings,
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    namespace = job["metadata"]["namespace"]
    # The whole pod (the index keeps only its status): its uid owns the others, and they
    # go where Kueue and the scheduling rules put it.
    rank_zero = kube.read_pod(namespace, rank_zero_name)
    if rank_zero is None or not (rank_zero.get("status") or {}).get("podIP"):
        return {}
    for rank in range(1, len(peers) + 1):
        kube.create("Pod", namespace, builders.gang_pod(job, rank_zero, rank, with_gpus, settings))
    address = f"{rank_zero['status']['podIP']}:{program.RENDEZVOUS_PORT}"
    events.append(
        (
            "Normal",
            "GangStarted",
            f"started {', '.join(peers)}: they join {rank_zero_name} (rank 0) at {address}",
        )
    )
    return {"gangAttempt": attempt}


def _restart(
    job: Mapping[str, Any],
    rank_zero_name: str,
    attempt: int,
    lost: list[str],
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    status = job.get("status") or {}
    nodes = names.nodes(job["spec"])
    message = (
        f"{', '.join(lost)} of the job's {nodes} pods lost: stopping {rank_zero_name} "
        "(rank 0; the others go with it) to start all of them again from the latest checkpoint"
    )
    return {
        **_stop(job, rank_zero_name, attempt, "GangRestart", message, events),
        "gangRestarts": int(status.get("gangRestarts") or 0) + 1,
    }


def _waiting(
    job: Mapping[str, Any],
    rank_zero_name: str,
    waiting: list[str],
    events: list[tuple[str, str, str]],
) -> dict[str, Any]:
    status = job.get("status") or {}
    message = (
        f"{', '.join(waiting)} not started: the scheduler cannot place them, and "
        f"{rank_zero_name} (rank 0) waits for them to join. Free room for them, or lower "
        "spec.resources.nodes (or what each pod asks for)"
    )
    if status.get("message") == message:
        return {}
    events.append(("Warning", "GangIncomplete", message))
    return _not_ready(job, "GangIncomplete", message)


def _not_ready(job: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The status changes that say why the job's gang is not training: its message, and
    its Ready condition False for that reason."""
    meta, status = job["metadata"], job.get("status") or {}
    generation = int(meta.get("generation", 1))
    conditions = set_condition(
        status.get("conditions"), "Ready", False, reason, message, generation
    )
    return {"message": message, "conditions": conditions}


def stop_previous(job: Mapping[str, Any], attempt: int, read_pod: PodReader) -> None:
    """The other pods of `attempt` that still run (their rank 0 failed, and is kept for its
    logs, so they are not collected with it): stopped before the next attempt's join. A
    JobSet that ended has stopped its running pods itself, and keeps the failed ones."""
    meta = job["metadata"]
    previous = names.pod_name(meta["name"], attempt)
    if jobset.served():  # the attempt may have been a JobSet: stopped, unless it ended
        found = jobset.read(meta["namespace"], previous)
        if found is not None:
            if jobset.finished(found) is None:
                jobset.delete(meta["namespace"], previous)
            return
    for rank in range(1, names.nodes(job["spec"])):
        name = names.gang_pod_name(meta["name"], attempt, rank)
        peer = read_pod(meta["namespace"], name)
        if peer is not None and (peer.get("status") or {}).get("phase") not in batch.TERMINAL:
            kube.delete_pod(meta["namespace"], name)
