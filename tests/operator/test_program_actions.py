"""A training program's own actions: the policy picks only among those it declares
(gentrain-sdk), and says so when none fits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runs import run_milestones


def custom_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "mine", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "custom"},
            "training": {"maxSteps": 600, "hyperparameters": {"learningRate": 3.0}},
            "checkpoints": {"interval": 100},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }


def not_learning(step: int, supported: list[str] | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"total": 0.6},
        "loss_last": {"total": 0.6},
        "baseline_loss": 0.5,
        **extra,
    }
    if supported is not None:
        record["supported_actions"] = supported
    return record


@pytest.mark.parametrize(
    ("supported", "actions"),
    [
        (None, ["reinitialize", "search_learning_rate", "enable_clipping"]),  # every action
        (["reinitialize", "cut_lr", "lower_lr"], ["reinitialize", "cut_lr"]),
        (["cut_lr", "lower_lr"], ["cut_lr"]),
    ],
)
def test_a_program_is_given_only_actions_it_supports(
    supported: list[str] | None, actions: list[str]
) -> None:
    _, outcomes = run_milestones(custom_job(), [not_learning(100, supported)])
    assert [f.kind for f in outcomes[0].findings] == ["NotLearning"]
    assert outcomes[0].record is not None, outcomes[0].status.get("conditions")
    assert outcomes[0].record["actions"] == actions


def test_when_no_supported_action_fits_the_operator_says_so() -> None:
    job, outcomes = run_milestones(custom_job(), [not_learning(100, ["enable_clipping"])])
    assert outcomes[0].record is None and outcomes[0].spec is None
    healthy = next(c for c in job["status"]["conditions"] if c["type"] == "Healthy")
    assert "no action for NotLearning is one the training program supports" in healthy["message"]
    assert "enable_clipping" in healthy["message"]
