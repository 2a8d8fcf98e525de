"""The critic's gradient norm a GAN reports at each milestone (the figure UnconstrainedCritic
reads): WGAN-GP's penalty holds it near 1, a critic without the penalty outgrows it, and
measuring it changes nothing in the run."""

from __future__ import annotations

from typing import Any

import torch

from tests.trainer.conftest import MakeTrainer, tiny


def wgan(penalty: float, **model: Any) -> dict[str, Any]:
    config = tiny(
        "gan-ring",
        training={"max_steps": 300},
        checkpoints={"interval": 100},
        hyperparameters={
            "loss": "wgan_gp",
            "gp_weight": penalty,
            "d_steps": 5,
            "lr_g": 1e-4,
            "lr_d": 1e-4,
            "beta2": 0.9,
        },
    )
    config["model"] = {**config["model"], **model}
    return config


def test_the_penalty_holds_the_critics_gradient_norm_near_one(make_trainer: MakeTrainer) -> None:
    norms = {}
    for penalty in (10.0, 0.0):
        trainer = make_trainer(wgan(penalty), name=f"penalty-{penalty:g}", evaluate=False)
        trainer.run()
        norms[penalty] = trainer.family.evaluate(trainer.step)["critic_gradient_norm"]
    assert 0.5 < norms[10.0] < 2.0, norms
    assert norms[0.0] > 5 * norms[10.0], norms


def test_measuring_it_changes_neither_the_run_nor_the_critic(make_trainer: MakeTrainer) -> None:
    # Spectral norm: its power iteration keeps state that a forward pass in training mode
    # would advance.
    config = wgan(10.0, spectral_norm=True)
    measured = make_trainer(config, name="measured", evaluate=True)  # at every milestone
    measured.run()
    unmeasured = make_trainer(config, name="unmeasured", evaluate=False)
    unmeasured.run()
    for a, b in (
        (measured.family.generator, unmeasured.family.generator),
        (measured.family.discriminator, unmeasured.family.discriminator),
    ):
        ours, theirs = a.state_dict(), b.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    critic = measured.family.discriminator
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    first = measured.family.evaluate(measured.step)["critic_gradient_norm"]
    assert measured.family.evaluate(measured.step)["critic_gradient_norm"] == first
    assert all(torch.equal(before[k], v) for k, v in critic.state_dict().items())
    assert critic.training, "the critic is left in training mode"
