"""A job of two pods on a cluster of two nodes that runs JobSet (its controller and
webhooks built from its Go module): each attempt is a JobSet, spread over the two nodes,
whose worker finds rank 0 by its name through cluster DNS. The two pods train to
identical weights; a rollback a user asks for reaches both ranks; a worker lost mid-run
(killed, no grace) fails the JobSet, and the operator starts the next attempt, a new
JobSet, from the latest checkpoint."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import pytest
from kubernetes import client

from bench.gang_pace import MILESTONE, pace
from gentrain_operator import jobset
from tests.operator.test_multinode_cluster import (
    FINGERPRINT,
    gang_job,
    logs,
    ready,
    roll_back_both,
)
from tests.operator.test_operator_cluster import events, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.multinode]


def members(cluster: Cluster, namespace: str, attempt_jobset: str) -> dict[str, Any]:
    """The JobSet's pods by replicated job ("leader", "workers")."""
    listed = cluster.core.list_namespaced_pod(
        namespace, label_selector=f"{jobset.JOBSET_NAME_LABEL}={attempt_jobset}"
    ).items
    return {
        pod.metadata.labels["jobset.sigs.k8s.io/replicatedjob-name"]: pod
        for pod in listed
        if pod.metadata.deletion_timestamp is None
    }


def read_jobset(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        jobset.GROUP, jobset.VERSION, namespace, jobset.PLURAL, name
    )
    return found


def test_two_pods_as_a_jobset_train_as_one_roll_back_together_and_restart_together(
    cluster: Cluster, namespace: str, jobset_api: None, operator: None, second_node: str
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
    made = read_jobset(cluster, namespace, "gang-trainer-1")
    assert made["metadata"]["ownerReferences"][0]["name"] == "gang"
    # JobSet's own webhook defaulted nothing the operator did not say.
    assert made["spec"]["failurePolicy"]["maxRestarts"] == 0
    pods = members(cluster, namespace, "gang-trainer-1")
    assert sorted(pods) == ["leader", "workers"], sorted(pods)
    placed = {pod.spec.node_name for pod in pods.values()}
    assert len(placed) == 2 and second_node in placed, placed
    assert first["podName"] == "gang-trainer-1" and first["gangAttempt"] == 1
    names = [pods["leader"].metadata.name, pods["workers"].metadata.name]
    for name in names:
        assert "training gan" in logs(cluster, namespace, name)
    wait_for(
        lambda: [ready(cluster, namespace, name) for name in names],
        all,
        "both pods Ready (their probes reach rank 0 by its name)",
        timeout=30,
    )
    claims = [
        [v.persistent_volume_claim.claim_name for v in pods[r].spec.volumes if v.persistent_volume_claim]
        for r in ("leader", "workers")
    ]  # fmt: skip
    assert claims == [["gang-checkpoints"], []], claims

    roll_back_both(cluster, namespace, names)

    # The worker lost mid-run (no grace): its Job fails, the JobSet with it, and the
    # operator starts attempt 2, a new JobSet, from the latest checkpoint.
    lost_at = time.monotonic()
    cluster.core.delete_namespaced_pod(names[1], namespace, grace_period_seconds=0)
    second = wait_for(
        lambda: members(cluster, namespace, "gang-trainer-2"),
        lambda found: (
            sorted(found) == ["leader", "workers"]
            and all(pod.status.phase == "Running" for pod in found.values())
        ),
        "the gang's second attempt (JobSet gang-trainer-2) running",
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
    # Which side ends the attempt is a race, as on a real node: the operator seeing the
    # failed JobSet, rank 0 failing first when its collective loses the worker's ranks, or
    # the JobSet controller removing rank 0's pod as the JobSet fails. Each is a GangRestart
    # when the JobSet names the worker's Job as its first to fail; the Job controller's
    # times are to the second, and when the worker's and rank 0's Jobs fail in the same one
    # the JobSet may name rank 0's (TrainerFailed, TrainerLost).
    reasons = events(cluster, namespace, "gang")
    assert final.get("gangRestarts", 0) == reasons.count("GangRestart") <= 1, (final, reasons)
    assert {"GangRestart", "TrainerFailed", "TrainerLost"} & set(reasons), reasons
    texts = [logs(cluster, namespace, second[r].metadata.name) for r in ("leader", "workers")]
    resumed = [re.findall(r"resumed from checkpoint step (\d+)", text) for text in texts]
    assert resumed[0] == resumed[1] and int(resumed[0][0]) >= 500, resumed
    prints = dict(match for text in texts for match in FINGERPRINT.findall(text))
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"], prints
    # The job is Succeeded once rank 0 is; the JobSet once its Jobs are, a moment later
    # (in a fresh-clone run it was not yet when the job was read as Succeeded).
    completed = wait_for(
        lambda: read_jobset(cluster, namespace, "gang-trainer-2"),
        lambda found: jobset.finished(found) is not None,
        "JobSet gang-trainer-2 to finish",
        timeout=60,
    )
    ended = jobset.finished(completed)
    assert ended is not None and ended[0] == "Completed", ended
    steps = [int(step) for _, step in MILESTONE.findall(texts[0])]
    print(
        f"gang of 2 as JobSets: milestone 1000 {joined:.1f} s after the job was made; worker "
        f"lost, both pods of the next JobSet running {again:.1f} s later, resumed at step "
        f"{resumed[0][0]}; done {time.monotonic() - started:.1f} s after the job was made; "
        f"{pace(texts[0]):.0f} steps/s from step {steps[0]} to {steps[-1]}",
        file=sys.__stdout__,
    )
