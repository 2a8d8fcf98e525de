"""A WGAN critic without a working penalty (issue 12: "a remedy should reverse the cause
where the cause is in the spec"): found by the critic's own gradient norm, which the
penalty holds near 1, and undone by restoring the penalty; never read under a loss whose
critic no penalty binds."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator.diagnosis import THRESHOLDS, diagnose
from gentrain_operator.milestones import process
from tests.support.policy_runs import gan_job, ring


def wgan_job(penalty: float) -> dict[str, Any]:
    job = gan_job()
    job["spec"]["training"]["hyperparameters"] = {
        "ganLoss": "wgan_gp",
        "gradientPenaltyWeight": penalty,
        "discriminatorSteps": 5,
        "generatorLearningRate": 1e-4,
        "discriminatorLearningRate": 1e-4,
    }
    return job


def critic(step: int, norm: float, loss: str = "wgan_gp", penalty: float = 0.0) -> dict[str, Any]:
    return ring(
        step,
        0,
        high_quality_ratio=0.0,
        critic_gradient_norm=norm,
        gan_loss=loss,
        gradient_penalty_weight=penalty,
    )


@pytest.mark.parametrize(
    ("norm", "loss", "found"),
    [
        (THRESHOLDS["critic_gradient_norm"] * 3, "wgan_gp", True),
        (1.1, "wgan_gp", False),  # what the penalty holds it to
        (THRESHOLDS["critic_gradient_norm"] * 3, "non_saturating", False),  # no bound to keep
        (float("nan"), "wgan_gp", False),
    ],
)
def test_an_unconstrained_critic_is_found_by_its_gradient_norm_under_wgan_only(
    norm: float, loss: str, found: bool
) -> None:
    kinds = [f.kind for f in diagnose([critic(500, norm, loss)], "gan")]
    assert ("UnconstrainedCritic" in kinds) == found


def test_early_in_the_run_it_starts_afresh_with_the_penalty_restored() -> None:
    outcome = process(critic(500, 50.0), wgan_job(penalty=0.0), now=0.0)
    assert outcome.record is not None
    assert outcome.record["finding"] == "UnconstrainedCritic"
    assert outcome.record["actions"] == ["reinitialize", "enable_gradient_penalty"]
    assert outcome.spec["training"]["hyperparameters"]["gradientPenaltyWeight"] == 10.0
    assert outcome.spec["training"]["hyperparameters"]["ganLoss"] == "wgan_gp"
    assert [c["action"] for c in outcome.spec["commands"]] == ["reinitialize"]


def test_late_in_the_run_the_penalty_is_restored_in_place() -> None:
    outcome = process(critic(3000, 50.0, penalty=0.1), wgan_job(penalty=0.1), now=0.0)
    assert outcome.record is not None
    assert outcome.record["actions"] == ["enable_gradient_penalty"]
    assert outcome.spec["training"]["hyperparameters"]["gradientPenaltyWeight"] == 10.0
    assert "commands" not in outcome.spec


def test_with_the_penalty_already_at_its_weight_nothing_is_changed_blindly() -> None:
    """The critic unconstrained for another cause: no action of the ladder applies, so the
    finding is reported and nothing is patched."""
    outcome = process(critic(500, 50.0, penalty=10.0), wgan_job(penalty=10.0), now=0.0)
    assert outcome.spec is None
    assert "UnconstrainedCritic" in [f["kind"] for f in outcome.status["findings"]]
