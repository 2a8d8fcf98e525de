"""A hyperparameter change at a milestone can move the loss to another level (free bits
add a floor to the KL term, a KL weight scales it): the losses before it are no context
for the ones after, or every step of the next window is a "spike". Found on the
evaluation zoo's wide-latent VAE: after the operator's own free-bits change, 25 spikes
in the next window, a LossSpike burst that would have rolled its own remedy back."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.trainer.conftest import MakeTrainer, tiny


def test_a_change_of_the_losss_level_is_no_spike(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    config = tiny(
        "vae-digits", training={"max_steps": 200}, checkpoints={"interval": 60, "keep": 3}
    )
    trainer = make_trainer(config, name="level", evaluate=False)
    for _ in range(60):
        trainer.train_one()
    trainer.milestone()
    config["generation"] = 2
    config["hyperparameters"]["free_bits"] = 2.0  # 2 nats per latent unit: a higher floor
    (tmp_path / "level.yaml").write_text(yaml.safe_dump(config))
    for _ in range(60):
        trainer.train_one()
    trainer.milestone()  # takes the change up: from here the total loss sits higher
    for _ in range(60):
        trainer.train_one()
    summary = trainer.window.summary()
    assert summary["components"]["total"]["loss_spikes"] == 0
