"""Fault at the seam between the two writes of a remediation: the spec PATCH goes
through, the status PATCH right after it answers 503. The operator handles the same
milestone again on its next scrape; it must record the remediation once and change the
job once (before the intent annotation it decided again on the changed spec, reused the
record id r1 and the command id r1-0, and the API refused the duplicate every retry)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from prometheus_client import REGISTRY

from gentrain_operator import job_object as operator_job_object
from gentrain_operator import names
from gentrain_operator.policy import RATE_CHECK
from tests.operator.test_families_cluster import zoo
from tests.operator.test_operator_cluster import events, gtj, job, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.slow]


class FailStatusAfterSpec:
    """Wraps the operator's two writes: the first milestone record (the status PATCH)
    after each spec PATCH fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.armed = False
        self.injected = 0
        self.spec_patches: list[dict[str, Any]] = []
        real_spec, real_record = (
            operator_job_object.patch_job_spec,
            operator_job_object.record_milestone,
        )

        def patch_spec(namespace: str, name: str, patch: Any, *args: Any) -> dict[str, Any]:
            result = real_spec(namespace, name, patch, *args)
            if name != "seam":  # a job an earlier test left behind (the operator sees all)
                return result
            with self.lock:
                self.spec_patches.append(patch)
                self.armed = True
            return result

        def record(namespace: str, name: str, body: Any, version: str) -> None:
            if name != "seam":
                real_record(namespace, name, body, version)
                return
            with self.lock:
                fail, self.armed = self.armed, False
                if fail:
                    self.injected += 1
            if fail:
                raise ApiException(status=503, reason="Service Unavailable (injected)")
            real_record(namespace, name, body, version)

        monkeypatch.setattr(operator_job_object, "patch_job_spec", patch_spec)
        monkeypatch.setattr(operator_job_object, "record_milestone", record)


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[FailStatusAfterSpec]:
    yield FailStatusAfterSpec(monkeypatch)


def test_a_remediation_whose_status_write_failed_is_applied_once(
    cluster: Cluster, namespace: str, faulty: FailStatusAfterSpec, operator: None
) -> None:
    # A VAE whose KL weight of 20 collapses every latent unit: a remediation early in the
    # run on any CPU (a GAN's findings depend on its trajectory) — PosteriorCollapse's, or
    # where that is found only later (Intel Xeon, session 40: at 750 of 1,000), the
    # scheduled rate check's at 500.
    body = gtj("seam")
    body["spec"] = {
        **zoo("vae-kl-weight-too-high", "broken", training={"maxSteps": 1000}),
        "remediation": {"mode": "auto"},
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": {"cpu": "1", "memory": "1Gi"},
    }
    cluster.apply(body, namespace)
    final = wait_for(
        lambda: status(cluster, namespace, "seam"),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        "the job to finish",
        timeout=300,
    )
    assert final["phase"] == "Succeeded", final.get("message")
    assert faulty.injected >= 1, "no remediation was decided, so no fault was injected"
    records = final["remediations"]
    ids = [r["id"] for r in records]
    assert ids == [f"r{i + 1}" for i in range(len(records))], ids
    assert final["remediationCount"] == len(records)
    # Every decision reached the spec exactly once: one spec PATCH per record.
    assert len(faulty.spec_patches) == len(records), (faulty.spec_patches, records)
    commands = [c["id"] for c in job(cluster, namespace, "seam")["spec"].get("commands", [])]
    assert all(count == 1 for count in Counter(commands).values()), commands
    expected = {cid for r in records for cid in r["commands"]}
    assert set(commands) == expected, (commands, expected)
    annotations = job(cluster, namespace, "seam")["metadata"].get("annotations") or {}
    assert names.INTENT_ANNOTATION in annotations
    # Each decision told as it was decided, the replayed one too: a rate check is routine
    # (Normal, LearningRateCheck), any other a remediation (Warning, Remediating).
    told = set(events(cluster, namespace, "seam"))
    reasons = {RATE_CHECK if r["finding"] == RATE_CHECK else "Remediating" for r in records}
    assert reasons <= told, (told, records)
    # Counted once each, the replayed ones too (the failed write came before the count).
    actions = Counter((r["finding"], a) for r in records for a in r["actions"])
    counted = {
        key: REGISTRY.get_sample_value(
            "gentrain_operator_remediations_total",
            {
                "namespace": namespace,
                "gtj": "seam",
                "finding": key[0],
                "action": key[1],
                "mode": "auto",
            },
        )
        for key in actions
    }
    assert counted == dict(actions), (counted, actions)
