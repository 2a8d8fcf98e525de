"""A configuration taken up at a milestone is exported whole: a scrape never reads a
new generation with the old rates."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.trainer.conftest import MakeTrainer, tiny
from tests.trainer.test_rollback_skips import twenty_steps_past_a_checkpoint


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


def test_a_configuration_written_between_milestones_takes_effect_at_the_next_step(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    # The operator writes its change just after a milestone; taken up only at the next
    # one, every remedy started a window late (the efficacy bench with the change taken
    # up at once rescued 10 of 12 missed or costly runs, against 2 of 12).
    config = tiny("gan-ring", training={"max_steps": 300}, checkpoints={"interval": 100})
    trainer = make_trainer(config, name="live", evaluate=False)
    path = tmp_path / "live.yaml"
    changed = {**config, "generation": 2}
    changed["hyperparameters"] = {
        **config.get("hyperparameters", {}),
        "lr_d": 0.0004,
        "lr_g": -1.0,  # refused, and counted once: the file is read unchanged twice more
    }
    seen: dict[int, int] = {}  # step about to be trained -> generation in force
    milestone, train_one = trainer.milestone, trainer.train_one

    def milestone_then_operator_writes() -> None:
        milestone()
        if trainer.step == 100:
            path.write_text(yaml.safe_dump(changed))

    def noting_train_one() -> None:
        seen[trainer.step] = trainer.generation
        train_one()

    trainer.milestone = milestone_then_operator_writes  # type: ignore[method-assign]
    trainer.train_one = noting_train_one  # type: ignore[method-assign]
    trainer.run()
    assert seen[99] == 1 and seen[100] == 2 and seen[299] == 2
    assert trainer.hp["lr_d"] == 0.0004 and trainer.hp["lr_g"] == config["hyperparameters"]["lr_g"]
    assert trainer.counters["gentrain_config_rejected_total"] == {("lr_g",): 1.0}
    # Exported with the step it applies from: the window 100-200 was wholly its own, and
    # the operator judges the change on it (policy.judge).
    assert trainer.collector.live["gentrain_config_generation"] == {(): 2.0}
    assert trainer.collector.live["gentrain_config_generation_step"] == {(): 100.0}


def test_a_rollback_taken_up_at_a_milestone_is_announced_by_the_next_one(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    """The milestone at step 20 describes the window 10-20, trained under generation 1;
    a rollback to step 10 taken up there sends the run back to another timeline, whose
    first window (10-20 again) the next milestone describes. Published with the rollback's
    generation, the milestone at 20 made the operator judge the rollback on the window
    it undid — trained to NaN in fresh clone s60 — and roll back a second time."""
    config, trainer, roll_back = twenty_steps_past_a_checkpoint(make_trainer, tmp_path, "back")
    config["generation"] = 2  # the operator's patch, with its rollback
    roll_back("r1-0", 0)
    published = trainer.collector.milestone
    assert trainer.step == 10 and published["gentrain_checkpoint_step"] == {(): 20.0}
    assert published["gentrain_milestone_config_generation"] == {(): 1.0}
    assert trainer.collector.live["gentrain_config_generation"] == {(): 2.0}
    for _ in range(10):
        trainer.train_one()
    trainer.milestone()
    published = trainer.collector.milestone
    assert published["gentrain_milestone_config_generation"] == {(): 2.0}
    assert published["gentrain_milestone_config_generation_step"] == {(): 10.0}
