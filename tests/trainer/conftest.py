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
