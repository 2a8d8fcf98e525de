"""NotLearning: a run whose loss stays at what a model that learned nothing scores (the
trainer exports that baseline) gets its learning rate cut tenfold, with clipping. The
figures are those of the efficacy zoo's runs (bench/zoo/transformer-no-warmup.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process

UNIGRAM_ENTROPY = 3.261  # nats per byte of the pydoc text


def milestone(step: int, loss_last: float) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"model": loss_last + 0.05},
        "loss_last": {"model": loss_last},
        "baseline_loss": UNIGRAM_ENTROPY,
    }


@pytest.mark.parametrize(
    ("losses", "fires"),
    [
        ([3.262, 3.117], True),  # 25x the LR, no warm-up: 96% of the baseline at step 200
        ([2.832, 2.572], False),  # healthy: 79%
        ([3.262], False),  # the first window includes the random start: not judged
    ],
)
def test_a_loss_stuck_at_the_baseline_is_found(losses: list[float], fires: bool) -> None:
    history = [milestone(100 * (i + 1), loss) for i, loss in enumerate(losses)]
    kinds = [f.kind for f in diagnose(history, "transformer")]
    assert ("NotLearning" in kinds) == fires


def test_not_learning_cuts_the_learning_rate_tenfold_and_clips() -> None:
    job = {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {
                "maxSteps": 800,
                "hyperparameters": {"learningRate": 0.05, "gradientClip": 0},
            },
            "checkpoints": {"interval": 100},
        },
        "status": {},
    }
    first = process(milestone(100, 3.262), job, now=0.0)
    job["status"] = first.status
    second = process(milestone(200, 3.117), job, now=0.0)
    assert second.record is not None and second.record["finding"] == "NotLearning"
    assert second.spec is not None
    hp = second.spec["training"]["hyperparameters"]
    assert hp["learningRate"] == pytest.approx(0.005) and hp["gradientClip"] == 1.0
