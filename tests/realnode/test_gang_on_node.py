"""A job of two pods as users run it: the chart's operator starts both from the trainer
image, under the chart's security context, on the real node (kubelet, containerd, CNI
bridge); the second joins rank 0's pod over the pod network (at its IP as the operator's
own pods, by its name as a JobSet), both train as one (gloo on CPU) to identical weights,
and rank 0's pod alone holds the checkpoint claim."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from gentrain_operator import jobset
from tests.operator.test_operator_cluster import events
from tests.realnode.conftest import TRAINER_IMAGE
from tests.realnode.test_training_on_node import (
    example,
    finished,
    print_trainer_logs,
    trainer_pods,
)
from tests.support import kube

pytestmark = [pytest.mark.realnode, pytest.mark.multinode, pytest.mark.cluster, pytest.mark.slow]
FINGERPRINT = re.compile(r"rank (\d) of 2: weights fingerprint (\S+)")


def train_two_pods(real_node: kube.Cluster, namespace: str) -> tuple[dict[str, Any], float]:
    """The digits GAN on two pods for 400 steps, to its end: the job's final status, and
    the seconds from the job made to the end seen."""
    spec = {
        "training": {"maxSteps": 400},
        "checkpoints": {"interval": 200},
        "resources": {"nodes": 2, "gpus": 0, "cpu": "500m", "memory": "1536Mi"},
    }
    started = time.monotonic()
    real_node.apply(example("gan-digits", spec=spec), namespace)
    final = finished(real_node, namespace, "gan-digits", timeout=600)
    took = time.monotonic() - started
    if final["phase"] != "Succeeded" or final.get("checkpointStep") != 400:
        print_trainer_logs(real_node, namespace, "gan-digits", final)
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["checkpointStep"] == 400 and final["attempts"] == 1
    return final, took


def same_weights(real_node: kube.Cluster, namespace: str, pods: list[str]) -> None:
    logs = [real_node.kubectl("logs", "-n", namespace, name).stdout for name in pods]
    prints = dict(match for log in logs for match in FINGERPRINT.findall(log))
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"], prints


def without_the_claim(pod: Any) -> None:
    """A pod other than rank 0: the trainer image, non-root, no checkpoint claim."""
    assert pod.spec.containers[0].image == TRAINER_IMAGE
    assert pod.spec.security_context.run_as_non_root is True
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["checkpoints"].persistent_volume_claim is None  # rank 0's alone


def test_two_trainer_pods_from_the_image_train_as_one(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    _, took = train_two_pods(real_node, namespace)
    pods = {p.metadata.name: p for p in trainer_pods(real_node, namespace, "gan-digits")}
    assert sorted(pods) == ["gan-digits-trainer-1", "gan-digits-trainer-1-node-1"]
    same_weights(real_node, namespace, sorted(pods))
    without_the_claim(pods["gan-digits-trainer-1-node-1"])
    assert "GangStarted" in events(real_node, namespace, "gan-digits")
    print(f"two trainer pods on the real node: 400 steps, Succeeded {took:.0f} s after the job")


def test_two_trainer_pods_from_the_image_as_a_jobset_find_rank_zero_by_name(
    real_node: kube.Cluster, namespace: str, jobset_api: None, release: str
) -> None:
    """The same job where the cluster runs JobSet: one JobSet, whose worker resolves rank
    0's name through the cluster's DNS (the kubelet's clusterDNS), under the chart's RBAC."""
    _, took = train_two_pods(real_node, namespace)
    pods = {
        p.metadata.labels["jobset.sigs.k8s.io/replicatedjob-name"]: p
        for p in trainer_pods(real_node, namespace, "gan-digits")
    }
    assert sorted(pods) == ["leader", "workers"], sorted(pods)
    assert {p.metadata.labels[jobset.JOBSET_NAME_LABEL] for p in pods.values()} == {
        "gan-digits-trainer-1"
    }
    same_weights(real_node, namespace, [p.metadata.name for p in pods.values()])
    worker = pods["workers"]
    without_the_claim(worker)
    assert worker.spec.dns_policy == "ClusterFirst"
    assert worker.spec.subdomain == "gan-digits-trainer-1"
    print(f"two trainer pods as a JobSet on the real node: Succeeded {took:.0f} s after the job")
