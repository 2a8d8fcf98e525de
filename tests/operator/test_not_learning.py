"""NotLearning: a run whose loss stays at what a model that learned nothing scores (the
trainer exports that baseline) is reported; it is acted on only where the job opts in
(the default ladder is empty: see policy.LADDERS). The figures are those of the efficacy
zoo's runs (bench/zoo/transformer-no-warmup.yaml)."""

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
        ([3.0], False),  # the first window starts from random weights: judged leniently
        ([3.2], True),  # ... but not learning at all is plain there too
    ],
)
def test_a_loss_stuck_at_the_baseline_is_found(losses: list[float], fires: bool) -> None:
    history = [milestone(100 * (i + 1), loss) for i, loss in enumerate(losses)]
    kinds = [f.kind for f in diagnose(history, "transformer")]
    assert ("NotLearning" in kinds) == fires


def transformer_job(**remediation: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {
                "maxSteps": 800,
                "hyperparameters": {"learningRate": 0.05, "gradientClip": 0},
            },
            "checkpoints": {"interval": 100},
            "remediation": remediation,
        },
        "status": {},
    }


def second_milestone(job: dict[str, Any]) -> Any:
    first = process(milestone(100, 3.0), job, now=0.0)
    job["status"] = first.status
    return process(milestone(200, 3.117), job, now=0.0)


def test_not_learning_is_reported_but_not_acted_on_by_default() -> None:
    outcome = second_milestone(transformer_job(mode="auto"))
    assert [f.kind for f in outcome.findings] == ["NotLearning"]
    assert outcome.status["health"] == "Unhealthy"
    assert outcome.record is None and outcome.spec is None


def test_a_job_can_opt_in_to_a_learning_rate_cut() -> None:
    job = transformer_job(mode="auto", rules={"NotLearning": {"actions": ["cut_lr"]}})
    outcome = second_milestone(job)
    assert outcome.record is not None and outcome.record["finding"] == "NotLearning"
    assert outcome.spec is not None
    assert outcome.spec["training"]["hyperparameters"]["learningRate"] == pytest.approx(0.005)
