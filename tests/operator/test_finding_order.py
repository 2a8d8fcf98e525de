"""Which of a milestone's findings is acted on first (ladders.PRIORITY, ladders.ordered):
where a GAN's discriminator wins outright and its gradients read as an explosion, the
cause is acted on, not the symptom."""

from __future__ import annotations

from typing import Any

from gentrain_operator import policy
from gentrain_operator.diagnosis import diagnose
from gentrain_operator.trainer_config import FAMILY_DEFAULTS
from tests.support.policy_runs import gan_job


def test_a_discriminator_that_wins_outright_is_remedied_before_the_gradients_it_starves() -> None:
    # The evaluation zoo's image GAN (saturating loss, discriminator at 10x the generator's
    # rate), seed 0, its first milestone: the discriminator is right 98.7% of the time, so
    # its typical gradient has all but vanished (median 0.41 against 1.1 in the healthy
    # run) and the largest one in the window is 150x that median — read as exploding
    # gradients, clipped, and the discriminator's finding was gone before its turn came.
    first = {
        "step": 300,
        "time": 300.0,
        "generation": 4,
        "nonfinite": 0,
        "discriminator_accuracy_ratio": 0.987,
        "d_real": 5.66,
        "d_fake": -6.96,
        "grad_norm_max": {"discriminator": 61.2, "generator": 29.7},
        "grad_norm_median": {"discriminator": 0.407, "generator": 0.666},
        "fid": 828.0,
    }
    findings = diagnose([first], "gan")
    assert {"ExplodingGradients", "DiscriminatorOverpowering"} <= {f.kind for f in findings}
    spec = gan_job()["spec"]
    spec["dataset"] = {"name": "digits"}
    decision = policy.decide(
        findings,
        [],
        spec,
        first,
        FAMILY_DEFAULTS["gan"],
        {"last_healthy_checkpoint": None, "interval": 300, "remaining_fraction": 0.8},
    )
    assert decision.plan is not None
    assert decision.plan.finding.kind == "DiscriminatorOverpowering"
    assert decision.plan.actions == ["reinitialize", "switch_gan_loss", "balance_learning_rates"]


def test_rates_too_high_for_both_players_are_cut_before_the_discriminator_is_slowed() -> None:
    """A GAN whose rates are both far too high: its first milestone shows an explosion
    with weights grown past their initial scale, and a discriminator right 95% of the
    time. With nothing in the spec tilting the game (the same rate for both players, the
    non-saturating loss, one discriminator step), the overpowering ladder could only slow
    the discriminator and leave the rate in force: the explosion's ladder comes first,
    afresh at a tenth. The same milestone under a tilted spec (minimax, the discriminator
    at 10x, five discriminator steps) is still the discriminator's. Measured: the
    evaluation 25-mode grid at 20x, seed 3, step 800 (`python -m bench.trace evaluation
    gan-grid25-learning-rate-too-high --seed 3`), which prompted the order — an evaluation
    case, said so."""
    first = {
        "step": 800,
        "time": 800.0,
        "generation": 1,
        "nonfinite": 0,
        "modes_covered": 1.0,
        "modes": 25.0,
        "discriminator_accuracy_ratio": 0.9515,
        "grad_norm_max": {"discriminator": 222.1, "generator": 82.99},
        "grad_norm_median": {"discriminator": 0.6528, "generator": 3.477},
        "weight_growth": {"discriminator": 2.367, "generator": 1.114},
    }
    findings = diagnose([first], "gan")
    assert {"ExplodingGradients", "DiscriminatorOverpowering"} <= {f.kind for f in findings}
    context = {"last_healthy_checkpoint": None, "interval": 800, "remaining_fraction": 0.9}

    def decided(hyperparameters: dict[str, Any]) -> Any:
        spec = gan_job()["spec"]
        spec["dataset"] = {"name": "grid25"}
        spec["training"]["hyperparameters"] = hyperparameters
        decision = policy.decide(findings, [], spec, first, FAMILY_DEFAULTS["gan"], context)
        assert decision.plan is not None
        return decision.plan

    balanced = {"generatorLearningRate": 0.02, "discriminatorLearningRate": 0.02}
    plan = decided(balanced)
    assert plan.finding.kind == "ExplodingGradients"
    assert plan.actions == ["reinitialize", "cut_lr", "enable_clipping"]
    for tilt in (
        {"ganLoss": "minimax"},
        {"discriminatorLearningRate": 0.2},
        {"discriminatorSteps": 5},
    ):
        assert decided({**balanced, **tilt}).finding.kind == "DiscriminatorOverpowering", tilt
    # A WGAN critic without its penalty is still acted on before either.
    critic = {**first, "gan_loss": "wgan_gp", "critic_gradient_norm": 500.0}
    findings = diagnose([critic], "gan")
    assert {"UnconstrainedCritic", "ExplodingGradients"} <= {f.kind for f in findings}
    spec = gan_job()["spec"]
    spec["training"]["hyperparameters"] = {
        **balanced,
        "ganLoss": "wgan_gp",
        "discriminatorSteps": 5,
        "gradientPenaltyWeight": 0.0,
    }
    decision = policy.decide(findings, [], spec, critic, FAMILY_DEFAULTS["gan"], context)
    assert decision.plan is not None
    assert decision.plan.finding.kind == "UnconstrainedCritic"
