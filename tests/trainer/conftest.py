"""Helpers for trainer tests: configs written to a temporary directory, in-process runs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_trainer.loop import Options, Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "trainer_image" / "gentrain_trainer" / "configs"


def tiny(name: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


MakeTrainer = Callable[..., Trainer]


@pytest.fixture
def make_trainer(tmp_path: Path) -> MakeTrainer:
    def make(
        config: dict[str, Any], name: str = "run", evaluate: bool = True, resume: str = "auto"
    ) -> Trainer:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        trainer = Trainer(
            Options(path, tmp_path / name, metrics_port=0, resume=resume, evaluate=evaluate)
        )
        trainer.resume()
        return trainer

    return make


def commanded_after_twenty_steps(
    make_trainer: MakeTrainer, tmp_path: Path, config: dict[str, Any], commands: list[Any]
) -> tuple[dict[str, Any], Trainer]:
    """A run of `config` 20 steps in, given `commands` by the operator (generation 2) at its
    next milestone: its configuration as written, and the trainer after that milestone."""
    config = {**config, "generation": 1}
    trainer = make_trainer(config, evaluate=False)
    for _ in range(20):
        trainer.train_one()
    config = {**config, "generation": 2, "commands": commands}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    trainer.milestone()
    return config, trainer
