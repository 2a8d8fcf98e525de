"""The trainer's node stops reporting (its node agent frozen with SIGSTOP: the trainer
process runs on, as on a node cut off from the network), then comes back.

The job says so (Ready=False NodeLost, naming the node and what a person can do) and
starts no second pod meanwhile: the first may still be training and writing the same
checkpoints. When the node reports again the job is Running again, on the same attempt,
and its training went on. Before, the job kept saying "the trainer is running" while
its metrics went stale, and nothing named the node."""

from __future__ import annotations

import os
import signal

import pytest

from tests.operator.test_operator_cluster import events, gtj, status
from tests.support.kube import REPO, Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults]


def ready(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    for condition in status(cluster, namespace, name).get("conditions") or []:
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def test_a_lost_node_is_named_and_no_second_trainer_starts(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    if not cluster.local:
        pytest.skip("freezes the local node agent")
    cluster.apply(gtj("cut-off", max_steps=1_000_000, interval=500), namespace)
    wait_for(
        lambda: status(cluster, namespace, "cut-off"),
        lambda s: s.get("phase") == "Running" and s.get("milestones"),
        "the first milestone",
        timeout=120,
    )
    agent = int((REPO / ".cluster" / "pids" / "node-agent.pid").read_text())
    os.kill(agent, signal.SIGSTOP)
    try:
        lost = wait_for(
            lambda: ready(cluster, namespace, "cut-off"),
            lambda c: c.get("reason") == "NodeLost",
            "Ready=False NodeLost",
            timeout=120,
        )
    finally:
        os.kill(agent, signal.SIGCONT)
    node = cluster.core.list_node().items[0].metadata.name
    assert lost["status"] == "False"
    assert f"node {node} is not reporting" in lost["message"], lost
    assert f"kubectl delete node {node}" in lost["message"]
    during = status(cluster, namespace, "cut-off")
    assert during["attempts"] == 1 and during.get("failures", 0) == 0, during
    steps_before = during["milestones"][-1]["step"]

    back = wait_for(
        lambda: ready(cluster, namespace, "cut-off"),
        lambda c: c.get("reason") == "TrainerRunning",
        "Ready=True once the node reports again",
        timeout=120,
    )
    assert back["status"] == "True"
    wait_for(
        lambda: status(cluster, namespace, "cut-off"),
        lambda s: s["milestones"][-1]["step"] > steps_before,
        "a milestone after the node came back",
        timeout=120,
    )
    final = status(cluster, namespace, "cut-off")
    assert final["attempts"] == 1 and final.get("failures", 0) == 0, final
    pods = cluster.core.list_namespaced_pod(namespace).items
    assert [p.metadata.name for p in pods] == ["cut-off-trainer-1"]
    reasons = events(cluster, namespace, "cut-off")
    assert reasons.count("NodeLost") == 1 and reasons.count("NodeRecovered") == 1, reasons
