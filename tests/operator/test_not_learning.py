"""NotLearning: a run whose loss stays at what a model that learned nothing scores (the
trainer exports that baseline) starts afresh — fresh weights at a tenth of the rate, with
clipping — while at least half the run remains. The figures are those of the efficacy
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


def test_a_run_that_learned_nothing_starts_afresh_at_a_tenth_of_the_rate() -> None:
    outcome = second_milestone(transformer_job(mode="auto"))
    assert [f.kind for f in outcome.findings] == ["NotLearning"]
    assert outcome.record is not None
    assert outcome.record["actions"] == ["reinitialize", "cut_lr", "enable_clipping"]
    hyperparameters = outcome.spec["training"]["hyperparameters"]
    assert hyperparameters["learningRate"] == pytest.approx(0.005)
    assert hyperparameters["gradientClip"] == 1.0
    assert outcome.spec["commands"] == [
        {"id": outcome.record["id"] + "-0", "action": "reinitialize"}
    ]


def test_too_late_to_start_afresh_it_is_reported_only() -> None:
    job = transformer_job(mode="auto")
    job["spec"]["training"]["maxSteps"] = 350  # at step 200, 43% of the run remains
    outcome = second_milestone(job)
    assert [f.kind for f in outcome.findings] == ["NotLearning"]
    assert outcome.record is None and outcome.spec is None


def test_a_job_can_choose_its_own_actions() -> None:
    job = transformer_job(mode="auto", rules={"NotLearning": {"actions": ["cut_lr"]}})
    outcome = second_milestone(job)
    assert outcome.record is not None and outcome.record["finding"] == "NotLearning"
    assert outcome.spec is not None
    assert outcome.spec["training"]["hyperparameters"]["learningRate"] == pytest.approx(0.005)
    assert "commands" not in outcome.spec
