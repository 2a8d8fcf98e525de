"""A user's own training program under the real operator (examples/custom-plain-loop.yaml):
a plain PyTorch loop, reporting through gentrain-sdk at a learning rate 300 times too
high, is diagnosed (NotLearning), given the one rung of the ladder it supports (start
afresh at a tenth of the rate: it declared reinitialize, lower_lr and cut_lr), takes the
change up through the SDK's callback and handler, and ends far better than it would have
untouched."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_sdk import Reporter
from tests.operator.test_families_cluster import finished
from tests.operator.test_operator_cluster import events
from tests.support.kube import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.integrations]
REPO = Path(__file__).resolve().parents[2]
PLAIN_LOOP = REPO / "examples" / "sdk" / "plain_loop.py"
STEPS, INTERVAL = 800, 100


def final_validation_loss(monkeypatch: pytest.MonkeyPatch, learning_rate: str) -> float:
    """The example run in this process, untouched by any operator."""
    seen: list[float] = []
    publish = Reporter.milestone

    def keep(self: Reporter, step: int, figures: Any = None) -> None:
        publish(self, step, figures)
        seen.append(figures["validation_loss"])

    monkeypatch.setattr(Reporter, "milestone", keep)
    monkeypatch.delenv("GENTRAIN_CONFIG", raising=False)
    main = runpy.run_path(str(PLAIN_LOOP))["main"]
    main(["--port", "0", "--learning-rate", learning_rate, "--steps", str(STEPS)])
    return seen[-1]


def test_a_plain_loop_at_a_far_too_high_rate_is_started_afresh_and_recovers(
    cluster: Cluster, namespace: str, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / "custom-plain-loop.yaml").read_text())
    spec = manifest["spec"]
    # The node agent runs no images: the program runs from this checkout, with the
    # environment's python (which holds torch and gentrain-sdk), as the image would.
    spec["command"] = ["python", str(PLAIN_LOOP)]
    spec["args"] = ["--steps", str(STEPS), "--interval", str(INTERVAL), "--pause", "0.04"]
    spec["training"]["maxSteps"] = STEPS
    spec["checkpoints"]["interval"] = INTERVAL
    spec["monitoring"] = {"scrapeIntervalSeconds": 1}
    spec["resources"] = {"cpu": "500m", "memory": "1Gi"}
    cluster.apply(manifest, namespace)

    final = finished(cluster, namespace, "custom-plain-loop", timeout=300)
    assert final["phase"] == "Succeeded", final.get("message")
    first = final["remediations"][0]
    assert (first["finding"], first["actions"]) == ("NotLearning", ["reinitialize", "cut_lr"])
    assert [c["to"] for c in first["changes"]] == [pytest.approx(0.1)]
    milestones = final["milestones"]
    assert any(m.get("origin_step", 0) > 0 for m in milestones), "never started afresh"
    assert set(milestones[-1]["loss_mean"]) == {"total"}
    recovered = milestones[-1]["validation_loss"]
    untouched = final_validation_loss(monkeypatch, "1")
    baseline = milestones[-1]["baseline_loss"]
    # Untouched, Adam at 1 ends worse than predicting the mean; started afresh at 0.1 the
    # program learns.
    # The figures, for the README (kopf's test runner holds sys.stdout while it runs).
    print(
        f"validation loss: {recovered:.4f} remediated, {untouched:.4f} untouched, "
        f"{baseline:.4f} baseline",
        file=sys.__stderr__,
    )
    assert untouched > baseline
    assert recovered < 0.6 * baseline < untouched, (recovered, baseline, untouched)
    assert {"NotLearning", "Remediating"} <= set(events(cluster, namespace, "custom-plain-loop"))
