"""Two writers of one job's conditions never undo each other (issue 11, lost updates).

The lifecycle handler (Ready, GPUFallback) and the monitor (Healthy, MetricsAvailable)
each compute a condition from the job as they last read it. With the whole list written
as a merge patch, the later writer put back the earlier one's old entry: a monitor that
read the job before the pod started wrote Ready=TrainerStarting over TrainerRunning, and
the lifecycle handler could turn Healthy=False back to True until the next milestone.
Against the real API server, with the CRD's list map and server-side apply."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator import job_object
from gentrain_operator.conditions import get, set_condition
from tests.operator.test_operator_cluster import gtj, job, status
from tests.support.kube import Cluster, point_clients_at

pytestmark = [pytest.mark.cluster]


def condition(read: dict[str, Any], kind: str, value: bool, reason: str) -> dict[str, Any]:
    """What a writer sends: the list it read, with its own condition set."""
    return {"conditions": set_condition(read.get("conditions"), kind, value, reason, reason, 1)}


def test_writers_that_read_at_different_moments_keep_each_others_conditions(
    cluster: Cluster, namespace: str, gtj_crd: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_clients_at(cluster, monkeypatch)
    cluster.apply(gtj("two-writers"), namespace)
    starting: dict[str, Any] = condition({}, "Ready", False, "TrainerStarting")
    job_object.write_job_status(namespace, "two-writers", {**starting, "phase": "Pending"}, {})
    stale = status(cluster, namespace, "two-writers")  # the monitor reads here ...

    running = condition(stale, "Ready", True, "TrainerRunning")  # ... the pod starts
    job_object.write_job_status(namespace, "two-writers", {**running, "phase": "Running"}, stale)
    # The monitor's milestone, computed from its stale read.
    unhealthy = condition(stale, "Healthy", False, "NonFiniteLoss")
    job_object.write_job_status(namespace, "two-writers", unhealthy, stale)

    after = status(cluster, namespace, "two-writers")
    assert (get(after["conditions"], "Ready") or {}).get("reason") == "TrainerRunning", after
    assert (get(after["conditions"], "Healthy") or {}).get("reason") == "NonFiniteLoss", after
    assert after["phase"] == "Running"

    # And the other way round: the lifecycle handler, reading before that milestone,
    # sets GPUFallback; Healthy stays False.
    fallback = condition(stale, "GPUFallback", True, "NoGPUAvailable")
    job_object.write_job_status(namespace, "two-writers", fallback, stale)
    final = status(cluster, namespace, "two-writers")["conditions"]
    assert [c["type"] for c in final] == ["Ready", "Healthy", "GPUFallback"]
    assert [c["reason"] for c in final] == ["TrainerRunning", "NonFiniteLoss", "NoGPUAvailable"]
    # Each condition has its own field manager: a later apply of one never owns another.
    managers = {
        m["manager"] for m in job(cluster, namespace, "two-writers")["metadata"]["managedFields"]
    }
    assert {"gentrain-operator-ready", "gentrain-operator-healthy"} <= managers, managers
