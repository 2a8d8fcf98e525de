"""A job of several pods: rank 0's pod is launched as a single trainer pod is; the others
are made once it has an address, join it there, and a lost one restarts the whole gang
once (counted, with an Event), from the latest checkpoint."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gentrain_contract import program
from gentrain_operator import builders, gang, jobset, kube, launching, lifecycle, names, queueing
from gentrain_operator.settings import Settings

SETTINGS = Settings(network_policy=True, operator_namespace="ops")
# A pod the scheduler cannot place, as its status says.
UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
        }
    ],
}


def gang_job(nodes: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "n", "uid": "u", "generation": 1},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring"},
            "training": {"maxSteps": 100},
            "resources": {"nodes": nodes, "cpu": "1", "memory": "1Gi"},
        },
        "status": status if status is not None else {},
    }


def env(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        variable["name"]: variable.get("value", variable.get("valueFrom"))
        for variable in pod["spec"]["containers"][0]["env"]
    }


def running(attempt: int, ip: str = "10.244.0.9", uid: str = "pod-uid") -> dict[str, Any]:
    pod = builders.trainer_pod(gang_job(), attempt, with_gpus=False, settings=SETTINGS)
    pod["metadata"]["uid"] = uid
    pod["status"] = {"phase": "Running", "podIP": ip}
    return pod


def test_rank_zero_is_the_trainer_pod_and_the_others_join_it_without_the_volume() -> None:
    job = gang_job()
    rank_zero = builders.trainer_pod(job, 1, with_gpus=False, settings=SETTINGS)
    assert rank_zero["metadata"]["name"] == names.pod_name("j", 1)
    assert rank_zero["metadata"]["labels"][names.NODE_RANK_LABEL] == "0"
    command = rank_zero["spec"]["containers"][0]["command"]
    assert command[-5:] == [
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=1",
        "-m",
        "gentrain_trainer",
    ]
    variables = env(rank_zero)
    assert variables["PET_NNODES"] == "3" and variables["PET_NODE_RANK"] == "0"
    assert variables["PET_MASTER_ADDR"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert variables["PET_MASTER_PORT"] == str(program.RENDEZVOUS_PORT)
    anti = rank_zero["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 100

    rank_zero.update({"status": {"podIP": "10.244.0.9"}})
    rank_zero["metadata"]["uid"] = "pod-uid"
    rank_zero["spec"]["nodeSelector"] = {"flavour": "a"}  # as Kueue placed it
    peer = builders.gang_pod(job, rank_zero, 2, with_gpus=False, settings=SETTINGS)
    assert peer["metadata"]["name"] == "j-trainer-1-node-2"
    assert peer["metadata"]["labels"][names.NODE_RANK_LABEL] == "2"
    assert peer["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "j-trainer-1", "uid": "pod-uid"}
    ]
    assert peer["spec"]["nodeSelector"] == {"flavour": "a"}
    volumes = {volume["name"]: volume for volume in peer["spec"]["volumes"]}
    assert volumes["checkpoints"] == {"name": "checkpoints", "emptyDir": {}}
    assert "ports" not in peer["spec"]["containers"][0]  # not a scrape target
    variables = env(peer)
    assert variables["PET_NODE_RANK"] == "2" and variables["PET_MASTER_ADDR"] == "10.244.0.9"
    assert variables[program.POD_IP_VARIABLE] == {"fieldRef": {"fieldPath": "status.podIP"}}
    # Not changed on rank 0's body by building the others.
    assert env(builders.trainer_pod(job, 1, False, SETTINGS))["PET_NODE_RANK"] == "0"


def test_one_pod_jobs_are_as_before_and_kueue_admits_a_gang_as_one() -> None:
    single = gang_job(nodes=1)
    pod = builders.trainer_pod(single, 1, with_gpus=False, settings=SETTINGS)
    assert "PET_NNODES" not in env(pod) and names.NODE_RANK_LABEL not in pod["metadata"]["labels"]
    assert "affinity" not in pod["spec"]
    assert len(builders.network_policy(single, SETTINGS)["spec"]["ingress"]) == 1  # type: ignore[index]
    gang = gang_job(nodes=4)
    ingress = builders.network_policy(gang, SETTINGS)["spec"]["ingress"]  # type: ignore[index]
    assert ingress[1] == {"from": [{"podSelector": {"matchLabels": {"gentrain.io/job": "j"}}}]}
    gang["metadata"]["labels"] = {names.QUEUE_LABEL: "q"}
    body = builders.trainer_pod(gang, 1, with_gpus=False, settings=SETTINGS)
    assert queueing.workload(gang, body)["spec"]["podSets"][0]["count"] == 4


class Cluster:
    """The API server as the gang code sees it: pods by name; what was made and deleted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pods: dict[str, dict[str, Any]]) -> None:
        self.pods = pods
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.graces: dict[str, int | None] = {}
        monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
        monkeypatch.setattr(kube, "create", self.create)
        monkeypatch.setattr(kube, "read_pod", lambda namespace, name: self.read(namespace, name))
        monkeypatch.setattr(kube, "delete_pod", self.delete)
        monkeypatch.setattr(jobset, "served", lambda: False)  # the operator's own pods
        monkeypatch.setattr(kube, "list_nodes", lambda: None)  # cannot tell: start

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> bool:
        self.created.append(body["metadata"]["name"])
        self.pods[body["metadata"]["name"]] = {
            **copy.deepcopy(body),
            "status": {"phase": "Pending"},
        }
        return True

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get(name)

    def delete(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self.deleted.append(name)
        self.graces[name] = grace_seconds
        self.pods.pop(name, None)

    def check(self, job: dict[str, Any], events: list[tuple[str, str, str]]) -> dict[str, Any]:
        changes = lifecycle.reconcile(job, SETTINGS, events, self.read, spec_changed=False)
        job["status"] = {**job["status"], **changes}
        return changes


def started_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Cluster, dict[str, Any], list[tuple[str, str, str]]]:
    """A job of two pods whose rank 0 runs and whose other pod was just made."""
    cluster = Cluster(monkeypatch, {"j-trainer-1": running(1)})
    job = gang_job(nodes=2, status={"phase": "Running", "attempts": 1, "observedGeneration": 1})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    return cluster, job, events


def test_the_others_are_made_once_and_a_lost_one_restarts_the_gang_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(monkeypatch, {"j-trainer-1": running(1)})
    job = gang_job(status={"phase": "Running", "attempts": 1, "observedGeneration": 1})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    assert cluster.created == ["j-trainer-1-node-1", "j-trainer-1-node-2"]
    assert job["status"]["gangAttempt"] == 1
    assert [reason for _, reason, _ in events] == ["GangStarted"]
    assert "10.244.0.9:29500" in events[0][2]
    cluster.check(job, events)  # made already: not again
    assert len(cluster.created) == 2 and len(events) == 1

    for name in ("j-trainer-1-node-1", "j-trainer-1-node-2"):
        cluster.pods[name]["status"] = {"phase": "Running", "podIP": "10.244.0.10"}
    del cluster.pods["j-trainer-1-node-2"]  # deleted mid-run
    cluster.check(job, events)
    assert cluster.deleted == ["j-trainer-1"]  # rank 0, and with it the others
    # Briefly: it waits on the lost peer and never reaches its SIGTERM checkpoint (with
    # its pod's 60 s of grace the gang ran again 52 s after the loss, not 18).
    assert cluster.graces["j-trainer-1"] == gang.LOST_GRACE_SECONDS == 5
    assert job["status"]["gangRestarts"] == 1 and job["status"]["gangStopping"] == 1
    assert events[-1][1] == "GangRestart" and "j-trainer-1-node-2 (deleted)" in events[-1][2]
    # Rank 0 still terminating (as the index last saw it): not stopped or counted twice.
    cluster.pods["j-trainer-1"] = running(1)
    cluster.check(job, events)
    assert cluster.deleted == ["j-trainer-1"] and job["status"]["gangRestarts"] == 1

    # Rank 0 gone: the next attempt, as for a lost trainer pod; the survivor of the last
    # one is stopped first, and the new rank 0's others are made when it runs.
    del cluster.pods["j-trainer-1"]
    cluster.check(job, events)
    assert job["status"]["attempts"] == 2 and job["status"]["failures"] == 1
    assert "j-trainer-1-node-1" in cluster.deleted
    cluster.pods["j-trainer-2"] = running(2, ip="10.244.0.20", uid="pod-2")
    cluster.check(job, events)
    assert cluster.created[-2:] == ["j-trainer-2-node-1", "j-trainer-2-node-2"]
    assert cluster.pods["j-trainer-2-node-1"]["metadata"]["ownerReferences"][0]["uid"] == "pod-2"
    assert job["status"]["gangAttempt"] == 2


def test_a_pod_that_cannot_be_placed_is_named_and_a_failed_one_restarts_the_gang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, job, events = started_pair(monkeypatch)
    cluster.pods["j-trainer-1-node-1"]["status"] = UNSCHEDULABLE
    cluster.check(job, events)
    assert events[-1][1] == "GangIncomplete"
    assert "j-trainer-1-node-1 (" in events[-1][2] and "Insufficient cpu" in events[-1][2]
    ready = next(c for c in job["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "GangIncomplete" and ready["status"] == "False"
    cluster.check(job, events)  # said once
    assert [reason for _, reason, _ in events].count("GangIncomplete") == 1

    cluster.pods["j-trainer-1-node-1"]["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"state": {"terminated": {"exitCode": 1}}}],
    }
    cluster.check(job, events)
    assert cluster.deleted == ["j-trainer-1"]
    assert "j-trainer-1-node-1 (failed: exit code 1)" in events[-1][2]


def ready_since(seconds_ago: float, ready: bool) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(time.time() - seconds_ago, UTC).isoformat()
    status = "True" if ready else "False"
    return {"type": "Ready", "status": status, "lastTransitionTime": stamp}


def test_a_pod_that_never_reaches_rank_zero_is_named_and_the_attempt_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pod of the built-in trainer is Ready while it reaches rank 0's rendezvous (its
    probe); one that has not for longer than the operator waits stops the attempt with a
    condition that names it (torchrun would wait 600 s and name no pod)."""
    gang_pod = builders.trainer_pod(gang_job(nodes=2), 1, with_gpus=False, settings=SETTINGS)
    probe = gang_pod["spec"]["containers"][0]["readinessProbe"]
    assert probe["exec"]["command"] == ["python", "-m", "gentrain_trainer.rendezvous_probe"]
    single = builders.trainer_pod(gang_job(nodes=1), 1, with_gpus=False, settings=SETTINGS)
    assert "readinessProbe" not in single["spec"]["containers"][0]

    cluster, job, events = started_pair(monkeypatch)
    cluster.pods["j-trainer-1"]["status"]["conditions"] = [ready_since(400, True)]
    peer = cluster.pods["j-trainer-1-node-1"]
    peer["status"] = {"phase": "Running", "conditions": [ready_since(60, False)]}
    cluster.check(job, events)  # not yet: the operator waits settings.rendezvous_seconds
    assert not cluster.deleted and events[-1][1] == "GangStarted"

    peer["status"]["conditions"] = [ready_since(SETTINGS.rendezvous_seconds + 1, False)]
    cluster.check(job, events)
    assert cluster.deleted == ["j-trainer-1"]
    assert cluster.graces["j-trainer-1"] == gang.LOST_GRACE_SECONDS
    assert events[-1][1] == "RendezvousTimeout"
    assert events[-1][2].startswith("j-trainer-1-node-1 could not reach the rendezvous")
    ready = next(c for c in job["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "RendezvousTimeout" and "j-trainer-1-node-1" in ready["message"]
    assert job["status"]["gangStopping"] == 1
    cluster.pods["j-trainer-1"] = running(1)  # still terminating: stopped once
    cluster.check(job, events)
    assert cluster.deleted == ["j-trainer-1"]


def ended(exit_code: int, at: str) -> dict[str, Any]:
    """A pod's status once its container ended `at` (RFC 3339, to the second)."""
    terminated = {"exitCode": exit_code, "finishedAt": at, "message": "connection reset"}
    return {"phase": "Failed", "containerStatuses": [{"state": {"terminated": terminated}}]}


def test_a_rank_zero_that_a_lost_peer_ended_first_names_the_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rank 0's collective loses a deleted peer's ranks at once, and rank 0 may exit before
    the operator sees the loss: the attempt is a GangRestart naming the peer, not a trainer
    failure that says only "exit code 1"."""
    cluster = Cluster(monkeypatch, {"j-trainer-1": running(1)})
    job = gang_job(status={"phase": "Running", "attempts": 1, "observedGeneration": 1})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    for name in ("j-trainer-1-node-1", "j-trainer-1-node-2"):
        cluster.pods[name]["status"] = {"phase": "Running", "podIP": "10.244.0.10"}
    del cluster.pods["j-trainer-1-node-2"]
    cluster.pods["j-trainer-1-node-1"]["status"] = ended(1, "2026-12-05T03:40:07Z")
    cluster.pods["j-trainer-1"]["status"] = ended(1, "2026-12-05T03:40:07Z")
    cluster.check(job, events)
    restart = events[-2]  # then the relaunch's TrainerStarted
    assert restart[1] == "GangRestart", events
    assert "j-trainer-1-node-2 (deleted) of the job's 3 pods lost" in restart[2]
    assert "rank 0 (j-trainer-1) exited with code 1" in restart[2]
    assert "node-1" not in restart[2]  # it ended with rank 0, not before it
    assert job["status"]["gangRestarts"] == 1 and job["status"]["failures"] == 1
    assert job["status"]["attempts"] == 2


def test_a_rank_zero_that_failed_on_its_own_is_a_trainer_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, job, events = started_pair(monkeypatch)
    # Its peer lost rank 0's rendezvous a second after rank 0 failed.
    cluster.pods["j-trainer-1-node-1"]["status"] = ended(1, "2026-12-05T03:40:08Z")
    cluster.pods["j-trainer-1"]["status"] = ended(1, "2026-12-05T03:40:07Z")
    cluster.check(job, events)
    assert "TrainerFailed" in [reason for _, reason, _ in events]
    assert "GangRestart" not in [reason for _, reason, _ in events]
    assert "gangRestarts" not in job["status"] and job["status"]["failures"] == 1
