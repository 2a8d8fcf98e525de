"""The API server freezes (SIGSTOP) for 90 s in the middle of a run that is being
remediated, then carries on (SIGCONT). Connections stay open and nothing answers: without
request timeouts every handler and monitor thread would wait for ever. After it: no stuck
thread (status moves again), no second pod, no remediation made twice, every milestone
up to the last one in status. Prints the recovery time: SIGCONT to the first status write
that carries a milestone the trainer reached during or after the freeze."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter

import pytest

from tests.operator.test_families_cluster import zoo
from tests.operator.test_operator_cluster import gtj, job, pods, status
from tests.support.kube import REPO, Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.slow]
FREEZE_SECONDS = 90.0


def api_server_pid() -> int:
    return int((REPO / ".cluster" / "pids" / "kube-apiserver.pid").read_text())


def test_a_frozen_api_server_loses_nothing_and_duplicates_nothing(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    if not cluster.local:
        pytest.skip("freezes the local control plane's API server")
    # The VAE whose KL weight of 20 collapses its latent: findings from the first
    # milestones on, remediated while the API server is frozen and after.
    body = gtj("frozen")
    body["spec"] = {
        **zoo("vae-kl-weight-too-high", "broken", training={"maxSteps": 3000}),
        "checkpoints": {"interval": 100},
        "remediation": {"mode": "auto"},
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": {"cpu": "1", "memory": "1Gi"},
    }
    cluster.apply(body, namespace)
    wait_for(
        lambda: status(cluster, namespace, "frozen"),
        lambda s: s.get("remediationCount", 0) >= 1,
        "the first remediation",
        timeout=180,
    )
    before = status(cluster, namespace, "frozen")
    pid = api_server_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(FREEZE_SECONDS)  # the fault itself: a freeze of a fixed length
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_for(
        lambda: status(cluster, namespace, "frozen"),
        lambda s: s.get("checkpointStep", 0) > before["checkpointStep"],
        "a milestone after the freeze in status",
        timeout=120,
    )
    recovery = time.monotonic() - resumed
    print(  # past KopfRunner, which captures sys.stdout while the operator runs
        f"\nAPI server frozen {FREEZE_SECONDS:.0f} s: status written again {recovery:.1f} s later",
        file=sys.__stdout__,
    )

    # The run's last milestone reaches status, though its trainer may have exited during
    # the freeze (it waits for a scrape, not for the status write).
    final = wait_for(
        lambda: status(cluster, namespace, "frozen"),
        lambda s: (
            s.get("phase") == "Failed"
            or (s.get("phase") == "Succeeded" and s.get("checkpointStep") == 3000)
        ),
        "the job to finish with its last milestone in status",
        timeout=400,
    )
    assert final["phase"] == "Succeeded", final.get("message")
    # One trainer pod: the freeze killed nothing, and nothing was started twice.
    assert [p.metadata.name for p in pods(cluster, namespace, "frozen")] == ["frozen-trainer-1"]
    assert final["attempts"] == 1
    records = final["remediations"]
    assert [r["id"] for r in records] == [f"r{i + 1}" for i in range(len(records))]
    decided_at = [r["step"] for r in records]
    assert len(decided_at) == len(set(decided_at)), decided_at  # one decision per milestone
    commands = [c["id"] for c in job(cluster, namespace, "frozen")["spec"].get("commands", [])]
    assert all(n == 1 for n in Counter(commands).values()), commands
    steps = [m["step"] for m in final["milestones"]]
    assert steps == sorted(set(steps)) and steps[-1] == 3000, steps
