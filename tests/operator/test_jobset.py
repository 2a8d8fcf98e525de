"""A job of several pods as a JobSet, where the cluster serves its API: one JobSet per
attempt, rank 0 its leader (the claim, the metrics port; read under the attempt's name),
the workers told their rank and rank 0's stable name; a failed JobSet restarts the whole
gang once, counted; stopping an attempt deletes its JobSet, never its rank 0 alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gentrain_operator import builders, gang, jobset, kube, launching, lifecycle, names
from gentrain_operator.conditions import now
from gentrain_operator.settings import Settings
from tests.operator.test_gang import SETTINGS, UNSCHEDULABLE, env, gang_job


def leader_pod(attempt: int = 1, nodes: int = 3) -> dict[str, Any]:
    return builders.trainer_pod(gang_job(nodes), attempt, with_gpus=False, settings=SETTINGS)


def test_the_jobset_runs_rank_zero_as_the_trainer_pod_and_the_workers_without_the_claim() -> None:
    body = jobset.build(leader_pod(), nodes=3)
    assert body["metadata"]["name"] == names.pod_name("j", 1) == "j-trainer-1"
    assert body["metadata"]["ownerReferences"][0]["kind"] == names.KIND
    spec = body["spec"]
    assert spec["failurePolicy"] == {"maxRestarts": 0}
    assert spec["successPolicy"] == {"operator": "All", "targetReplicatedJobs": []}
    assert spec["network"]["subdomain"] == "j-trainer-1"
    leader, workers = spec["replicatedJobs"]
    assert (leader["name"], leader["replicas"], workers["name"], workers["replicas"]) == (
        "leader",
        1,
        "workers",
        2,
    )
    for replicated in (leader, workers):
        job_spec = replicated["template"]["spec"]
        assert job_spec["completionMode"] == "Indexed" and job_spec["backoffLimit"] == 0
    rank_zero = leader["template"]["spec"]["template"]
    assert rank_zero["metadata"]["labels"][names.ATTEMPT_POD_LABEL] == "j-trainer-1"
    assert rank_zero["metadata"]["labels"][names.NODE_RANK_LABEL] == "0"
    volumes = {v["name"]: v for v in rank_zero["spec"]["volumes"]}
    assert volumes["checkpoints"]["persistentVolumeClaim"]["claimName"] == "j-checkpoints"
    assert rank_zero["spec"]["containers"][0]["ports"][0]["name"] == "metrics"
    assert env(rank_zero)["PET_NODE_RANK"] == "0"
    worker = workers["template"]["spec"]["template"]
    assert names.ATTEMPT_POD_LABEL not in worker["metadata"]["labels"]
    assert names.NODE_RANK_LABEL not in worker["metadata"]["labels"]
    assert {v["name"]: v for v in worker["spec"]["volumes"]}["checkpoints"] == {
        "name": "checkpoints",
        "emptyDir": {},
    }
    assert "ports" not in worker["spec"]["containers"][0]
    variables = env(worker)
    assert variables["PET_NODE_RANK"] == {
        "fieldRef": {"fieldPath": "metadata.labels['jobset.sigs.k8s.io/job-global-index']"}
    }
    assert variables["PET_MASTER_ADDR"] == "j-trainer-1-leader-0-0.j-trainer-1"
    assert variables["PET_NNODES"] == "3"
    # The worker's copy changed nothing of rank 0's.
    assert env(rank_zero)["PET_MASTER_ADDR"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_a_jobset_whose_host_names_would_not_be_dns_labels_is_not_used() -> None:
    assert jobset.fits("j", 1, 3)
    assert not jobset.fits("x" * 42, 1, 3)  # x...x-trainer-1-workers-1-0: 64 characters
    assert jobset.fits("x" * 41, 1, 3)


class JobSetCluster:
    """The API server as the lifecycle sees it with the JobSet API served: JobSets and
    pods by name, and the Job controller's rank 0 pod read under the attempt's name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobsets: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.deleted_jobsets: list[str] = []
        self.deleted_pods: list[tuple[str, int | None]] = []
        monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
        monkeypatch.setattr(jobset, "served", lambda: True)
        monkeypatch.setattr(kube, "list_nodes", lambda: None)  # cannot tell: start
        monkeypatch.setattr(jobset, "create", self.create)
        monkeypatch.setattr(jobset, "read", lambda ns, name: self.jobsets.get(name))
        monkeypatch.setattr(jobset, "delete", lambda ns, name: self.deleted_jobsets.append(name))
        monkeypatch.setattr(jobset, "pods", lambda ns, name: list(self.pods.values()))
        monkeypatch.setattr(kube, "create", lambda *a: pytest.fail("no pod of its own"))
        monkeypatch.setattr(kube, "delete_pod", self.delete_pod)

    def create(self, namespace: str, body: dict[str, Any]) -> bool:
        self.jobsets[body["metadata"]["name"]] = copy.deepcopy(body)
        return True

    def start(self, name: str, phase: str = "Running") -> None:
        """What the JobSet and Job controllers make of it: rank 0's pod, named by them."""
        template = self.jobsets[name]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
        labels = {**template["metadata"]["labels"], jobset.JOBSET_NAME_LABEL: name}
        self.pods[f"{name}-leader-0-0-x7k2p"] = {
            "metadata": {"name": f"{name}-leader-0-0-x7k2p", "labels": labels},
            "spec": template["spec"],
            "status": {"phase": phase, "podIP": "10.244.0.7"},
        }

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get(name) or next(
            (
                pod
                for pod in self.pods.values()
                if pod["metadata"]["labels"].get(names.ATTEMPT_POD_LABEL) == name
            ),
            None,
        )

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self.deleted_pods.append((name, grace_seconds))

    def check(
        self, job: dict[str, Any], events: list[tuple[str, str, str]], settings: Settings = SETTINGS
    ) -> dict[str, Any]:
        changes = lifecycle.reconcile(job, settings, events, self.read, spec_changed=False)
        job["status"] = {**job["status"], **changes}
        return changes


def running_jobset(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[JobSetCluster, dict[str, Any], list[tuple[str, str, str]]]:
    """A gang job whose first attempt's JobSet has made rank 0, running."""
    cluster = JobSetCluster(monkeypatch)
    job = gang_job(status={"phase": "Pending", "attempts": 0})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    cluster.start("j-trainer-1")
    cluster.check(job, events)
    return cluster, job, events


def test_an_attempt_is_a_jobset_and_a_failed_one_restarts_the_gang_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = JobSetCluster(monkeypatch)
    job = gang_job(status={"phase": "Pending", "attempts": 0})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    assert list(cluster.jobsets) == ["j-trainer-1"]
    assert job["status"]["podName"] == "j-trainer-1"
    assert events[-1][:2] == ("Normal", "TrainerStarted")
    assert "JobSet j-trainer-1 (3 pods)" in events[-1][2]

    cluster.start("j-trainer-1")
    cluster.check(job, events)
    assert job["status"]["phase"] == "Running"
    assert job["status"]["gangAttempt"] == 1
    assert not cluster.deleted_pods and not cluster.deleted_jobsets

    # A worker lost: the Job controller fails its Job, the JobSet fails.
    cluster.jobsets["j-trainer-1"]["status"] = {
        "conditions": [
            {"type": "Failed", "status": "True", "message": "jobset failed due to a failed job"}
        ]
    }
    cluster.pods["j-trainer-1-workers-1-0-abcde"] = {
        "metadata": {"name": "j-trainer-1-workers-1-0-abcde", "labels": {}},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}],
        },
    }
    cluster.check(job, events)
    assert cluster.deleted_pods == [("j-trainer-1-leader-0-0-x7k2p", gang.LOST_GRACE_SECONDS)]
    assert job["status"]["gangRestarts"] == 1 and job["status"]["gangStopping"] == 1
    assert events[-1][1] == "GangRestart"
    assert "j-trainer-1-workers-1-0-abcde (failed: exit code 137)" in events[-1][2]
    cluster.check(job, events)  # still stopping: once
    assert len(cluster.deleted_pods) == 1 and job["status"]["gangRestarts"] == 1

    # Rank 0 gone: the next attempt is a new JobSet; the failed one is kept (its logs).
    cluster.pods.clear()
    cluster.check(job, events)
    assert list(cluster.jobsets) == ["j-trainer-1", "j-trainer-2"]
    assert job["status"]["attempts"] == 2 and job["status"]["failures"] == 1
    assert cluster.deleted_jobsets == []


def test_stopping_an_attempt_deletes_its_jobset_not_rank_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, job, events = running_jobset(monkeypatch)
    job["spec"]["suspend"] = True
    cluster.check(job, events)
    assert cluster.deleted_jobsets == ["j-trainer-1"]
    assert cluster.deleted_pods == []
    assert job["status"]["phase"] == "Suspended"


def test_a_worker_the_scheduler_cannot_place_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, job, events = running_jobset(monkeypatch)
    cluster.pods["j-trainer-1-workers-0-0-qwert"] = {
        "metadata": {"name": "j-trainer-1-workers-0-0-qwert", "labels": {}},
        "status": UNSCHEDULABLE,
    }
    cluster.check(job, events)
    assert events[-1][1] == "GangIncomplete"
    assert "j-trainer-1-workers-0-0-qwert (0/1 nodes are available" in events[-1][2]


def test_a_jobset_whose_pods_are_not_made_yet_is_waited_for_not_launched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between a JobSet made and its rank 0 pod made (JobSet's controller, then the Job
    controller: seconds on a loaded cluster) the attempt has no pod: it is starting, not
    lost. A JobSet that makes no pod at all (no controller running) is said, once."""
    cluster = JobSetCluster(monkeypatch)
    job = gang_job(status={"phase": "Pending", "attempts": 0})
    events: list[tuple[str, str, str]] = []
    cluster.check(job, events)
    cluster.jobsets["j-trainer-1"]["metadata"]["creationTimestamp"] = now()
    cluster.check(job, events)
    cluster.check(job, events)
    assert list(cluster.jobsets) == ["j-trainer-1"] and job["status"]["attempts"] == 1
    assert not cluster.deleted_jobsets and "failures" not in job["status"]

    cluster.jobsets["j-trainer-1"]["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    cluster.check(job, events)
    cluster.check(job, events)
    assert list(cluster.jobsets) == ["j-trainer-1"]
    assert [reason for _, reason, _ in events].count("JobSetNotRunning") == 1
    ready = next(c for c in job["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "JobSetNotRunning" and "JobSet's controller" in ready["message"]

    cluster.start("j-trainer-1")  # the controller came: the attempt runs
    cluster.check(job, events)
    assert job["status"]["phase"] == "Running" and job["status"]["attempts"] == 1


def failed_jobset(first_failed_job: str) -> dict[str, Any]:
    """A JobSet's status as its controller fails it (failurePolicy.maxRestarts 0)."""
    message = (
        "jobset failed due to reaching max number of restarts "
        f"(first failed job: {first_failed_job})"
    )
    return {"conditions": [{"type": "Failed", "status": "True", "message": message}]}


@pytest.mark.parametrize(
    ("first_failed_job", "rank_zero", "said"),
    [
        # A worker lost: rank 0's collective loses its ranks and rank 0 exits first...
        ("j-trainer-1-workers-0", "failed", "GangRestart"),
        # ...or the JobSet controller removes rank 0 as the worker fails the JobSet.
        ("j-trainer-1-workers-0", "gone", "GangRestart"),
        # Rank 0 failed first, on its own.
        ("j-trainer-1-leader-0", "failed", "TrainerFailed"),
        ("j-trainer-1-leader-0", "gone", "TrainerLost"),
    ],
)
def test_an_attempt_a_lost_worker_ended_through_rank_zero_names_the_worker(
    monkeypatch: pytest.MonkeyPatch, first_failed_job: str, rank_zero: str, said: str
) -> None:
    """The JobSet names the first of its Jobs to fail: what rank 0's own end (exit code 1,
    or its pod removed) does not say."""
    cluster, job, events = running_jobset(monkeypatch)
    leader = "j-trainer-1-leader-0-0-x7k2p"
    if rank_zero == "gone":
        del cluster.pods[leader]
    else:
        terminated = {"exitCode": 1, "finishedAt": now(), "message": "connection reset"}
        cluster.pods[leader]["status"] = {
            "phase": "Failed",
            "containerStatuses": [{"state": {"terminated": terminated}}],
        }
    cluster.jobsets["j-trainer-1"]["status"] = failed_jobset(first_failed_job)
    cluster.check(job, events)
    endings = [
        reason
        for _, reason, _ in events
        if reason in ("GangRestart", "TrainerFailed", "TrainerLost")
    ]
    assert endings == [said], events
    if said == "GangRestart":
        message = next(text for _, reason, text in events if reason == said)
        assert "the pod of Job j-trainer-1-workers-0 (the first of JobSet j-trainer-1's" in message
        assert job["status"]["gangRestarts"] == 1
    else:
        assert "gangRestarts" not in job["status"]
    assert job["status"]["failures"] == 1 and list(cluster.jobsets)[-1] == "j-trainer-2"


def test_a_failed_rank_zero_waits_a_moment_for_its_jobset_to_say_which_job_failed_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, job, events = running_jobset(monkeypatch)
    pod = cluster.pods["j-trainer-1-leader-0-0-x7k2p"]
    terminated = {"exitCode": 1, "finishedAt": now()}
    pod["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"state": {"terminated": terminated}}],
    }
    cluster.check(job, events)  # the JobSet has not failed yet: the next check decides
    assert "failures" not in job["status"] and list(cluster.jobsets) == ["j-trainer-1"]
    terminated["finishedAt"] = "2020-01-01T00:00:00Z"  # no JobSet controller says so
    cluster.check(job, events)
    assert events[-2][1] == "TrainerFailed" and job["status"]["failures"] == 1
