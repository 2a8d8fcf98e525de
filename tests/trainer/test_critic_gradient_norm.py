"""The critic's gradient norm a GAN reports at each milestone (the figure UnconstrainedCritic
reads): WGAN-GP's penalty holds it near 1, a critic without the penalty outgrows it, and
measuring it changes nothing in the run."""

from __future__ import annotations

import torch

from tests.trainer.conftest import MakeTrainer, tiny


def wgan(weight: float) -> dict:  # type: ignore[type-arg]
    hyperparameters = {"loss": "wgan_gp", "gp_weight": weight, "d_steps": 5, "lr_g": 1e-4}
    return tiny(
        "gan-ring",
        training={"max_steps": 300},
        checkpoints={"interval": 300},
        hyperparameters={**hyperparameters, "lr_d": 1e-4, "beta2": 0.9},
    )


def test_the_penalty_holds_the_critics_gradient_norm_near_one(make_trainer: MakeTrainer) -> None:
    norms = {}
    for weight in (10.0, 0.0):
        trainer = make_trainer(wgan(weight), name=f"penalty-{weight:g}", evaluate=False)
        trainer.run()
        norms[weight] = trainer.family.evaluate(trainer.step)["critic_gradient_norm"]
    assert 0.5 < norms[10.0] < 2.0, norms
    assert norms[0.0] > 5 * norms[10.0], norms


def test_measuring_it_changes_neither_the_weights_nor_the_figure(make_trainer: MakeTrainer) -> None:
    config = wgan(10.0)
    config["model"] = {**config["model"], "spectral_norm": True}  # its power iteration has state
    trainer = make_trainer(config, evaluate=False)
    trainer.run()
    before = {k: v.clone() for k, v in trainer.family.discriminator.state_dict().items()}
    first = trainer.family.evaluate(trainer.step)["critic_gradient_norm"]
    assert trainer.family.evaluate(trainer.step)["critic_gradient_norm"] == first
    after = trainer.family.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert trainer.family.discriminator.training, "the critic is left in training mode"
