"""A job refused because its queue label names a Kueue the cluster lacks is told to install
Kueue or remove the label. Removing the label is not a spec change, so the refusal's
retry timer (5 minutes) used to hold the job back that long after the user did as told."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator import kube, launching, lifecycle
from gentrain_operator.conditions import now
from gentrain_operator.settings import Settings


def refused_job(labels: dict[str, str]) -> dict[str, Any]:
    message = (
        f"the API server refused {lifecycle.WORKLOAD_REFUSED}: the job is labelled "
        "kueue.x-k8s.io/queue-name, but this cluster serves no Kueue Workloads "
        "(kueue.x-k8s.io/v1beta2): install Kueue, or remove the label"
    )
    return {
        "metadata": {"name": "j", "namespace": "n", "uid": "u", "generation": 1, "labels": labels},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring"},
            "training": {"maxSteps": 100},
        },
        "status": {
            "phase": "Pending",
            "message": message,
            "rejectedAt": now(),
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "TrainerPodRejected",
                    "message": message,
                    "observedGeneration": 1,
                }
            ],
        },
    }


def test_a_job_refused_for_its_queue_label_starts_once_the_label_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    monkeypatch.setattr(launching, "ensure_children", lambda job, settings: None)
    monkeypatch.setattr(kube, "create", lambda kind, ns, body: created.append(kind) or True)

    def check(job: dict[str, Any]) -> dict[str, Any]:
        return lifecycle.reconcile(
            job, Settings(), [], lambda namespace, name: None, spec_changed=False
        )

    # An ordinary refusal (of the pod itself) still waits for its retry.
    pod_refused = refused_job({})
    for condition in pod_refused["status"]["conditions"]:
        condition["message"] = "the API server refused the trainer pod: quota exceeded"
    assert check(pod_refused) == {} and not created

    changes = check(refused_job({}))  # the label removed
    assert created == ["Pod"]
    assert changes["attempts"] == 1
