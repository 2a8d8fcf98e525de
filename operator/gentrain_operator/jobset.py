"""A job of several pods as a JobSet (kubernetes-sigs/jobset), where the cluster serves
its API: the engine Kubeflow Trainer runs multi-node jobs on, and the one Kueue, cluster
autoscalers and platform dashboards already know.

One JobSet per attempt, named as the attempt's trainer pod would be (`NAME-trainer-A`):
- replicated job `leader`: one pod, node rank 0, the job's trainer pod in every respect
  (its checkpoint claim, its metrics port, what the operator scrapes and watches);
- replicated job `workers`: nodes - 1 pods, node rank = JobSet's global job index (1..),
  no claim (rank 0 reads and hands on the checkpoints), no metrics port.
Every pod joins rank 0 at its stable name, `NAME-trainer-A-leader-0-0.NAME-trainer-A` (the
JobSet's headless Service, resolved by cluster DNS), before rank 0 has an address.

The JobSet never restarts itself (failurePolicy.maxRestarts 0): a lost or failed pod fails
it, and the operator starts the next attempt, counted against spec.backoffLimit, exactly
as for one pod; a config error (the trainer's exit code 2) is not retried at all.
The operator reads rank 0's pod under the JobSet's name (names.ATTEMPT_POD_LABEL), so the
lifecycle and the monitor treat it as the trainer pod of a single-pod job.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import kube, names

log = logging.getLogger("gentrain.jobset")
GROUP, VERSION, PLURAL, KIND = "jobset.x-k8s.io", "v1alpha2", "jobsets", "JobSet"
LEADER, WORKERS = "leader", "workers"
# Set by the JobSet controller on each Job and pod.
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
GLOBAL_INDEX_LABEL = "jobset.sigs.k8s.io/job-global-index"
# How long an answer to "is the JobSet API served?" is reused.
DISCOVERY_SECONDS = 30.0
# The longest host name a pod may have (a DNS label): NAME-trainer-A-workers-I-0.
MAX_HOSTNAME = 63


def rank_zero_host(jobset_name: str) -> str:
    """Rank 0's name as every pod of the JobSet resolves it (its namespace's search path)."""
    return f"{jobset_name}-{LEADER}-0-0.{jobset_name}"


def fits(job_name: str, attempt: int, nodes: int) -> bool:
    """Whether every pod's host name is a DNS label (the Job controller names them
    JOBSET-REPLICATEDJOB-INDEX-0); a longer one would be refused when its Job is made."""
    widest = f"{names.pod_name(job_name, attempt)}-{WORKERS}-{max(nodes - 2, 0)}-0"
    return len(widest) <= MAX_HOSTNAME


def build(leader_pod: Mapping[str, Any], nodes: int) -> dict[str, Any]:
    """The JobSet of one attempt, from the pod builders.trainer_pod made for rank 0 (as
    Kueue placed it, where it did): the leader runs that pod; the workers run it without
    the claim and the metrics port, told their rank and rank 0's name."""
    meta = leader_pod["metadata"]
    name = meta["name"]
    leader = _template(leader_pod)
    leader["metadata"]["labels"][names.ATTEMPT_POD_LABEL] = name
    worker = _template(leader_pod)
    worker["metadata"]["labels"].pop(names.NODE_RANK_LABEL, None)
    spec = worker["spec"]
    spec["volumes"] = [
        {"name": "checkpoints", "emptyDir": {}} if volume["name"] == "checkpoints" else volume
        for volume in spec["volumes"]
    ]
    container = spec["containers"][0]
    container.pop("ports", None)
    own: dict[str, dict[str, Any]] = {
        "PET_NODE_RANK": {
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{GLOBAL_INDEX_LABEL}']"}}
        },
        "PET_MASTER_ADDR": {"value": rank_zero_host(name)},
    }
    container["env"] = [
        {"name": variable["name"], **own[variable["name"]]} if variable["name"] in own else variable
        for variable in container["env"]
    ]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": dict(meta["labels"]),
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": copy.deepcopy(meta["ownerReferences"]),
        },
        # Every field the JobSet webhook would default, given: a cluster may run JobSet
        # without its webhook, and then nothing defaults them.
        "spec": {
            "network": {
                "enableDNSHostnames": True,
                "subdomain": name,
                # Workers resolve rank 0 before it is Ready (it has no readiness probe).
                "publishNotReadyAddresses": True,
            },
            "startupPolicy": {"startupPolicyOrder": "AnyOrder"},
            "failurePolicy": {"maxRestarts": 0},
            # Done when every pod is (they end together; a JobSet done while a pod still
            # runs deletes it, and its log with it).
            "successPolicy": {"operator": "All", "targetReplicatedJobs": []},
            "replicatedJobs": [
                _replicated_job(LEADER, 1, leader),
                *([_replicated_job(WORKERS, nodes - 1, worker)] if nodes > 1 else []),
            ],
        },
    }


def _template(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "metadata": {
            "labels": dict(meta["labels"]),
            "annotations": dict(meta.get("annotations") or {}),
        },
        "spec": copy.deepcopy(pod["spec"]),
    }


def _replicated_job(name: str, replicas: int, template: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": replicas,
        "template": {
            "metadata": {"labels": dict(template["metadata"]["labels"])},
            "spec": {
                "parallelism": 1,
                "completions": 1,
                # Indexed: the pod gets its host name, under which the others find it.
                "completionMode": "Indexed",
                "backoffLimit": 0,
                "template": template,
            },
        },
    }


def finished(jobset: Mapping[str, Any]) -> tuple[str, str] | None:
    """("Completed" or "Failed", the controller's message) once the JobSet has ended."""
    for condition in (jobset.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Completed", "Failed") and condition.get("status") == "True":
            return str(condition["type"]), str(condition.get("message") or "")
    return None


def jobset_of(pod: Mapping[str, Any]) -> str | None:
    """The JobSet a pod belongs to, if any."""
    return ((pod.get("metadata") or {}).get("labels") or {}).get(JOBSET_NAME_LABEL)


_served: tuple[float, bool] | None = None


def served() -> bool:
    """Whether the cluster serves the JobSet API (asked at most every DISCOVERY_SECONDS:
    it may be installed, or removed, while the operator runs)."""
    global _served
    if _served is not None and time.monotonic() - _served[0] < DISCOVERY_SECONDS:
        return _served[1]
    groups = client.ApisApi(kube.api()).get_api_versions().groups or []
    answer = any(
        group.name == GROUP and any(v.version == VERSION for v in group.versions or [])
        for group in groups
    )
    _served = (time.monotonic(), answer)
    return answer


def create(namespace: str, body: Mapping[str, Any]) -> bool:
    """Creates the JobSet; False if it exists. Raises kube.RejectedError when refused."""
    try:
        kube.custom().create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, dict(body), field_manager=names.FIELD_MANAGER
        )
    except ApiException as error:
        if error.status == 409:
            return False
        if error.status in (400, 403, 404, 422):
            raise kube.RejectedError(kube.server_message(error)) from error
        raise
    return True


def read(namespace: str, name: str) -> dict[str, Any] | None:
    return kube.read_custom(GROUP, VERSION, PLURAL, namespace, name)


def delete(namespace: str, name: str) -> None:
    """Deletes the JobSet; its Jobs and pods follow (each pod gets its grace period)."""
    try:
        kube.custom().delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
        )
    except ApiException as error:
        if error.status != 404:
            raise


def pods(namespace: str, name: str) -> list[dict[str, Any]]:
    """The JobSet's pods, as the API server has them now."""
    listed = kube.core().list_namespaced_pod(
        namespace, label_selector=f"{JOBSET_NAME_LABEL}={name}"
    )
    return [kube.to_dict(pod) for pod in listed.items]
