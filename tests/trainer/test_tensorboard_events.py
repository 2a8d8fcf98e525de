"""The built-in trainer writes the run's history as TensorBoard event files beside its
checkpoints — each milestone's figures, each configuration change and each command —
read back here by TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gentrain_sdk import tensorboard
from tests.trainer.conftest import MakeTrainer, tiny

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_milestones_a_change_and_a_command_are_in_the_event_files(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    config = tiny("gan-ring", training={"max_steps": 200}, checkpoints={"interval": 100})
    trainer = make_trainer(config, evaluate=False)
    trainer.run()  # to 200
    # The operator's remediation: a lower rate and a rollback, taken up at the next milestone.
    rate = float(trainer.hp["lr_d"])
    config["generation"] = 2
    config["training"]["max_steps"] = 300
    config["hyperparameters"] = {**config.get("hyperparameters", {}), "lr_d": rate / 2}
    config["commands"] = [{"id": "rb-1", "action": "rollback", "step": 100}]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    trainer.max_steps = 300
    trainer.run()
    assert trainer.events is not None
    trainer.events.close()

    read = event_accumulator.EventAccumulator(str(tmp_path / "run" / tensorboard.DIRECTORY))
    read.Reload()
    steps = [e.step for e in read.Scalars("loss_mean/discriminator")]
    assert steps[:2] == [100, 200] and steps[-1] == 300, steps
    assert [e.step for e in read.Scalars("hyperparameter/lr_d")][-1] >= 200
    said = [
        t.tensor_proto.string_val[0].decode() for t in read.Tensors("configuration/text_summary")
    ]
    assert any(s.startswith("generation 2: lr_d ") for s in said), said
    commands = [
        t.tensor_proto.string_val[0].decode() for t in read.Tensors("commands/text_summary")
    ]
    assert commands == ["rb-1 (rollback): applied"], commands
