"""Specs the GTJ schema accepts but whose trainer pod can never run: each reaches a
condition with the reason within a minute and never loops.

Before: a pod the API server refused (garbage tolerations or affinity, a PriorityClass
that does not exist) raised out of the handler, and kopf retried the create with backoff
for ever, with nothing in status; a pod no node fits waited in Pending saying nothing
(only the GPU case had a timeout)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gentrain_operator import kube as operator_kube
from gentrain_operator import lifecycle
from tests.operator.test_operator_cluster import events, gtj, patch_spec, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    # scheduling field, and what the API server's message must name
    "bad-toleration": (
        {"tolerations": [{"key": "gpu", "operator": "Sometimes", "effect": "NoSchedule"}]},
        "spec.tolerations[0].operator",
    ),
    "bad-affinity": (
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "Maybe"}]}
                        ]
                    }
                }
            }
        },
        "spec.affinity.nodeAffinity",
    ),
    "no-priority-class": (
        {"priorityClassName": "gentrain-no-such-class"},
        "no PriorityClass with name gentrain-no-such-class",
    ),
}


class Calls:
    """Counts, per job of one namespace, the pods the operator tried to create and its
    reconciliations (the operator watches every namespace: a job an earlier test left in
    a namespace being deleted is not this test's)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, namespace: str) -> None:
        self.creates: Counter[str] = Counter()
        self.reconciles: Counter[str] = Counter()
        real_create, real_reconcile = operator_kube.create, lifecycle.reconcile

        def create(kind: str, in_namespace: str, body: Any) -> bool:
            if kind == "Pod" and in_namespace == namespace:
                self.creates[body["metadata"]["labels"]["gentrain.io/job"]] += 1
            return real_create(kind, in_namespace, body)

        def reconcile(job: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
            if job["metadata"]["namespace"] == namespace:
                self.reconciles[job["metadata"]["name"]] += 1
            return real_reconcile(job, *args, **kwargs)

        monkeypatch.setattr(operator_kube, "create", create)
        monkeypatch.setattr(lifecycle, "reconcile", reconcile)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, namespace: str) -> Iterator[Calls]:
    yield Calls(monkeypatch, namespace)


def ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    conditions = status(cluster, namespace, name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def test_unrunnable_pods_reach_a_condition_and_never_loop(
    cluster: Cluster, namespace: str, calls: Calls, operator: None
) -> None:
    for name, (scheduling, _) in BROKEN.items():
        cluster.apply(gtj(name, scheduling=scheduling), namespace)
    cluster.apply(
        gtj("no-node-fits", scheduling={"nodeSelector": {"gentrain.io/no-such-pool": "x"}}),
        namespace,
    )

    for name, (_, named) in BROKEN.items():
        condition = wait_for(
            lambda name=name: ready(cluster, namespace, name),
            lambda c: c.get("reason") == "TrainerPodRejected",
            f"{name}: Ready=False TrainerPodRejected",
            timeout=60,
        )
        assert condition["status"] == "False"
        assert named in condition["message"], condition["message"]
        job_status = status(cluster, namespace, name)
        assert job_status["phase"] == "Pending" and not job_status.get("attempts")
    unschedulable = wait_for(
        lambda: ready(cluster, namespace, "no-node-fits"),
        lambda c: c.get("reason") == "Unschedulable",
        "no-node-fits: Ready=False Unschedulable",
        timeout=60,
    )
    assert "node(s) didn't match Pod's node affinity/selector" in unschedulable["message"]

    # Four periodic checks later, no job tried again and no Event was repeated.
    reconciles = Counter(calls.reconciles)
    wait_for(
        lambda: calls.reconciles,
        lambda seen: all(seen[name] >= reconciles[name] + 4 for name in reconciles),
        "four more reconciliations of every job",
        timeout=60,
    )
    assert calls.creates == {name: 1 for name in reconciles}, calls.creates
    for name in BROKEN:
        assert events(cluster, namespace, name).count("TrainerPodRejected") == 1
    assert events(cluster, namespace, "no-node-fits").count("Unschedulable") == 1

    # Fixed spec: the operator tries again at once, and the pod is made.
    patch_spec(cluster, namespace, "no-priority-class", {"scheduling": {"priorityClassName": None}})
    wait_for(
        lambda: status(cluster, namespace, "no-priority-class"),
        lambda s: s.get("attempts") == 1,
        "the fixed job's first trainer pod",
        timeout=60,
    )
