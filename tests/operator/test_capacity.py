"""A job of more pods than the cluster's nodes could ever hold is never started: not one
pod made, nothing held, a condition saying how many fit; one that fits in principle is
started (and waits for room as any pod does)."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator import builders, capacity, jobset, kube, launching, lifecycle
from tests.operator.test_gang import SETTINGS, gang_job


def node(name: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": extra.pop("labels", {})},
        "spec": extra.pop("spec", {}),
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110", **extra}},
    }


def test_the_pods_that_fit_are_counted_per_node_and_resource() -> None:
    pod = builders.trainer_pod(gang_job(nodes=3), 1, with_gpus=False, settings=SETTINGS)
    assert capacity.describe(pod) == "cpu 1, memory 1Gi"
    nodes = [node("a", "2", "8Gi"), node("b", "3500m", "2Gi"), node("c", "500m", "64Gi")]
    assert capacity.pods_that_fit(nodes, pod) == 2 + 2 + 0
    cordoned = node("d", "64", "64Gi", spec={"unschedulable": True})
    assert capacity.pods_that_fit([cordoned], pod) == 0
    pod["spec"]["nodeSelector"] = {"pool": "big"}
    labelled = node("e", "4", "4Gi", labels={"pool": "big"})
    assert capacity.pods_that_fit([*nodes, labelled], pod) == 4
    job = gang_job(nodes=2)
    job["spec"]["resources"]["gpus"] = 1
    gpu_pod = builders.trainer_pod(job, 1, with_gpus=True, settings=SETTINGS)
    gpu_node = node("g", "64", "256Gi", **{"nvidia.com/gpu": "1"})
    assert capacity.pods_that_fit([gpu_node, node("h", "64", "256Gi")], gpu_pod) == 1


def test_a_job_that_can_never_fit_starts_nothing_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
    monkeypatch.setattr(jobset, "served", lambda: False)
    monkeypatch.setattr(kube, "create", lambda kind, ns, body: created.append(kind) or True)
    monkeypatch.setattr(kube, "list_nodes", lambda: [node("only", "2", "4Gi")])
    job = gang_job(nodes=3, status={"phase": "Pending", "attempts": 0})
    events: list[tuple[str, str, str]] = []
    changes = lifecycle.reconcile(job, SETTINGS, events, lambda ns, n: None, spec_changed=True)
    assert created == [] and "attempts" not in changes
    ready = next(c for c in changes["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "GangCannotFit"
    assert ready["message"].startswith("the cluster's nodes could hold at most 2 of the job's 3")
    assert "(cpu 1, memory 1Gi each)" in ready["message"]
    assert [reason for _, reason, _ in events] == ["GangCannotFit"]
    job["status"] = {**job["status"], **changes}
    lifecycle.reconcile(job, SETTINGS, events, lambda ns, n: None, spec_changed=False)
    assert len(events) == 1 and created == []  # said once, still nothing made

    # A node added: the next check starts the job.
    monkeypatch.setattr(
        kube, "list_nodes", lambda: [node("only", "2", "4Gi"), node("new", "1", "2Gi")]
    )
    changes = lifecycle.reconcile(job, SETTINGS, events, lambda ns, n: None, spec_changed=False)
    assert changes["attempts"] == 1 and created == ["Pod"]
