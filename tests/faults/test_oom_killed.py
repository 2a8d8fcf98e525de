"""A trainer that goes over its memory limit is killed by the kernel, and the job says so.

The node agent runs each container in a memory cgroup limited to the container's
`resources.limits.memory`, as a kubelet's runtime does, and reports `OOMKilled` when the
kernel's OOM killer ended it. Before, nothing enforced the limit here, and the operator
reported any such end as "exit code 137" with nothing a person could act on."""

from __future__ import annotations

import dataclasses

import pytest

from gentrain_localcluster.nodeagent import memory
from gentrain_operator import handlers
from tests.operator.test_operator_cluster import events, gtj, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults]


def test_a_trainer_over_its_memory_limit_is_reported_oom_killed(
    cluster: Cluster, namespace: str, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two attempts, not four: each is the same kill.
    monkeypatch.setattr(
        handlers, "SETTINGS", dataclasses.replace(handlers.SETTINGS, backoff_limit=1)
    )
    if not cluster.local:
        pytest.skip("needs the local node agent; a real kubelet reports OOMKilled itself")
    assert memory.available(), "this host has no writable cgroup v1 memory controller"
    # 8 layers of 8,192 units: 2 GiB of weights alone, over the limit as the model is
    # built. (A limit below what importing torch takes does not kill: the kernel reclaims
    # the libraries' page cache over and over, and the process crawls.)
    cluster.apply(
        gtj(
            "small",
            model={"architecture": {"latentDim": 2, "hidden": 8192, "layers": 8}},
            resources={"memory": "1Gi"},
        ),
        namespace,
    )
    final = wait_for(
        lambda: status(cluster, namespace, "small"),
        lambda s: s.get("phase") == "Failed",
        "the job to fail after its attempts",
        timeout=240,
    )
    ready = next(c for c in final["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "BackoffLimitExceeded"
    assert "OOMKilled" in final["message"] and "spec.resources.memory" in final["message"]
    assert "(1Gi)" in final["message"], final["message"]
    # The operator writes the status first and posts its Events after (kopf's posting
    # queue): the second attempt's may still be on its way when Failed is seen.
    reasons = wait_for(
        lambda: events(cluster, namespace, "small"),
        lambda seen: seen.count("OOMKilled") >= 2,
        "an OOMKilled Event for each attempt",
        timeout=30,
    )
    assert reasons.count("OOMKilled") == final["attempts"] == final["failures"] == 2, reasons
    assert "TrainerFailed" not in reasons
