"""Kueue (https://kueue.sigs.k8s.io) queues a job labelled `kueue.x-k8s.io/queue-name`
(pure: what the Workload says, and what to write to it).

The operator is Kueue's external framework for GenerativeTrainingJobs, doing for them what
Kueue's own integrations do for batch Jobs: it makes a Workload (one pod set: the trainer
pod, with its requests) owned by the job, starts the trainer only once Kueue admitted it —
on the node labels and tolerations of the flavours Kueue assigned —, marks it Finished when
the job ends (its quota is released), and on an eviction (preemption, deactivation) stops
the trainer, which saves a checkpoint, and gives the reservation back, so that Kueue queues
it again; readmitted, it resumes from that checkpoint. Kueue must list the kind among its
`integrations.externalFrameworks` (`GenerativeTrainingJob.v1alpha1.gentrain.io`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import names
from .builders import owner_reference
from .conditions import get as get_condition
from .conditions import set_condition
from .names import PRIORITY_LABEL, QUEUE_LABEL

GROUP, VERSION, PLURAL = "kueue.x-k8s.io", "v1beta2", "workloads"
POD_SET = "trainer"


class Admission(Enum):
    WAITING = "waiting"  # no quota reserved (yet, or again after an eviction)
    ADMITTED = "admitted"
    EVICTED = "evicted"  # still holds its reservation: stop the trainer, then give it back
    FINISHED = "finished"


def queue_name(job: Mapping[str, Any]) -> str | None:
    return ((job["metadata"].get("labels") or {}).get(QUEUE_LABEL)) or None


def workload(job: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """The Workload of a queued job: its trainer pod as the one pod set, owned by the job
    (deleted with it)."""
    meta = job["metadata"]
    queue = queue_name(job)
    assert queue is not None
    template_spec = {k: v for k, v in pod["spec"].items() if k != "restartPolicy"}
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workload",
        "metadata": {
            "name": names.workload_name(meta["name"], meta["uid"]),
            "namespace": meta["namespace"],
            "labels": {**names.labels(meta["name"]), QUEUE_LABEL: queue},
            "ownerReferences": [owner_reference(job)],
        },
        "spec": {
            "queueName": queue,
            "podSets": [
                {
                    "name": POD_SET,
                    "count": names.nodes(job["spec"]),  # a gang: admitted as one
                    "template": {
                        "metadata": {"labels": pod["metadata"].get("labels", {})},
                        "spec": {**template_spec, "restartPolicy": "Never"},
                    },
                }
            ],
        },
    }
    priority_class = (meta.get("labels") or {}).get(PRIORITY_LABEL)
    if priority_class:
        body["spec"]["priorityClassRef"] = {
            "group": GROUP,
            "kind": "WorkloadPriorityClass",
            "name": priority_class,
        }
    return body


# Where a pod set may be scheduled: part of what Kueue admits it on.
SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "priorityClassName")


def _effective(resources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Requests as Kubernetes reads them (a limit alone is also the request), and limits."""
    limits = dict(resources.get("limits") or {})
    return {"requests": {**limits, **(resources.get("requests") or {})}, "limits": limits}


def _departs(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Whether what the job would run (`want`) asks for anything the Workload (`have`) does
    not. Only what gentrain sets is compared: defaults that admission (a LimitRange,
    Kueue's webhook) added to the stored Workload are not a change, and must not make it
    anew at every check."""
    have_spec, want_spec = have.get("spec") or {}, want.get("spec") or {}
    for kind in ("containers", "initContainers"):
        have_containers = have_spec.get(kind) or []
        want_containers = want_spec.get(kind) or []
        if len(have_containers) != len(want_containers):
            return True
        for had, wanted in zip(have_containers, want_containers, strict=True):
            had_resources = _effective(had.get("resources") or {})
            for part, amounts in _effective(wanted.get("resources") or {}).items():
                if any(had_resources[part].get(k) != v for k, v in amounts.items()):
                    return True
    return any(
        want_spec.get(key) and have_spec.get(key) != want_spec.get(key) for key in SCHEDULING_FIELDS
    )


def outdated(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a Workload no longer asks for what the job would run: its queue, or its
    trainer's resources or scheduling, changed since it was made."""
    if (found.get("spec") or {}).get("queueName") != wanted["spec"]["queueName"]:
        return True
    have = [s.get("template") or {} for s in (found.get("spec") or {}).get("podSets") or []]
    want = [s["template"] for s in wanted["spec"]["podSets"]]
    return len(have) != len(want) or any(_departs(h, w) for h, w in zip(have, want, strict=True))


def _true(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> bool:
    return (get_condition(conditions, kind) or {}).get("status") == "True"


def state(workload: Mapping[str, Any]) -> Admission:
    status = workload.get("status") or {}
    conditions = status.get("conditions")
    if _true(conditions, "Finished"):
        return Admission.FINISHED
    reserved = _true(conditions, "QuotaReserved") or bool(status.get("admission"))
    if reserved and _true(conditions, "Evicted"):
        return Admission.EVICTED
    if reserved and _true(conditions, "Admitted"):
        return Admission.ADMITTED
    return Admission.WAITING


def waiting_reason(workload: Mapping[str, Any]) -> str:
    """Why Kueue has not admitted it, in Kueue's words where it gave some."""
    if (workload.get("spec") or {}).get("active") is False:
        return "its Workload is deactivated (spec.active: false)"
    conditions = (workload.get("status") or {}).get("conditions")
    for kind in ("QuotaReserved", "Evicted"):
        message = (get_condition(conditions, kind) or {}).get("message")
        if message:
            return str(message)
    return "not admitted yet"


def eviction(workload: Mapping[str, Any]) -> tuple[str, str]:
    """(reason, message) of the workload's eviction."""
    condition = get_condition((workload.get("status") or {}).get("conditions"), "Evicted") or {}
    return str(condition.get("reason", "Evicted")), str(condition.get("message", ""))


def assigned_flavors(workload: Mapping[str, Any]) -> list[str]:
    admission = (workload.get("status") or {}).get("admission") or {}
    names_: set[str] = set()
    for assignment in admission.get("podSetAssignments") or []:
        names_.update((assignment.get("flavors") or {}).values())
    return sorted(names_)


@dataclass(frozen=True)
class Placement:
    """Where an admitted trainer runs: its flavours' node labels and tolerations."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    cluster_queue: str = ""
    flavors: list[str] = field(default_factory=list)


def placement(workload: Mapping[str, Any], flavors: Mapping[str, Mapping[str, Any]]) -> Placement:
    """The placement of an admitted workload; `flavors`: each assigned ResourceFlavor's
    spec by name."""
    selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    assigned = assigned_flavors(workload)
    for name in assigned:
        spec = flavors.get(name) or {}
        selector.update(spec.get("nodeLabels") or {})
        tolerations.extend(t for t in spec.get("tolerations") or [] if t not in tolerations)
    admission = (workload.get("status") or {}).get("admission") or {}
    return Placement(selector, tolerations, str(admission.get("clusterQueue", "")), assigned)


def placed(pod: dict[str, Any], where: Placement) -> dict[str, Any]:
    """The trainer pod on its flavours' nodes (the job's own selector keeps its keys
    unless a flavour names them: Kueue admitted it there)."""
    spec = pod["spec"]
    if where.node_selector:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **where.node_selector}
    if where.tolerations:
        spec["tolerations"] = [*(spec.get("tolerations") or []), *where.tolerations]
    return pod


def finished_status(workload: Mapping[str, Any], succeeded: bool, message: str) -> dict[str, Any]:
    """The status that marks the workload Finished, which releases its quota."""
    status = workload.get("status") or {}
    reason = "Succeeded" if succeeded else "Failed"
    return {
        "conditions": set_condition(
            status.get("conditions"),
            "Finished",
            True,
            reason,
            message[:1000],
            workload["metadata"].get("generation"),
        )
    }


def unreserved_status(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The status that gives an evicted workload's reservation back once its trainer has
    stopped, as Kueue's job integrations do: Kueue then queues it again."""
    reason, message = eviction(workload)
    generation = workload["metadata"].get("generation")
    conditions = (workload.get("status") or {}).get("conditions")
    # Requeued is True only where Kueue queues it again by itself (preemption, node
    # failures); a deactivated workload waits to be activated.
    requeued = reason in ("Preempted", "NodeFailures")
    conditions = set_condition(conditions, "Requeued", requeued, reason, message, generation)
    conditions = set_condition(conditions, "QuotaReserved", False, "Pending", message, generation)
    conditions = set_condition(
        conditions, "Admitted", False, "NoReservation", "the reservation was released", generation
    )
    return {"conditions": conditions, "admission": None}
