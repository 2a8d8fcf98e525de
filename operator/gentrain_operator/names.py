"""Names, labels and field managers shared by the operator's parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gentrain_contract.metrics import OPERATOR_USER_AGENT

GROUP, VERSION, PLURAL = "gentrain.io", "v1alpha1", "generativetrainingjobs"
KIND = "GenerativeTrainingJob"
FIELD_MANAGER = "gentrain-operator"
# On the trainer pod: the version of the configuration last written for it (see
# kube.nudge_trainer: an update of the pod makes its kubelet refresh the ConfigMap now).
CONFIG_VERSION_ANNOTATION = "gentrain.io/config-version"
REMEDIATOR = "gentrain-remediator"  # the field manager of remediation patches
# The User-Agent of the operator's scrapes: a trainer waits for one of these (not any
# scraper's) before it exits, so that the operator reads its final milestone.
MONITOR_USER_AGENT = OPERATOR_USER_AGENT
# Set in the same PATCH as a remediation's spec change: the remediation record, keyed by
# the milestone that decided it, so that a decision whose status write was lost (the
# operator died, the API server failed the status PATCH) is recorded, never made again.
INTENT_ANNOTATION = "gentrain.io/remediation-intent"
# Kueue's labels on a job (see queueing). They are the job's business with Kueue, not its
# pod's: a pod carrying the queue name would be queued a second time, on its own, where
# Kueue's pod integration is on.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOB_ONLY_LABELS = (QUEUE_LABEL, PRIORITY_LABEL)
# On every pod of a job of several pods: its node rank (0 speaks for the job).
NODE_RANK_LABEL = "gentrain.io/node-rank"
# On the pod the operator reads as an attempt's trainer pod under another name: rank 0 of
# a JobSet (see jobset), whose pod the Job controller names; the value is the JobSet's
# name, which is the attempt's pod_name.
ATTEMPT_POD_LABEL = "gentrain.io/attempt-pod"


def configmap_name(job: str) -> str:
    return f"{job}-config"


def claim_name(job: str) -> str:
    return f"{job}-checkpoints"


def network_policy_name(job: str) -> str:
    return f"{job}-trainer"


def workload_name(job: str, uid: str) -> str:
    """The Kueue Workload of a queued job (the uid tells a job from an earlier namesake)."""
    return f"gtj-{job}-{uid[:5]}"[:253]


def pod_name(job: str, attempt: int) -> str:
    return f"{job}-trainer-{attempt}"


def gang_pod_name(job: str, attempt: int, node_rank: int) -> str:
    """A pod of a job of several pods: rank 0's is pod_name's, the others carry their rank."""
    base = pod_name(job, attempt)
    return base if node_rank == 0 else f"{base}-node-{node_rank}"


def nodes(spec: Mapping[str, Any]) -> int:
    """How many pods train the job together (spec.resources.nodes, 1 when unset)."""
    return int((spec.get("resources") or {}).get("nodes") or 1)


def labels(job: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "gentrain-trainer",
        "app.kubernetes.io/instance": job,
        "app.kubernetes.io/managed-by": "gentrain-operator",
        "app.kubernetes.io/part-of": "gentrain",
        "gentrain.io/job": job,
    }
