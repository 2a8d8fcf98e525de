"""The job's labels and annotations, and spec.podTemplate.metadata, reach its trainer pods
(NetworkPolicies and cost tools select pods by label) — but not Kueue's queue name, which
is the job's (its Workload's): a pod carrying it would be queued a second time where
Kueue's pod integration is on. The operator's own labels, which its pod index and
NetworkPolicy select on, cannot be overridden."""

from __future__ import annotations

from typing import Any

from gentrain_operator import builders, names
from gentrain_operator.settings import Settings


def job(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "faces",
            "namespace": "ml",
            "uid": "u",
            "generation": 1,
            "labels": {"team": "vision", "kueue.x-k8s.io/queue-name": "gpus", "tier": "job"},
            "annotations": {
                "cost-center": "ml-42",
                "kubectl.kubernetes.io/last-applied-configuration": "{...the manifest...}",
                names.INTENT_ANNOTATION: "{}",
            },
        },
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {"maxSteps": 100},
            **spec,
        },
    }


def pod_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    return builders.trainer_pod(manifest, 2, with_gpus=False, settings=Settings())["metadata"]


def test_the_jobs_labels_and_annotations_reach_its_pods() -> None:
    metadata = pod_metadata(job())
    assert metadata["labels"]["team"] == "vision"
    assert "kueue.x-k8s.io/queue-name" not in metadata["labels"]
    assert metadata["annotations"]["cost-center"] == "ml-42"
    # Neither kubectl's copy of the manifest nor the operator's bookkeeping.
    assert not [k for k in metadata["annotations"] if k.startswith("kubectl.kubernetes.io/")]
    assert names.INTENT_ANNOTATION not in metadata["annotations"]


def test_the_pod_template_goes_over_the_job_and_the_operators_labels_over_both() -> None:
    template = {
        "metadata": {
            "labels": {
                "tier": "trainer",
                "gentrain.io/job": "someone-else",
                "app.kubernetes.io/managed-by": "me",
            },
            "annotations": {"cost-center": "ml-7", "gentrain.io/gpus": "8"},
        }
    }
    metadata = pod_metadata(job(podTemplate=template))
    assert metadata["labels"]["tier"] == "trainer"
    assert metadata["labels"]["gentrain.io/job"] == "faces"
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "gentrain-operator"
    assert metadata["labels"]["gentrain.io/attempt"] == "2"
    assert metadata["annotations"]["cost-center"] == "ml-7"
    assert metadata["annotations"]["gentrain.io/gpus"] == "0"
