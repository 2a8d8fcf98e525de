"""Two operator replicas with kopf peering, as the chart runs them when replicas > 1:
exactly one acts; when it stops, the other takes over the same jobs."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gentrain_operator import peering
from tests.chart.test_chart import render
from tests.operator.test_operator_cluster import GROUP, PLURAL, VERSION, gtj
from tests.support.kube import Cluster, point_clients_at
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    def __init__(self, cluster: Cluster, namespace: str, peering: str, log: Path) -> None:
        self.log = log
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "GENTRAIN_NAMESPACE": namespace,
            "GENTRAIN_PEERING": peering,
            "GENTRAIN_METRICS_PORT": str(free_port()),
            "GENTRAIN_HEALTH_PORT": str(free_port()),
            "POD_ID": log.stem,  # as the chart names a replica: it announces itself first
        }
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gentrain_operator"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text()

    def acted(self) -> bool:
        return "Handler 'reconcile" in self.text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def chart_peering() -> tuple[dict[str, Any], dict[str, Any]]:
    """The chart's peering definition and object, for a namespaced release of two replicas."""
    objects = render("--set", "operator.replicas=2,operator.scope=namespace", "--include-crds")
    crd = next(d for d in objects if d["metadata"]["name"] == "kopfpeerings.kopf.dev")
    return crd, next(d for d in objects if d["kind"] == "KopfPeering")


def peering_object(cluster: Cluster, namespace: str) -> str:
    """Creates the chart's own peering object in `namespace`; returns its name."""
    crd, peering = chart_peering()
    cluster.apply(crd)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=60s"
    )
    peering["metadata"]["namespace"] = namespace
    cluster.apply(peering)
    return str(peering["metadata"]["name"])


@pytest.fixture
def replicas(cluster: Cluster, namespace: str, gtj_crd: None, tmp_path: Path) -> Iterator[Any]:
    name = peering_object(cluster, namespace)
    started = [Replica(cluster, namespace, name, tmp_path / f"replica-{i}.log") for i in (0, 1)]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def checkpoint_step(custom: client.CustomObjectsApi, namespace: str) -> int:
    job = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "peer")
    return int((job.get("status") or {}).get("checkpointStep") or 0)


def test_one_replica_decides_and_the_other_takes_over_when_it_stops(
    cluster: Cluster, namespace: str, replicas: list[Replica]
) -> None:
    # Both have registered in the peering object: only the higher priority acts.
    wait_for(
        lambda: (
            cluster.kubectl(
                "get", "kopfpeering", "-n", namespace, "-o", "jsonpath={.items[0].status}"
            ).stdout
        ),
        lambda status: status.count('"priority"') == 2,
        "both replicas to register in the KopfPeering",
    )
    custom = client.CustomObjectsApi(cluster.api)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        gtj("peer", max_steps=1_000_000, interval=200),
    )
    wait_for(
        lambda: checkpoint_step(custom, namespace),
        lambda step: step >= 400,
        "two milestones of the job to reach its status",
        timeout=180,
    )
    # The monitors — which decide and patch remediations — run in one replica only: kopf
    # never starts daemons in a paused one. (Level-triggered reconciles may run twice in
    # the moment both replicas start; they are idempotent: deterministic names, 409s.)
    # (The monitor logs a milestone after writing its status and posting its events: wait
    # for the line rather than race it; seen failing on a fresh clone.)
    wait_for(
        lambda: [r for r in replicas if "gentrain.monitor" in r.text()],
        lambda found: len(found) >= 1,
        "the deciding replica's milestone log line",
        timeout=30,
    )
    deciding = [r for r in replicas if "gentrain.monitor" in r.text()]
    assert len(deciding) == 1, [r.text()[-2000:] for r in replicas]
    [active] = deciding
    [standby] = [r for r in replicas if r is not active]
    assert [p.metadata.name for p in cluster.core.list_namespaced_pod(namespace).items] == [
        "peer-trainer-1"
    ]

    active.stop()  # kopf leaves the peering record on exit: the standby resumes
    wait_for(
        standby.text,
        lambda text: "Resuming operations after the pause" in text,
        "the standby replica to resume",
        timeout=90,
    )
    reached = checkpoint_step(custom, namespace)
    wait_for(
        lambda: checkpoint_step(custom, namespace),
        lambda step: step >= reached + 400,
        "the replica that took over to record further milestones",
        timeout=180,
    )
    # Its milestone line follows the status write it logs (as above: wait, do not race it).
    wait_for(
        standby.text,
        lambda text: "gentrain.monitor" in text,
        "the replica that took over to log its milestones",
        timeout=30,
    )
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "peer", {"spec": {"suspend": True}}
    )
    wait_for(
        lambda: (
            (custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "peer"))
            .get("status", {})
            .get("phase")
        ),
        lambda phase: phase == "Suspended",
        "the job to be suspended by the replica that took over",
        timeout=90,
    )


def test_a_replica_is_in_the_peering_object_before_kopf_lists_it(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas of a fresh release each saw only themselves and both acted for 50 s on
    a real node; the entry written at startup puts both in kopf's first list."""
    name = peering_object(cluster, namespace)
    point_clients_at(cluster, monkeypatch)
    assert peering.announce(name, "replica-a", 7, [namespace]) == [namespace]
    body = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", name
    )
    entry = body["status"]["replica-a"]
    assert (entry["priority"], entry["lifetime"]) == (7, peering.LIFETIME_SECONDS)
    assert peering.announce("no-such-peering", "replica-a", 7, [namespace], wait_seconds=1) == []


def test_a_replica_started_before_its_peering_object_waits_for_it(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Helm creates the peering object after the Deployment: in CI both replicas of a fresh
    release wrote to it a second before it existed (Not Found), and both acted."""
    point_clients_at(cluster, monkeypatch)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        name = chart_peering()[1]["metadata"]["name"]
        written = pool.submit(peering.announce, name, "replica-b", 9, [namespace])
        time.sleep(2)
        assert not written.done()  # before the fix: [] at once, a warning, and kopf alone
        peering_object(cluster, namespace)
        assert written.result(timeout=60) == [namespace]
    body = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", name
    )
    assert body["status"]["replica-b"]["priority"] == 9
