"""A rollback on the cluster keeps what it promises across restarts (issue 11, faults 3-4).

The trainer keeps two checkpoints (`keep: 2`) and saves every 200 steps (a few seconds).
The operator's rollback is held back (its spec PATCH waits) until the trainer has saved
two checkpoints past its target, which `keep: 2` alone would then have deleted: only the
operator's pin keeps it, and before the pin arrives, the verdict still in flight (the
rotation keeps checkpoints newer than the last milestone judged; the timing of late
verdicts is tested in tests/trainer/test_checkpoints.py, where it is the test's own).

The NaN is injected by `nonfinite_trainer.py` (the real trainer, its weights set to NaN
once, as soon as the operator has judged a milestone healthy); everything else is the
real operator, API server and trainer."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gentrain_operator import handlers, names
from gentrain_operator import job_object as operator_job_object
from tests.operator.test_operator_cluster import events, gtj, job, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults]
HERE = Path(__file__).resolve().parent
INTERVAL = 200


def checkpoint_volume(cluster: Cluster, namespace: str, job_name: str) -> Path:
    """The host directory behind the job's checkpoint claim (the local provisioner's PV)."""
    core = client.CoreV1Api(cluster.api)
    claim = core.read_namespaced_persistent_volume_claim(names.claim_name(job_name), namespace)
    volume = core.read_persistent_volume(claim.spec.volume_name)
    return Path(volume.spec.host_path.path)


def live_steps(directory: Path) -> list[int]:
    return sorted(int(p.name[5:]) for p in directory.glob("step-*") if p.name[5:].isdigit())


def hold_rollbacks_until_two_later_saves(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's spec PATCH that carries a rollback to step P waits until the
    trainer has saved two checkpoints after P (a slow operator, a busy API server)."""
    real = operator_job_object.patch_job_spec

    def patch_spec(ns: str, name: str, patch: Any, *args: Any) -> dict[str, Any]:
        rollbacks = [c for c in patch.get("commands") or [] if c.get("action") == "rollback"]
        if ns == namespace and rollbacks:
            volume = checkpoint_volume(cluster, namespace, name)
            target = min(int(c["step"]) for c in rollbacks)
            wait_for(
                lambda: live_steps(volume),
                lambda steps: len([s for s in steps if s > target]) >= 2,
                f"two saves after step {target}",
                timeout=120,
            )
        result: dict[str, Any] = real(ns, name, patch, *args)
        return result

    monkeypatch.setattr(operator_job_object, "patch_job_spec", patch_spec)


def trainer_log(cluster: Cluster, namespace: str, pod: str, needle: str) -> str:
    return wait_for(
        lambda: cluster.core.read_namespaced_pod_log(pod, namespace),
        lambda text: needle in text,
        f"{pod} to log {needle!r}",
        timeout=120,
    )


def saved_milestones(cluster: Cluster, namespace: str, pod: str) -> list[int]:
    log = cluster.core.read_namespaced_pod_log(pod, namespace)
    return [int(m) for m in re.findall(r'milestone \{"step": (\d+)', log)]


def resumed_from(log: str) -> tuple[int, int]:
    """The step a trainer resumed from, and the generation its checkpoint was saved under:
    from its log, not the checkpoint's manifest, which the rotation may have removed by
    the time the log is read (a loaded fresh clone saw step-600 gone)."""
    found = re.search(r"resumed from checkpoint step (\d+) .*saved under generation (\d+)", log)
    assert found, log[-2000:]
    return int(found.group(1)), int(found.group(2))


def test_a_rollback_survives_keep_two_and_both_kinds_of_pod_deletion(
    cluster: Cluster, namespace: str, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cluster.local:
        pytest.skip("reads the checkpoint volume from the local provisioner's host directory")
    command = ("python", str(HERE / "nonfinite_trainer.py"))
    monkeypatch.setattr(
        handlers, "SETTINGS", dataclasses.replace(handlers.SETTINGS, trainer_command=command)
    )
    hold_rollbacks_until_two_later_saves(cluster, namespace, monkeypatch)
    cluster.apply(
        gtj(
            "nan",
            max_steps=1_000_000,
            interval=INTERVAL,
            checkpoints={"keep": 2},
            remediation={"mode": "auto"},
            # Half the default rate: at 1e-3 the ring GAN's weights move ~1% per step, at
            # NotLearning's threshold, and a re-initialisation would wipe the NaN first.
            training={
                "hyperparameters": {
                    "generatorLearningRate": 5e-4,
                    "discriminatorLearningRate": 5e-4,
                }
            },
        ),
        namespace,
    )
    # The fault, as soon as the operator has judged a milestone healthy.
    wait_for(
        lambda: status(cluster, namespace, "nan").get("lastHealthyCheckpoint"),
        lambda step: step is not None,
        "a milestone judged healthy",
        timeout=180,
    )
    volume = checkpoint_volume(cluster, namespace, "nan")
    (volume / ".nonfinite-now").write_text("")
    # The operator decides once on the NaN milestone; the trainer rolls back to the last
    # milestone judged healthy, which the rotation of NaN checkpoints must have spared.
    decided = wait_for(
        lambda: status(cluster, namespace, "nan"),
        lambda s: any(r["finding"] == "NonFiniteLoss" for r in s.get("remediations", [])),
        "the NaN milestone's remediation",
        timeout=180,
    )
    record = next(r for r in decided["remediations"] if r["finding"] == "NonFiniteLoss")
    healthy = decided["lastHealthyCheckpoint"]
    poisoned_at = int((volume / ".nonfinite-injected").read_text())
    assert healthy <= poisoned_at < record["step"], (healthy, poisoned_at, record)
    rollback = next(
        c
        for c in job(cluster, namespace, "nan")["spec"]["commands"]
        if c["id"] in record["commands"] and c["action"] == "rollback"
    )
    assert rollback["step"] == healthy
    first = trainer_log(cluster, namespace, "nan-trainer-1", "rolled back to step")
    found = re.search(r"rolled back to step (\d+),", first)
    assert found, first[-2000:]
    # Exactly the operator's target: the checkpoints newer than its last verdict waited
    # for it (a loaded run once lost both the target and the one before it).
    rolled_to = int(found.group(1))
    assert rolled_to == healthy, (rolled_to, healthy)
    assert "fault injected" in first
    abandoned = sorted(volume.glob("abandoned-*/step-*"))
    # Two checkpoints newer than the healthy one existed (held so): keep 2 alone would
    # have deleted it. They were moved aside, not deleted.
    assert len(abandoned) >= 2, abandoned
    assert all(int(p.name[5:]) > rolled_to for p in abandoned)
    rollback_generation = job(cluster, namespace, "nan")["metadata"]["generation"]

    # Graceful deletion: the trainer saves on SIGTERM; the next attempt resumes there.
    # Then SIGKILL (no grace): the next attempt resumes from the newest checkpoint saved
    # after the rollback. Either way not on the abandoned timeline.
    resumed, newest_saved = [], rolled_to
    for attempt, grace in ((2, None), (3, 0)):
        cluster.core.delete_namespaced_pod(
            f"nan-trainer-{attempt - 1}", namespace, grace_period_seconds=grace
        )
        log = trainer_log(
            cluster, namespace, f"nan-trainer-{attempt}", "resumed from checkpoint step"
        )
        step, generation = resumed_from(log)
        resumed.append(step)
        assert step >= (rolled_to if attempt == 2 else newest_saved), (attempt, step)
        assert step == rolled_to or generation >= rollback_generation, (
            f"attempt {attempt} resumed at {step}, a checkpoint of the abandoned timeline"
        )
        assert "fault injected" not in log
        # A milestone of this attempt, so that the next one has a newer checkpoint to find.
        saved = wait_for(
            lambda n=attempt: saved_milestones(cluster, namespace, f"nan-trainer-{n}"),
            lambda steps, after=step: any(s > after for s in steps),
            f"a milestone of attempt {attempt}",
            timeout=120,
        )
        newest_saved = max(saved)

    # Training goes on healthy from there; nothing was decided or applied twice.
    latest = status(cluster, namespace, "nan")["milestones"][-1]["step"]
    final = wait_for(
        lambda: status(cluster, namespace, "nan"),
        lambda s: s["milestones"][-1]["step"] >= latest + 3 * INTERVAL,
        "three more milestones",
        timeout=120,
    )
    findings = [r["finding"] for r in final["remediations"]]
    assert findings.count("NonFiniteLoss") == 1, final["remediations"]
    assert events(cluster, namespace, "nan").count("Remediating") == len(findings)
    spec = job(cluster, namespace, "nan")["spec"]
    ids = [c["id"] for c in spec["commands"]]
    assert len(ids) == len(set(ids))
    assert sorted(p.name for p in volume.glob("abandoned-*/step-*")) == sorted(
        p.name for p in abandoned
    ), "a later attempt moved or deleted the abandoned timeline"
    print(
        f"NaN at {poisoned_at}, found at milestone {record['step']}, rolled back to {rolled_to} (target {healthy}); "
        f"abandoned {[p.name for p in abandoned]}; attempts 2 and 3 resumed at {resumed}",
        file=sys.__stdout__,
    )
