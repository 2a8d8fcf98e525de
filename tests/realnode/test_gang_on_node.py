"""A job of two pods as users run it: the chart's operator starts both from the trainer
image, under the chart's security context, on the real node (kubelet, containerd, CNI
bridge); the second joins rank 0's pod at its IP over the pod network, both train as one
(gloo on CPU) to identical weights, and rank 0's pod alone holds the checkpoint claim."""

from __future__ import annotations

import re
import time

import pytest

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


def test_two_trainer_pods_from_the_image_train_as_one(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
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
    pods = {p.metadata.name: p for p in trainer_pods(real_node, namespace, "gan-digits")}
    assert sorted(pods) == ["gan-digits-trainer-1", "gan-digits-trainer-1-node-1"]
    logs = {name: real_node.kubectl("logs", "-n", namespace, name).stdout for name in pods}
    prints = dict(match for log in logs.values() for match in FINGERPRINT.findall(log))
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"], prints
    other = pods["gan-digits-trainer-1-node-1"]
    assert other.spec.containers[0].image == TRAINER_IMAGE
    assert other.spec.security_context.run_as_non_root is True
    volumes = {v.name: v for v in other.spec.volumes}
    assert volumes["checkpoints"].persistent_volume_claim is None  # rank 0's alone
    assert "GangStarted" in events(real_node, namespace, "gan-digits")
    print(f"two trainer pods on the real node: 400 steps, Succeeded {took:.0f} s after the job")
