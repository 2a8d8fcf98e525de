"""Jobs queued by Kueue (the real Kueue v0.17, its controllers and scheduler against the
test cluster; see tests/support/kueue_manager): a ClusterQueue with room for one trainer,
two jobs. The first is admitted and trains; the second waits, saying so, with no pod; the
first is evicted (its Workload deactivated, as an administrator or a preemption would):
Kueue gives its quota to the second at once, the operator stops its trainer, which saves a
checkpoint, and gives its reservation back; the second trains to the end; the first,
activated again, is admitted again and resumes from its checkpoint."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gentrain_operator import jobset
from tests.operator.test_operator_cluster import events, gtj, patch_spec, pods, status
from tests.support import kueue_manager
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.kueue]

KUEUE = ("kueue.x-k8s.io", "v1beta2")


@pytest.fixture(scope="module")
def kueue(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not cluster.local:
        pytest.skip("runs a Kueue of its own: on the local cluster only")
    lacking = kueue_manager.missing()
    if lacking:
        pytest.skip(f"Kueue is not built here: {', '.join(lacking)}")
    directory = tmp_path_factory.mktemp("kueue")
    try:
        with kueue_manager.running(cluster, directory):
            yield directory
    finally:  # the cluster left as found: the next run's first test sees no Kueue
        cluster.kubectl("delete", "-f", str(kueue_manager.CRDS), "--wait=false", check=False)


def workload(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    """The Workload the operator made for the job (its only one)."""
    found = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        *KUEUE, namespace, "workloads", label_selector=f"gentrain.io/job={job}"
    )["items"]
    assert len(found) == 1, [w["metadata"]["name"] for w in found]
    return dict(found[0])


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def set_active(cluster: Cluster, namespace: str, job: str, active: bool) -> None:
    name = workload(cluster, namespace, job)["metadata"]["name"]
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        *KUEUE, namespace, "workloads", name, {"spec": {"active": active}}
    )


def trainer_created(cluster: Cluster, namespace: str, job: str) -> str:
    (pod,) = pods(cluster, namespace, job)
    return str(pod.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"))


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def say(line: str) -> None:
    """A measured figure, printed past kopf's test runner (it takes over sys.stdout)."""
    print(line, file=sys.__stdout__, flush=True)


def queued_gtj(name: str, queue: str, max_steps: int) -> dict[str, Any]:
    body = gtj(name, max_steps=max_steps, interval=500)
    body["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue, "team": "vision"}
    return body


def kueue_installed(cluster: Cluster) -> bool:
    found = cluster.kubectl("get", "crd", "workloads.kueue.x-k8s.io", check=False)
    return found.returncode == 0


# First in this module: before the fixture below installs Kueue.
def test_a_queued_job_on_a_cluster_without_kueue_says_so_and_starts_nothing(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    if kueue_installed(cluster):
        pytest.skip("Kueue is installed on this cluster")
    cluster.apply(queued_gtj("orphan", "trainers", max_steps=1_500), namespace)
    refused = wait_for(
        lambda: status(cluster, namespace, "orphan"),
        lambda s: condition({"status": s}, "Ready").get("reason") == "TrainerPodRejected",
        "the queued job to say that Kueue is missing",
        timeout=60,
    )
    say(f"a queued job without Kueue: {refused['message']}")
    assert "kueue.x-k8s.io/queue-name" in refused["message"]
    assert "install Kueue" in refused["message"]
    assert refused["phase"] == "Pending"
    assert not pods(cluster, namespace, "orphan")


def test_kueue_admits_one_job_at_a_time_and_an_evicted_job_resumes_from_its_checkpoint(
    cluster: Cluster, namespace: str, operator: None, kueue: Path
) -> None:
    # Room for one trainer (each asks for 1 CPU and 1 GiB).
    cluster.apply(kueue_manager.queue_objects(namespace, "trainers", {"cpu": "1", "memory": "2Gi"}))
    cluster.apply(queued_gtj("first", "trainers", max_steps=200_000), namespace)
    wait_for(
        lambda: status(cluster, namespace, "first"),
        lambda s: s.get("phase") == "Running",
        "the first job to be admitted and run",
        timeout=120,
    )
    cluster.apply(queued_gtj("second", "trainers", max_steps=1_500), namespace)
    waiting = wait_for(
        lambda: status(cluster, namespace, "second"),
        lambda s: (
            condition({"status": s}, "Ready").get("reason") == "QueuedByKueue"
            and "quota" in s.get("message", "")  # Kueue's own reason, once it gave one
        ),
        "the second job to wait for Kueue, saying why",
        timeout=60,
    )
    say(f"second, while the first trains: {waiting['message']}")
    assert waiting["phase"] == "Pending"
    assert not pods(cluster, namespace, "second"), "a pod started before Kueue admitted it"
    # Its Workload is kept while nothing changes (two pod checks later, the same one)...
    made = workload(cluster, namespace, "second")["metadata"]["uid"]
    time.sleep(11)
    assert workload(cluster, namespace, "second")["metadata"]["uid"] == made
    # ...and made anew when the job asks for something else while it waits.
    patch_spec(cluster, namespace, "second", {"resources": {"cpu": "900m", "memory": "1Gi"}})
    remade = wait_for(
        lambda: workload(cluster, namespace, "second"),
        lambda w: w["metadata"]["uid"] != made,
        "the second job's Workload to be made anew with its new request",
        timeout=60,
    )
    (container,) = remade["spec"]["podSets"][0]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == "900m"
    # The trainer pod is the job's; the queue is its Workload's, not its pod's.
    trainer = pods(cluster, namespace, "first")[0]
    assert trainer.metadata.labels["team"] == "vision"
    assert "kueue.x-k8s.io/queue-name" not in trainer.metadata.labels
    first_workload = workload(cluster, namespace, "first")
    assert first_workload["spec"]["queueName"] == "trainers"
    owner = first_workload["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        "GenerativeTrainingJob",
        "first",
        True,
    )

    saved = wait_for(
        lambda: status(cluster, namespace, "first"),
        lambda s: s.get("checkpointStep", 0) >= 1000,
        "two checkpoints of the first job",
        timeout=180,
    )["checkpointStep"]
    set_active(cluster, namespace, "first", False)  # an administrator stops it
    evicted = wait_for(
        lambda: status(cluster, namespace, "first"),
        lambda s: (
            "evicted by Kueue" in s.get("message", "") or "deactivated" in s.get("message", "")
        ),
        "the first job to be evicted",
        timeout=60,
    )
    say(f"first, evicted: {evicted['message']}")
    assert evicted["phase"] == "Pending"
    wait_for(
        lambda: pods(cluster, namespace, "first"),
        lambda items: not items,
        "the first job's trainer to stop",
        timeout=90,
    )
    released = time.monotonic()
    running = wait_for(
        lambda: status(cluster, namespace, "second"),
        lambda s: s.get("phase") in ("Running", "Succeeded"),
        "the second job to be admitted once the first's quota was released",
        timeout=120,
    )
    say(f"second running {time.monotonic() - released:.1f} s after the first's trainer was gone")
    assert running.get("attempts") == 1
    finished = wait_for(
        lambda: status(cluster, namespace, "second"),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        "the second job to finish",
        timeout=240,
    )
    assert finished["phase"] == "Succeeded", finished.get("message")
    second_workload = wait_for(
        lambda: workload(cluster, namespace, "second"),
        lambda w: condition(w, "Finished").get("status") == "True",
        "the second job's Workload to be Finished (its quota released)",
        timeout=30,
    )
    assert condition(second_workload, "Finished")["reason"] == "Succeeded"
    # On the API server's clock (1 s resolution): Kueue frees an evicted workload's quota at
    # once (the trainer stops meanwhile, as a batch Job's pods do), and the operator starts
    # the admitted job's trainer at its next pod check.
    evicted_at = condition(workload(cluster, namespace, "first"), "Evicted")["lastTransitionTime"]
    admitted_at = condition(second_workload, "Admitted")["lastTransitionTime"]
    created_at = trainer_created(cluster, namespace, "second")
    say(
        f"the first evicted at {evicted_at}; the second admitted by Kueue at {admitted_at}, "
        f"its trainer pod made at {created_at}"
    )
    assert seconds(evicted_at) <= seconds(admitted_at) <= seconds(created_at)
    # While it was deactivated, the first stayed queued: nothing started it.
    assert status(cluster, namespace, "first").get("attempts") == 1

    set_active(cluster, namespace, "first", True)
    wait_for(
        lambda: status(cluster, namespace, "first"),
        lambda s: s.get("attempts") == 2 and s.get("phase") == "Running",
        "the first job to be admitted again and run",
        timeout=120,
    )
    log = wait_for(
        lambda: cluster.core.read_namespaced_pod_log("first-trainer-2", namespace),
        lambda text: "resumed from checkpoint step " in text,
        "the first job to resume from its checkpoint",
        timeout=60,
    )
    resumed_from = int(log.split("resumed from checkpoint step ")[1].split()[0])
    assert resumed_from >= saved
    assert status(cluster, namespace, "first").get("failures", 0) == 0

    # spec.suspend on a queued job frees its quota (its Workload deactivated, the
    # reservation given back once the trainer stopped); resuming queues it again.
    patch_spec(cluster, namespace, "first", {"suspend": True})
    suspended = wait_for(
        lambda: workload(cluster, namespace, "first"),
        lambda w: (
            w["spec"].get("active") is False
            and condition(w, "QuotaReserved").get("status") == "False"
        ),
        "the suspended job's Workload to be deactivated and its reservation given back",
        timeout=120,
    )
    assert not pods(cluster, namespace, "first")
    assert suspended["metadata"]["annotations"]["gentrain.io/deactivated-for-suspend"] == "true"
    patch_spec(cluster, namespace, "first", {"suspend": False})
    wait_for(
        lambda: status(cluster, namespace, "first"),
        lambda s: s.get("attempts") == 3 and s.get("phase") == "Running",
        "the resumed job to be admitted again and run",
        timeout=120,
    )
    resumed = workload(cluster, namespace, "first")
    assert resumed["spec"]["active"] is True
    assert "gentrain.io/deactivated-for-suspend" not in (
        resumed["metadata"].get("annotations") or {}
    )


def workloads(cluster: Cluster, namespace: str, job: str) -> list[dict[str, Any]]:
    return list(
        client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
            *KUEUE, namespace, "workloads", label_selector=f"gentrain.io/job={job}"
        )["items"]
    )


def test_a_job_leaves_kueue_when_its_label_goes_and_a_relaunch_is_queued_for_what_it_asks_now(
    cluster: Cluster, namespace: str, operator: None, kueue: Path
) -> None:
    """Two seams of a queued job's life. Its queue label removed while it trains: Kueue
    no longer decides for it, so its Workload goes and what it held is free for the next
    (before, the Workload stayed admitted until the job ended: the quota leaked). A
    trainer started again after the job's resources changed: Kueue admits what it asks
    now (before, it ran on the admission of what it asked before)."""
    cluster.apply(kueue_manager.queue_objects(namespace, "trainers", {"cpu": "1", "memory": "2Gi"}))
    cluster.apply(queued_gtj("leaver", "trainers", max_steps=200_000), namespace)
    wait_for(
        lambda: status(cluster, namespace, "leaver"),
        lambda s: s.get("phase") == "Running",
        "the first job to be admitted and run",
        timeout=120,
    )
    assert status(cluster, namespace, "leaver")["workload"].startswith("gtj-leaver-")
    cluster.apply(queued_gtj("stayer", "trainers", max_steps=200_000), namespace)
    wait_for(
        lambda: status(cluster, namespace, "stayer"),
        lambda s: condition({"status": s}, "Ready").get("reason") == "QueuedByKueue",
        "the second job to wait for Kueue",
        timeout=60,
    )

    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        "gentrain.io", "v1alpha1", namespace, "generativetrainingjobs", "leaver",
        {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": None}}},
    )  # fmt: skip
    removed = time.monotonic()
    wait_for(
        lambda: status(cluster, namespace, "stayer"),
        lambda s: s.get("phase") == "Running",
        "the second job to be admitted in the quota the first freed",
        timeout=90,
    )
    say(f"the label removed: the second job running {time.monotonic() - removed:.1f} s later")
    assert not workloads(cluster, namespace, "leaver")
    left = status(cluster, namespace, "leaver")
    assert left["phase"] == "Running" and left["attempts"] == 1, left  # trains on
    assert "workload" not in left
    assert "Dequeued" in events(cluster, namespace, "leaver")

    patch_spec(cluster, namespace, "stayer", {"resources": {"cpu": "1", "memory": "1536Mi"}})
    (pod,) = pods(cluster, namespace, "stayer")
    cluster.core.delete_namespaced_pod(pod.metadata.name, namespace)
    relaunched = wait_for(
        lambda: status(cluster, namespace, "stayer"),
        lambda s: s.get("attempts") == 2 and s.get("phase") == "Running",
        "the second job's trainer to start again, admitted for what it asks now",
        timeout=120,
    )
    assert relaunched.get("failures", 0) <= 1
    (admitted,) = workloads(cluster, namespace, "stayer")
    assert condition(admitted, "Admitted").get("status") == "True"
    requests = admitted["spec"]["podSets"][0]["template"]["spec"]["containers"][0]["resources"]
    assert requests["requests"]["memory"] == "1536Mi", requests
    (pod,) = [p for p in pods(cluster, namespace, "stayer") if p.metadata.name.endswith("-2")]
    assert pod.spec.containers[0].resources.requests["memory"] == "1536Mi"


def test_kueue_admits_a_job_of_several_pods_as_one_and_never_half_of_one(
    cluster: Cluster, namespace: str, operator: None, kueue: Path
) -> None:
    """A job of two pods fits the queue's quota only whole: Kueue admits its one Workload
    (a pod set counting both), and both pods run. A job of three never fits: it waits,
    with Kueue's reason, and not one of its pods is made (none holds what it asked for)."""
    cluster.apply(kueue_manager.queue_objects(namespace, "gangs", {"cpu": "1", "memory": "2Gi"}))
    pair = queued_gtj("pair", "gangs", max_steps=200_000)
    pair["spec"]["resources"] = {"nodes": 2, "cpu": "500m", "memory": "1Gi"}
    trio = queued_gtj("trio", "gangs", max_steps=200_000)
    trio["spec"]["resources"] = {"nodes": 3, "cpu": "500m", "memory": "512Mi"}
    cluster.apply(pair, namespace)
    cluster.apply(trio, namespace)
    running = wait_for(
        lambda: {p.metadata.name: p.status.phase for p in pods(cluster, namespace, "pair")},
        lambda phases: phases == {"pair-trainer-1": "Running", "pair-trainer-1-node-1": "Running"},
        "both pods of the two-pod job running",
        timeout=120,
    )
    admitted = workload(cluster, namespace, "pair")
    assert admitted["spec"]["podSets"][0]["count"] == 2
    assignment = admitted["status"]["admission"]["podSetAssignments"][0]
    assert assignment["count"] == 2, assignment
    waiting = wait_for(
        lambda: status(cluster, namespace, "trio"),
        lambda s: condition({"status": s}, "Ready").get("reason") == "QueuedByKueue",
        "the three-pod job to wait for Kueue",
        timeout=60,
    )
    assert not pods(cluster, namespace, "trio"), "no pod of a job Kueue has not admitted"
    assert workload(cluster, namespace, "trio")["spec"]["podSets"][0]["count"] == 3
    say(f"two-pod job admitted whole: {running}; three-pod job: {waiting.get('message')}")


def test_a_job_of_several_pods_admitted_by_kueue_runs_as_a_jobset_where_it_places_it(
    cluster: Cluster, namespace: str, kueue: Path, jobset_api: None, operator: None
) -> None:
    """On a cluster with JobSet: Kueue admits the job's one Workload (both pods), and only
    then is the attempt's JobSet made, its pods placed on the flavour Kueue assigned; the
    JobSet carries no queue name, so Kueue (whose JobSet integration a cluster may have
    on) never queues the same pods a second time."""
    cluster.apply(kueue_manager.queue_objects(namespace, "sets", {"cpu": "1", "memory": "2Gi"}))
    pair = queued_gtj("pair", "sets", max_steps=200_000)
    pair["spec"]["resources"] = {"nodes": 2, "cpu": "500m", "memory": "1Gi"}
    made = time.monotonic()
    cluster.apply(pair, namespace)
    running = wait_for(
        lambda: {
            p.metadata.labels.get("jobset.sigs.k8s.io/replicatedjob-name"): p.status.phase
            for p in pods(cluster, namespace, "pair")
        },
        lambda phases: phases == {"leader": "Running", "workers": "Running"},
        "both pods of the JobSet running",
        timeout=120,
    )
    took = time.monotonic() - made
    admitted = workload(cluster, namespace, "pair")
    assert admitted["status"]["admission"]["podSetAssignments"][0]["count"] == 2
    made_set = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        jobset.GROUP, jobset.VERSION, namespace, jobset.PLURAL, "pair-trainer-1"
    )
    assert "kueue.x-k8s.io/queue-name" not in made_set["metadata"].get("labels", {})
    flavor = f"{namespace}-flavor"
    assert admitted["status"]["admission"]["podSetAssignments"][0]["flavors"]["cpu"] == flavor
    say(
        f"two-pod job admitted by Kueue and running as a JobSet {took:.1f} s after it was made: {running}"
    )
