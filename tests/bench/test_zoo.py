"""Every case of the efficacy zoo is a spec the operator renders and the trainer accepts,
healthy and broken, so that a study hours long does not fail on a typo at its last case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.efficacy import SETS, ZOO
from bench.recorder import merged
from gentrain_operator import trainer_config
from gentrain_trainer import config as trainer_config_parser

CASES = sorted(p for s in SETS for p in (ZOO / s).glob("*.yaml"))


def test_both_sets_are_there() -> None:
    calibration = [p for p in CASES if p.parent.name == "calibration"]
    evaluation = [p for p in CASES if p.parent.name == "evaluation"]
    assert len(calibration) >= 8 and len(evaluation) >= 16
    assert not {p.stem for p in calibration} & {p.stem for p in evaluation}


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_case_renders_to_configurations_the_trainer_accepts(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    assert case["quality"]["better"] in ("higher", "lower")
    for variant in ("healthy", "broken"):
        if variant not in case:
            continue
        spec = merged(case["base"], case[variant])
        family = spec["model"]["family"]
        unknown = set(spec["training"].get("hyperparameters", {})) - set(
            trainer_config.HYPERPARAMETERS[family]
        )
        assert not unknown, f"{variant}: no such {family} hyperparameter {unknown}"
        unknown = set(spec["model"].get("architecture", {})) - set(trainer_config.ARCHITECTURE)
        assert not unknown, f"{variant}: no such architecture field {unknown}"
        rendered = trainer_config.render(spec, 1)
        trainer_config_parser.parse(yaml.safe_load(yaml.safe_dump(rendered)))
