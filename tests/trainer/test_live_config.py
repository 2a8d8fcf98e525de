"""A configuration taken up at a milestone is exported whole: a scrape never reads a
new generation with the old rates."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.trainer.conftest import MakeTrainer, tiny


def test_the_milestone_that_takes_up_a_configuration_exports_its_hyperparameters(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    # Seen on a loaded machine (tests/trainer/test_process.py): a scrape between the
    # milestone and the next live update read generation 2 with generation 1's rates.
    config = tiny("gan-ring", training={"max_steps": 400}, checkpoints={"interval": 100})
    trainer = make_trainer(config, name="hot", evaluate=False)
    for _ in range(5):
        trainer.train_one()
    changed = {**config, "generation": 2}
    changed["hyperparameters"] = {
        **config.get("hyperparameters", {}),
        "lr_d": 0.0004,
        "loss": "hinge",
    }
    (tmp_path / "hot.yaml").write_text(yaml.safe_dump(changed))
    trainer.milestone()
    live = trainer.collector.live
    assert live["gentrain_config_generation"] == {(): 2.0}
    assert live["gentrain_hyperparameter"][("lr_d",)] == 0.0004
    assert ("loss", "hinge") in live["gentrain_hyperparameter_info"]
