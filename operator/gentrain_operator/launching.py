"""Starting an attempt of a job: its children made as the spec renders them (ConfigMap,
checkpoint claim, NetworkPolicy), Kueue's admission where the job is queued, then the
trainer itself — one pod, or for a job of several pods a JobSet or the operator's own
gang (see gang) — and, when the API server refuses it, a condition that says what to fix
and when the operator tries again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import builders, capacity, gang, jobset, kube, kueue, names, queueing
from .conditions import get as get_condition
from .conditions import now, set_condition, since
from .settings import Settings
from .trainer_config import render_job

# A trainer the API server refused is sent again on a spec change at once, and otherwise
# this often (what was missing, such as a PriorityClass, may be created).
REJECTED_RETRY_SECONDS = 300.0
# What the API server refused, in the message of a job whose Kueue Workload it refused.
WORKLOAD_REFUSED = "the job's Kueue Workload"
TRAINER_POD = "the trainer pod"
# (namespace, name) -> the pod as a dict, or None when it does not exist.
PodReader = Callable[[str, str], Mapping[str, Any] | None]


def ensure_children(job: Mapping[str, Any], settings: Settings) -> None:
    """The trainer's ConfigMap as the spec renders it, its checkpoint claim, and the
    NetworkPolicy in front of its pod."""
    _ensure_config(job)
    namespace = job["metadata"]["namespace"]
    claim = builders.checkpoint_claim(job)
    if claim is not None:
        kube.create("PersistentVolumeClaim", namespace, claim)
    policy = builders.network_policy(job, settings)
    if policy is not None:
        kube.create("NetworkPolicy", namespace, policy)


def _ensure_config(job: Mapping[str, Any]) -> None:
    meta = job["metadata"]
    wanted = builders.config_map(job, render_job(job))
    existing = kube.read_config_map(meta["namespace"], wanted["metadata"]["name"])
    if existing is None:
        kube.create("ConfigMap", meta["namespace"], wanted)
    elif existing.get("data") != wanted["data"]:
        version = kube.replace_config_map(meta["namespace"], wanted["metadata"]["name"], wanted)
        attempts = int((job.get("status") or {}).get("attempts", 0))
        if attempts:  # the running trainer reads it now, not at its kubelet's next sync
            kube.nudge_trainer(meta["namespace"], names.pod_name(meta["name"], attempts), version)


class Launcher:
    """Starts a job's next attempt, writing what it did into `changes` and `events` (the
    reconcile's): one per reconcile, for the job as read at its start."""

    def __init__(
        self,
        job: Mapping[str, Any],
        settings: Settings,
        events: list[tuple[str, str, str]],
        changes: dict[str, Any],
        read_pod: PodReader,
        spec_changed: bool,
        rejected: bool,
    ) -> None:
        self.job, self.settings, self.events, self.changes = job, settings, events, changes
        self.read_pod, self.spec_changed, self.rejected = read_pod, spec_changed, rejected
        self.status: Mapping[str, Any] = job.get("status") or {}
        self.generation = int(job["metadata"].get("generation", 1))

    def start(self, reason: str, attempts: int, with_gpus: bool) -> int:
        """Starts attempt `attempts + 1` (unless it waits for Kueue, or was refused as it
        is and waits for a spec change or the retry); returns the attempts made."""
        job, status, changes = self.job, self.status, self.changes
        meta, spec = job["metadata"], job["spec"]
        namespace, name = meta["namespace"], meta["name"]
        if (
            self.rejected
            and not self.spec_changed
            and since(status.get("rejectedAt")) < REJECTED_RETRY_SECONDS
        ):
            return attempts  # refused as it is; wait for a spec change or the next retry
        body = builders.trainer_pod(job, attempts + 1, with_gpus=with_gpus, settings=self.settings)
        refused = TRAINER_POD
        try:
            if queueing.queue_name(job) is not None:
                # Started only once Kueue admits it, on the flavours it assigned.
                refused = WORKLOAD_REFUSED
                where = kueue.admit(job, body)
                workload = names.workload_name(name, meta["uid"])
                if status.get("workload") != workload:
                    changes["workload"] = workload
                if isinstance(where, str):
                    self._wait_for_admission(where)
                    return attempts
                body, refused = queueing.placed(body, where), TRAINER_POD
                self.events.append(
                    (
                        "Normal",
                        "Admitted",
                        f"admitted by Kueue: ClusterQueue {where.cluster_queue}, flavours "
                        f"{', '.join(where.flavors) or 'none'}",
                    )
                )
            nodes = names.nodes(spec)
            if nodes > 1 and not self._can_ever_fit(body, nodes, with_gpus):
                return attempts
            if not self.spec_changed:
                ensure_children(job, self.settings)
            if attempts and nodes > 1:
                gang.stop_previous(job, attempts, self.read_pod)
            if nodes > 1 and gang.on_jobset(name, attempts + 1, nodes):
                refused = "the trainer's JobSet"
                created = jobset.create(namespace, jobset.build(body, nodes))
                started = f"JobSet {body['metadata']['name']} ({nodes} pods)"
            else:
                created = kube.create("Pod", namespace, body)
                started = body["metadata"]["name"]
        except kube.RejectedError as error:
            self._refused(refused, str(error))
            return attempts
        changes.update(
            {
                "attempts": attempts + 1,
                "podName": body["metadata"]["name"],
                "phase": "Pending",
                "message": reason,
            }
        )
        if created:  # else a concurrent reconcile made it: the name is deterministic
            self.events.append(("Normal", "TrainerStarted", f"started {started}: {reason}"))
        return attempts + 1

    def _can_ever_fit(self, body: Mapping[str, Any], nodes: int, with_gpus: bool) -> bool:
        """False, with a condition that says so, when the cluster's nodes could never hold
        all `nodes` pods: not one is made (none would hold what it asked for, waiting for
        the others). Not asked of a job Kueue admitted (it admits a gang whole), nor of one
        that may fall back to CPU (the fallback decides on its pending pod)."""
        resources = self.job["spec"].get("resources") or {}
        if queueing.queue_name(self.job) is not None or (
            with_gpus and resources.get("allowCPUFallback")
        ):
            return True
        cluster = kube.list_nodes()
        if cluster is None:  # may not list nodes (a namespace-scoped install): cannot tell
            return True
        fits = capacity.pods_that_fit(cluster, body)
        if fits >= nodes:
            return True
        message = (
            f"the cluster's nodes could hold at most {fits} of the job's {nodes} pods "
            f"({capacity.describe(body)} each), even with nothing else running: none is "
            "started. Lower spec.resources.nodes or what each pod asks, or add nodes; the "
            "operator looks again at every check"
        )
        if self.status.get("message") != message:
            self.changes.update({"phase": "Pending", "message": message})
            self.changes["conditions"] = set_condition(
                self.status.get("conditions"),
                "Ready",
                False,
                "GangCannotFit",
                message,
                self.generation,
            )
            self.events.append(("Warning", "GangCannotFit", message))
        return False

    def _wait_for_admission(self, why: str) -> None:
        if self.status.get("phase") != "Pending" or self.status.get("message") != why:
            self.changes.update({"phase": "Pending", "message": why})
            self.changes["conditions"] = set_condition(
                self.status.get("conditions"), "Ready", False, "QueuedByKueue", why, self.generation
            )
            self.events.append(("Normal", "Queued", why))

    def _refused(self, refused: str, error: str) -> None:
        fix = (
            ""  # what to do about the Workload, the error says
            if refused == WORKLOAD_REFUSED
            else "Fix spec.scheduling or spec.resources (or create what it names); "
        )
        message = (
            f"the API server refused {refused}: {error}. {fix}the operator tries again on "
            f"a spec change and every {REJECTED_RETRY_SECONDS:.0f} s"
        )
        ready = get_condition(self.status.get("conditions"), "Ready") or {}
        self.changes.update({"phase": "Pending", "message": message, "rejectedAt": now()})
        self.changes["conditions"] = set_condition(
            self.status.get("conditions"),
            "Ready",
            False,
            "TrainerPodRejected",
            message,
            self.generation,
        )
        if not self.rejected or ready.get("message") != message:
            self.events.append(("Warning", "TrainerPodRejected", message))
