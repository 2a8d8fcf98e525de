"""A rollback on the cluster keeps what it promises across restarts (issue 11, faults 3-4).

The trainer keeps two checkpoints (`keep: 2`) and saves every 200 steps (a few seconds).
The operator's pin of the healthy checkpoint and its rollback are both held back until
the trainer has saved two checkpoints past it, so that a rotation going by `keep` and
the pins alone deletes it — on any machine, however fast the operator is that day. (A
loaded CI machine did exactly that, without the hold: the rollback was refused.) That one must still be there — the
operator pins it as soon as it judges it, and the trainer re-reads the pins before each
rotation. Then the trainer pod is deleted twice, gracefully and with SIGKILL: each new
attempt resumes on the timeline the rollback chose, never on the abandoned one (moved
aside, not deleted), and nothing is decided or applied twice.

The NaN is injected by `nonfinite_trainer.py` (the real trainer, its weights set to NaN
once at a given step); everything else is the real operator, API server and trainer."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gentrain_operator import handlers, names
from gentrain_operator import kube as operator_kube
from tests.operator.test_operator_cluster import events, gtj, job, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults]
HERE = Path(__file__).resolve().parent
INTERVAL, POISONED_AT = 200, 250


def checkpoint_volume(cluster: Cluster, namespace: str, job_name: str) -> Path:
    """The host directory behind the job's checkpoint claim (the local provisioner's PV)."""
    core = client.CoreV1Api(cluster.api)
    claim = core.read_namespaced_persistent_volume_claim(names.claim_name(job_name), namespace)
    volume = core.read_persistent_volume(claim.spec.volume_name)
    return Path(volume.spec.host_path.path)


def live_steps(directory: Path) -> list[int]:
    return sorted(int(p.name[5:]) for p in directory.glob("step-*") if p.name[5:].isdigit())


def generation_of(directory: Path, step: int) -> int:
    manifest = json.loads((directory / f"step-{step}" / "manifest.json").read_text())
    return int(manifest["generation"])


def hold_until_two_later_saves(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's writes that concern step P — the pin of P (judged healthy) and the
    spec PATCH that carries a rollback to P — wait until the trainer has saved two
    checkpoints after P: a pin that takes a while to reach the pod (a real kubelet
    refreshes ConfigMap volumes about once a minute), a slow operator."""
    real, real_pin = operator_kube.patch_job_spec, operator_kube.pin_checkpoints

    def two_saves_after(job: str, step: int) -> None:
        volume = checkpoint_volume(cluster, namespace, job)
        wait_for(
            lambda: live_steps(volume),
            lambda steps: len([s for s in steps if s > step]) >= 2,
            f"two saves after step {step}",
            timeout=120,
        )

    def pin(ns: str, name: str, steps: list[int]) -> bool:
        if ns == namespace:
            two_saves_after(name, max(steps))
        return bool(real_pin(ns, name, steps))

    def patch_spec(ns: str, name: str, patch: Any, *args: Any) -> dict[str, Any]:
        rollbacks = [c for c in patch.get("commands") or [] if c.get("action") == "rollback"]
        if ns == namespace and rollbacks:
            two_saves_after(name, min(int(c["step"]) for c in rollbacks))
        result: dict[str, Any] = real(ns, name, patch, *args)
        return result

    monkeypatch.setattr(operator_kube, "patch_job_spec", patch_spec)
    monkeypatch.setattr(operator_kube, "pin_checkpoints", pin)


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


def resumed_step(log: str) -> int:
    found = re.search(r"resumed from checkpoint step (\d+)", log)
    assert found, log[-2000:]
    return int(found.group(1))


def test_a_rollback_survives_keep_two_and_both_kinds_of_pod_deletion(
    cluster: Cluster, namespace: str, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cluster.local:
        pytest.skip("reads the checkpoint volume from the local provisioner's host directory")
    command = ("python", str(HERE / "nonfinite_trainer.py"), str(POISONED_AT))
    monkeypatch.setattr(
        handlers, "SETTINGS", dataclasses.replace(handlers.SETTINGS, trainer_command=command)
    )
    hold_until_two_later_saves(cluster, namespace, monkeypatch)
    cluster.apply(
        gtj(
            "nan",
            max_steps=1_000_000,
            interval=INTERVAL,
            checkpoints={"keep": 2},
            remediation={"mode": "auto"},
        ),
        namespace,
    )
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
    # Found at the first NaN milestone the (held) monitor saw.
    assert record["step"] >= POISONED_AT - POISONED_AT % INTERVAL + INTERVAL, record
    assert healthy < POISONED_AT, decided["milestones"]
    rollback = next(
        c
        for c in job(cluster, namespace, "nan")["spec"]["commands"]
        if c["id"] in record["commands"] and c["action"] == "rollback"
    )
    assert rollback["step"] == healthy
    first = trainer_log(cluster, namespace, "nan-trainer-1", "rolled back to step")
    assert f"rolled back to step {healthy}," in first, first[-2000:]
    assert "fault injected" in first
    volume = checkpoint_volume(cluster, namespace, "nan")
    abandoned = sorted(volume.glob("abandoned-*/step-*"))
    # Two checkpoints newer than the healthy one existed (held so): keep 2 alone would
    # have deleted it. They were moved aside, not deleted.
    assert len(abandoned) >= 2, abandoned
    assert all(int(p.name[5:]) > healthy for p in abandoned)
    rollback_generation = job(cluster, namespace, "nan")["metadata"]["generation"]

    # Graceful deletion: the trainer saves on SIGTERM; the next attempt resumes there.
    # Then SIGKILL (no grace): the next attempt resumes from the newest checkpoint saved
    # after the rollback. Either way not on the abandoned timeline.
    resumed, newest_saved = [], healthy
    for attempt, grace in ((2, None), (3, 0)):
        cluster.core.delete_namespaced_pod(
            f"nan-trainer-{attempt - 1}", namespace, grace_period_seconds=grace
        )
        log = trainer_log(
            cluster, namespace, f"nan-trainer-{attempt}", "resumed from checkpoint step"
        )
        step = resumed_step(log)
        resumed.append(step)
        assert step >= (healthy if attempt == 2 else newest_saved), (attempt, step)
        assert step == healthy or generation_of(volume, step) >= rollback_generation, (
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
        f"NaN at {POISONED_AT}, found at milestone {record['step']}, rolled back to {healthy}; "
        f"abandoned {[p.name for p in abandoned]}; attempts 2 and 3 resumed at {resumed}",
        file=sys.__stdout__,
    )
