"""AttentionCollapse: a transformer whose attention heads have gone one-hot (entropy
collapse, Zhai et al., 2023: a rate far too high for the model) trains on, far worse than
it could, with no loss rule seeing a fault. The trainer exports its attention entropy over
uniform attention's; below the threshold the run starts afresh at a searched rate with
clipping and a warm-up. The figures are those of the calibration zoo's runs
(bench/zoo/calibration/transformer-rate-10x-too-high-with-warmup.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process

UNIGRAM_ENTROPY = 3.264


def milestone(step: int, validation: float, spread: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"model": validation + 0.2},
        "loss_last": {"model": validation + 0.1},
        "baseline_loss": UNIGRAM_ENTROPY,
        "validation_loss": validation,
    }
    if spread is not None:
        record["attention_entropy_ratio"] = spread
    return record


@pytest.mark.parametrize(
    ("spread", "fires"),
    [
        (0.07, True),  # 10x the rate with warm-up and clipping, first milestone
        (0.023, True),  # the same at its fourth
        (0.88, False),  # the healthy reference, first milestone
        (0.62, False),  # ... and fourth
        (None, False),  # a program that does not report it
    ],
)
def test_collapsed_attention_is_found(spread: float | None, fires: bool) -> None:
    kinds = [f.kind for f in diagnose([milestone(100, 2.54, spread)], "transformer")]
    assert ("AttentionCollapse" in kinds) == fires
    assert "NotLearning" not in kinds  # it learns: 78% of the unigram loss


def transformer_job(**hyperparameters: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {"maxSteps": 800, "hyperparameters": hyperparameters},
            "checkpoints": {"interval": 100},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }


def test_a_collapsed_run_starts_afresh_at_a_searched_rate_with_a_warm_up() -> None:
    job = transformer_job(learningRate=0.02, gradientClip=1.0, warmupSteps=10)
    outcome = process(milestone(100, 2.54, 0.07), job, now=0.0)
    assert [f.kind for f in outcome.findings] == ["AttentionCollapse"]
    assert outcome.record is not None
    assert outcome.record["actions"] == [
        "reinitialize",
        "search_learning_rate",
        "enable_clipping",
        "enable_warmup",
        "lower_beta2",
    ]
    hyperparameters = outcome.spec["training"]["hyperparameters"]
    assert hyperparameters["gradientClip"] == 0.5  # already on: halved
    assert hyperparameters["warmupSteps"] == 35  # 5% of the 700 steps left
    assert [c["action"] for c in outcome.spec["commands"]] == [
        "reinitialize",
        "search_learning_rate",
    ]


def test_late_in_the_run_it_is_reported_and_nothing_is_done() -> None:
    """A fresh start needs half the run; later, no rung is safe: recommend only."""
    outcome = process(milestone(500, 2.27, 0.03), transformer_job(learningRate=0.02), now=0.0)
    assert [f.kind for f in outcome.findings] == ["AttentionCollapse"]
    assert outcome.record is None
    assert outcome.spec is None
