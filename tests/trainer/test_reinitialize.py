"""The `reinitialize` command: fresh weights and optimizer, schedules restarting with them
over the steps that remain, applied once, and kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from gentrain_trainer.families.transformer import learning_rate
from tests.trainer.conftest import MakeTrainer, tiny


def weights(trainer) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    return [p.detach().clone() for p in trainer.family.model.parameters()]


def test_reinitialize_starts_afresh_over_the_remaining_steps(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    config = tiny(
        "transformer-text",
        training={"max_steps": 40},
        checkpoints={"interval": 20, "keep": 3},
        hyperparameters={"lr": 0.002, "min_lr": 0.0002, "warmup_steps": 10},
    )
    trainer = make_trainer(config, name="fresh", evaluate=False)
    for _ in range(20):
        trainer.train_one()
    trained = weights(trainer)
    # The operator's remedy for a run that learned nothing: a tenth of the rate, afresh.
    config["hyperparameters"]["lr"] = 0.0002
    config["commands"] = [{"id": "r1-0", "action": "reinitialize"}]
    (tmp_path / "fresh.yaml").write_text(yaml.safe_dump(config))
    trainer.milestone()

    assert trainer.origin == 20
    fresh = weights(trainer)
    assert not any(torch.equal(a, b) for a, b in zip(trained, fresh, strict=True))
    assert all(not trainer.family.optimizer.state[p] for p in trainer.family.model.parameters())
    # Warm-up restarts at its first step, and the cosine now spans the 20 steps left.
    trainer.train_one()
    assert trainer.family.optimizer.param_groups[0]["lr"] == pytest.approx(
        learning_rate(0, 0.0002, 0.0002, 10, 20)
    )
    assert trainer.family.config.max_steps == 20
    # The checkpoint at step 20 holds the fresh weights, so a restart keeps them.
    restarted = make_trainer(config, name="fresh", evaluate=False)
    assert restarted.step == 20 and restarted.origin == 20
    assert all(torch.equal(a, b) for a, b in zip(fresh, weights(restarted), strict=True))

    trainer.run()  # the command is not applied a second time
    assert trainer.step == 40 and trainer.origin == 20
    applied = trainer.counters["gentrain_commands_applied_total"]
    assert applied == {("reinitialize",): 1.0}
    resumed = make_trainer(config, name="fresh", evaluate=False)
    assert resumed.step == 40 and resumed.origin == 20
    assert all(torch.equal(a, b) for a, b in zip(weights(trainer), weights(resumed), strict=True))
