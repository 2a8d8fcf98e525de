"""A Hugging Face Trainer under the real operator (examples/custom-huggingface-gpt2.yaml):
a 2-layer GPT-2 (built from a config, no weights downloaded) at a learning rate ~170
times too high learns nothing; the operator diagnoses it from what GentrainCallback
reports and climbs its NotLearning ladder with the actions the callback declared. The
changes reach the Trainer's optimizer and scheduler through the callback, the run
recovers, and the remediations are in the job's status."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.operator.test_families_cluster import finished
from tests.operator.test_operator_cluster import events
from tests.support.kube import Cluster

pytest.importorskip("transformers")
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.integrations]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sdk" / "huggingface_gpt2.py"
JOB = "custom-huggingface-gpt2"


def test_a_trainer_at_a_far_too_high_rate_is_remediated_through_its_callback(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / f"{JOB}.yaml").read_text())
    spec = manifest["spec"]
    # The node agent runs no images: the program runs from this checkout, with the
    # environment's python (which holds torch, transformers and gentrain-sdk).
    spec["command"] = ["python", str(EXAMPLE)]
    spec["monitoring"] = {"scrapeIntervalSeconds": 1}
    spec["resources"] = {"cpu": "1", "memory": "2Gi"}
    cluster.apply(manifest, namespace)

    final = finished(cluster, namespace, JOB, timeout=900)
    assert final["phase"] == "Succeeded", final.get("message")
    remediations = final["remediations"]
    first = remediations[0]
    assert first["finding"] == "NotLearning"
    assert first["actions"] == ["reinitialize", "search_learning_rate", "enable_clipping"]
    assert first["search"]["factor"] < 1  # the search ran in the Trainer, on its data
    milestones = final["milestones"]
    assert any(m.get("origin_step", 0) > 0 for m in milestones), "never started afresh"
    rates = [m["hyperparameters"]["learningRate"] for m in milestones]
    assert rates[-1] < 0.5 / 10, rates
    baseline = milestones[-1]["baseline_loss"]
    recovered = milestones[-1]["validation_loss"]
    print(
        f"Hugging Face GPT-2: validation loss {recovered:.4f} remediated, "
        f"{baseline:.4f} unigram baseline; rates {rates}; "
        f"remediations {[(r['finding'], r['actions']) for r in remediations]}",
        file=sys.__stderr__,
    )
    assert recovered < 0.9 * baseline, (recovered, baseline)
    assert {"NotLearning", "Remediating"} <= set(events(cluster, namespace, JOB))
