"""A rollback that skips batches never reads again a batch read since its checkpoint —
PaLM's remedy, however many rollbacks to that checkpoint came before. The operator asks
to skip the steps since the checkpoint; after an earlier rollback that skipped, the
data had moved further than the steps had, and the second rollback re-read the bad
stretch the first had skipped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gentrain_trainer.loop import Trainer
from tests.trainer.conftest import MakeTrainer, tiny


def twenty_steps_past_a_checkpoint(
    make_trainer: MakeTrainer, tmp_path: Path, name: str
) -> tuple[dict[str, Any], Trainer, Callable[[str, int], None]]:
    """A trainer at step 20 whose last checkpoint is at 10 (data index 10), and a way to
    roll back to it at the next milestone, skipping a number of batches."""
    config = tiny(
        "transformer-text", training={"max_steps": 60}, checkpoints={"interval": 10, "keep": 5}
    )
    trainer = make_trainer(config, name=name, evaluate=False)
    for _ in range(10):
        trainer.train_one()
    trainer.milestone()
    for _ in range(10):
        trainer.train_one()

    def roll_back(command_id: str, skip: int) -> None:
        config["commands"] = [
            {"id": command_id, "action": "rollback", "step": 10, "skip_batches": skip}
        ]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        trainer.milestone()

    return config, trainer, roll_back


def test_a_second_rollback_to_a_checkpoint_does_not_read_skipped_data_again(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    _, trainer, roll_back = twenty_steps_past_a_checkpoint(make_trainer, tmp_path, "skips")
    roll_back("rb-1", 10)  # step 20 - 10: the batches since the checkpoint
    assert (trainer.step, trainer.data_index) == (10, 20)
    for _ in range(10):
        trainer.train_one()  # data 20-29: still bad, say
    roll_back("rb-2", 10)  # again step 20 - 10; but data 10-29 were read
    assert (trainer.step, trainer.data_index) == (10, 30)


def test_a_plain_rollback_replays_the_same_batches(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    _, trainer, roll_back = twenty_steps_past_a_checkpoint(make_trainer, tmp_path, "replay")
    roll_back("rb-1", 0)
    assert (trainer.step, trainer.data_index) == (10, 10)
