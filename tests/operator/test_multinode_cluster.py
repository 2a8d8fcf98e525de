"""A job of two pods (spec.resources.nodes: 2) on the local cluster with a second node: two
trainer pods, on different nodes, each with its own address, one rank each over gloo
across the pod network. They train to
identical weights; a rollback a user asks for reaches both ranks at the same step; a pod
lost mid-run (killed, no grace) restarts both from the latest checkpoint, and they resume
in step. Rank 0's pod alone holds the checkpoint volume."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import pytest

from bench.gang_pace import MILESTONE, pace
from tests.operator.test_operator_cluster import events, gtj, pods, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.multinode]
FINGERPRINT = re.compile(r"rank (\d) of 2: weights fingerprint (\S+)")


def logs(cluster: Cluster, namespace: str, pod: str) -> str:
    return str(cluster.core.read_namespaced_pod_log(pod, namespace))


def ready(cluster: Cluster, namespace: str, pod: str) -> bool:
    conditions = cluster.core.read_namespaced_pod(pod, namespace).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def roll_back_both(cluster: Cluster, namespace: str, pods: list[str]) -> None:
    """A rollback the user asks for (to step 500) carried out once by each pod's rank."""
    command = {"id": "user-rollback", "action": "rollback", "step": 500}
    cluster.kubectl("patch", "generativetrainingjobs", "gang", "-n", namespace,
                    "--type=merge", "-p", json.dumps({"spec": {"commands": [command]}}))  # fmt: skip
    rolled = wait_for(
        lambda: [logs(cluster, namespace, name) for name in pods],
        lambda texts: all("command user-rollback: rolled back to step 500" in t for t in texts),
        "the rollback in both pods' logs",
        timeout=120,
    )
    assert all(text.count("command user-rollback") == 1 for text in rolled)


def gang_job(name: str) -> dict[str, Any]:
    body = gtj(name, max_steps=5000, interval=500, resources={"nodes": 2, "cpu": "500m"})
    body["spec"]["checkpoints"]["keep"] = 30
    return body


def test_two_pods_train_as_one_roll_back_together_and_restart_together(
    cluster: Cluster, namespace: str, operator: None, second_node: str
) -> None:
    started = time.monotonic()
    cluster.apply(gang_job("gang"), namespace)
    first = wait_for(
        lambda: status(cluster, namespace, "gang"),
        lambda s: int(s.get("checkpointStep") or 0) >= 1000,
        "the gang's milestone at step 1000",
        timeout=240,
    )
    joined = time.monotonic() - started
    placed = {p.metadata.name: p.spec.node_name for p in pods(cluster, namespace, "gang")}
    names = sorted(placed)
    assert names == ["gang-trainer-1", "gang-trainer-1-node-1"], names
    assert len(set(placed.values())) == 2 and second_node in placed.values(), placed
    assert first["gangAttempt"] == 1 and "GangStarted" in events(cluster, namespace, "gang")
    for name in names:
        assert "training gan" in logs(cluster, namespace, name)
    # Each pod's readiness probe reaches rank 0's rendezvous from its own network.
    wait_for(
        lambda: [ready(cluster, namespace, name) for name in names],
        all,
        "both pods Ready (their probes reach rank 0's rendezvous)",
        timeout=30,
    )

    # A rollback the user asks for: applied by both ranks at the same milestone.
    roll_back_both(cluster, namespace, names)

    # Pod 1 lost mid-run (no grace): the gang starts again, both from a checkpoint of the
    # timeline the rollback began (at step 500 or later).
    lost_at = time.monotonic()
    cluster.core.delete_namespaced_pod("gang-trainer-1-node-1", namespace, grace_period_seconds=0)
    wait_for(
        lambda: {p.metadata.name: p.status.phase for p in pods(cluster, namespace, "gang")},
        lambda phases: (
            phases.get("gang-trainer-2") == "Running"
            and phases.get("gang-trainer-2-node-1") == "Running"
        ),
        "the gang's second attempt running",
        timeout=180,
    )
    again = time.monotonic() - lost_at
    final = wait_for(
        lambda: status(cluster, namespace, "gang"),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        "the gang to finish",
        timeout=420,
    )
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["attempts"] == 2 and final["checkpointStep"] == 5000
    reasons = events(cluster, namespace, "gang")
    # One GangRestart, whichever side saw the loss first: the operator (the peer gone), or
    # rank 0, whose collective lost the peer's ranks (then the operator names the peer).
    assert reasons.count("GangRestart") == final.get("gangRestarts") == 1, (final, reasons)
    assert "TrainerFailed" not in reasons, reasons
    second = [logs(cluster, namespace, f"gang-trainer-2{suffix}") for suffix in ("", "-node-1")]
    resumed = [re.findall(r"resumed from checkpoint step (\d+)", text) for text in second]
    assert resumed[0] == resumed[1] and int(resumed[0][0]) >= 500, resumed
    steps = [int(step) for _, step in MILESTONE.findall(second[0])]
    rate = pace(second[0])
    prints = dict(match for text in second for match in FINGERPRINT.findall(text))
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"], prints
    print(
        f"gang of 2: milestone 1000 {joined:.1f} s after the job was made; pod 1 lost, "
        f"both pods running again {again:.1f} s later, resumed at step {resumed[0][0]}; "
        f"done {time.monotonic() - started:.1f} s after the job was made; "
        f"events {sorted(set(reasons))}; {rate:.0f} steps/s from step {steps[0]} to {steps[-1]}",
        file=sys.__stdout__,
    )
