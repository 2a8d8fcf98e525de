"""What the operator reads from a Kueue Workload and writes to it (pure): the states of
Kueue's conditions, the flavours' placement, the writes that finish a workload and give an
evicted one's reservation back."""

from __future__ import annotations

import copy
from typing import Any

from gentrain_operator import builders, names, queueing
from gentrain_operator.queueing import Admission
from gentrain_operator.settings import Settings


def job() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "faces",
            "namespace": "ml",
            "uid": "0123456789",
            "generation": 1,
            "labels": {
                "team": "vision",
                names.QUEUE_LABEL: "gpus",
                names.PRIORITY_LABEL: "high",
            },
        },
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {"maxSteps": 100},
            "resources": {"cpu": "2", "memory": "4Gi", "gpus": 1},
        },
    }


def cond(kind: str, status: bool, reason: str = "R", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-03T00:00:00Z",
    }


def workload(
    *conditions: dict[str, Any], admission: dict[str, Any] | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if admission is not None:
        status["admission"] = admission
    return {
        "metadata": {
            "name": "gtj-faces-01234",
            "namespace": "ml",
            "generation": 3,
            "resourceVersion": "7",
        },
        "spec": {"queueName": "gpus", "active": True},
        "status": status,
    }


ADMISSION = {
    "clusterQueue": "team-gpus",
    "podSetAssignments": [
        {"name": "trainer", "flavors": {"cpu": "on-demand", "nvidia.com/gpu": "a100"}}
    ],
}


def test_the_workload_is_the_trainer_pod_with_its_requests_owned_by_the_job() -> None:
    pod = builders.trainer_pod(job(), 1, with_gpus=True, settings=Settings())
    body = queueing.workload(job(), pod)
    assert body["metadata"]["name"] == "gtj-faces-01234"
    assert body["spec"]["queueName"] == "gpus"
    assert body["spec"]["priorityClassRef"]["name"] == "high"
    (pod_set,) = body["spec"]["podSets"]
    assert (pod_set["name"], pod_set["count"]) == ("trainer", 1)
    (container,) = pod_set["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "GenerativeTrainingJob",
        "faces",
        "0123456789",
        True,
    )
    # Kueue counts the pod set by its labels too: not the queue's (the pod is not queued).
    assert names.QUEUE_LABEL not in pod_set["template"]["metadata"]["labels"]


def test_kueues_conditions_read_as_waiting_admitted_evicted_finished() -> None:
    assert queueing.state(workload()) is Admission.WAITING
    pending = workload(cond("QuotaReserved", False, "Pending", "insufficient unused quota"))
    assert queueing.state(pending) is Admission.WAITING
    assert queueing.waiting_reason(pending) == "insufficient unused quota"
    # Quota reserved, admission checks not yet passed: not admitted.
    reserved = workload(cond("QuotaReserved", True), admission=ADMISSION)
    assert queueing.state(reserved) is Admission.WAITING
    admitted = workload(cond("QuotaReserved", True), cond("Admitted", True), admission=ADMISSION)
    assert queueing.state(admitted) is Admission.ADMITTED
    evicted = workload(
        cond("QuotaReserved", True),
        cond("Admitted", True),
        cond("Evicted", True, "Preempted", "preempted by a higher priority workload"),
        admission=ADMISSION,
    )
    assert queueing.state(evicted) is Admission.EVICTED
    assert queueing.eviction(evicted) == ("Preempted", "preempted by a higher priority workload")
    # Its reservation given back, it waits again (Evicted stays True until readmitted).
    given_back = {**evicted, "status": queueing.unreserved_status(evicted)}
    assert queueing.state(given_back) is Admission.WAITING
    finished = workload(cond("Finished", True, "Succeeded"), cond("QuotaReserved", True))
    assert queueing.state(finished) is Admission.FINISHED


def test_an_evicted_workload_gives_its_reservation_back_as_kueues_integrations_do() -> None:
    evicted = workload(
        cond("QuotaReserved", True),
        cond("Admitted", True),
        cond("Evicted", True, "Preempted", "preempted"),
        admission=ADMISSION,
    )
    status = queueing.unreserved_status(evicted)
    assert status["admission"] is None  # the merge patch removes it
    by_type = {c["type"]: c for c in status["conditions"]}
    assert (by_type["QuotaReserved"]["status"], by_type["QuotaReserved"]["reason"]) == (
        "False",
        "Pending",
    )
    assert by_type["Admitted"]["status"] == "False"
    assert (by_type["Requeued"]["status"], by_type["Requeued"]["reason"]) == ("True", "Preempted")
    assert by_type["Evicted"]["status"] == "True"  # Kueue's, untouched
    assert {c["observedGeneration"] for c in status["conditions"] if c["type"] != "Evicted"} == {3}
    # Deactivated: not queued again by Kueue until someone activates it.
    deactivated = workload(
        cond("QuotaReserved", True), cond("Evicted", True, "Deactivated", "deactivated")
    )
    requeued = {c["type"]: c for c in queueing.unreserved_status(deactivated)["conditions"]}
    assert requeued["Requeued"]["status"] == "False"


def test_finished_releases_the_quota_with_the_jobs_outcome() -> None:
    admitted = workload(cond("QuotaReserved", True), cond("Admitted", True), admission=ADMISSION)
    status = queueing.finished_status(admitted, succeeded=False, message="x" * 5000)
    (finished,) = [c for c in status["conditions"] if c["type"] == "Finished"]
    assert (finished["status"], finished["reason"], len(finished["message"])) == (
        "True",
        "Failed",
        1000,
    )
    assert queueing.state({**admitted, "status": status}) is Admission.FINISHED


def test_the_trainer_runs_on_its_flavours_nodes() -> None:
    admitted = workload(cond("QuotaReserved", True), cond("Admitted", True), admission=ADMISSION)
    gpu_taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    flavors = {
        "on-demand": {"nodeLabels": {"capacity": "on-demand"}},
        "a100": {"nodeLabels": {"gpu": "a100"}, "tolerations": [gpu_taint]},
    }
    where = queueing.placement(admitted, flavors)
    assert where.node_selector == {"capacity": "on-demand", "gpu": "a100"}
    assert where.tolerations == [gpu_taint]
    assert (where.cluster_queue, where.flavors) == ("team-gpus", ["a100", "on-demand"])
    manifest = job()
    manifest["spec"]["scheduling"] = {"nodeSelector": {"zone": "a"}, "tolerations": [{"key": "x"}]}
    pod = queueing.placed(builders.trainer_pod(manifest, 1, True, Settings()), where)
    assert pod["spec"]["nodeSelector"] == {"zone": "a", "capacity": "on-demand", "gpu": "a100"}
    assert pod["spec"]["tolerations"] == [{"key": "x"}, gpu_taint]


def test_a_workload_is_outdated_by_what_the_job_changed_not_by_admission_defaults() -> None:
    pod = builders.trainer_pod(job(), 1, with_gpus=True, settings=Settings())
    made = queueing.workload(job(), pod)
    assert not queueing.outdated(made, made)
    # As a cluster may store it: the GPU limit copied into requests (a limit alone is
    # the request), a LimitRange's ephemeral-storage default, a label Kueue adds.
    stored = copy.deepcopy(made)
    container = stored["spec"]["podSets"][0]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["nvidia.com/gpu"] = "1"
    container["resources"]["requests"]["ephemeral-storage"] = "1Gi"
    stored["spec"]["podSets"][0]["template"]["metadata"]["labels"]["added"] = "by-admission"
    assert not queueing.outdated(stored, made)

    bigger = job()
    bigger["spec"]["resources"]["cpu"] = "4"
    assert queueing.outdated(
        stored, queueing.workload(bigger, builders.trainer_pod(bigger, 1, True, Settings()))
    )
    elsewhere = job()
    elsewhere["spec"]["scheduling"] = {"nodeSelector": {"pool": "a100"}}
    assert queueing.outdated(
        stored, queueing.workload(elsewhere, builders.trainer_pod(elsewhere, 1, True, Settings()))
    )
    moved = job()
    moved["metadata"]["labels"][names.QUEUE_LABEL] = "cheap"
    assert queueing.outdated(
        stored, queueing.workload(moved, builders.trainer_pod(moved, 1, True, Settings()))
    )
