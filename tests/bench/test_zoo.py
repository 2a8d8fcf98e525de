"""Every case of the efficacy zoo is a spec the operator renders and the trainer accepts,
healthy and broken, so that a study hours long does not fail on a typo at its last case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import corpus, weight_growth
from bench.efficacy import SETS, ZOO, corpora
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
def test_a_case_renders_to_configurations_the_trainer_accepts(path: Path, tmp_path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    assert case["quality"]["better"] in ("higher", "lower")
    data = dict(zip(("healthy", "broken"), corpora(case, tmp_path), strict=True))
    for variant in ("healthy", "broken"):
        if variant not in case:
            continue
        spec = merged(merged(case["base"], data[variant]), case[variant])
        family = spec["model"]["family"]
        unknown = set(spec["training"].get("hyperparameters", {})) - set(
            trainer_config.HYPERPARAMETERS[family]
        )
        assert not unknown, f"{variant}: no such {family} hyperparameter {unknown}"
        unknown = set(spec["model"].get("architecture", {})) - set(trainer_config.ARCHITECTURE)
        assert not unknown, f"{variant}: no such architecture field {unknown}"
        rendered = trainer_config.render(spec, 1)
        trainer_config_parser.parse(yaml.safe_load(yaml.safe_dump(rendered)))


def test_a_corrupt_corpus_differs_from_the_clean_one_only_in_its_stretches(tmp_path: Path) -> None:
    spec = {"source": "pydoc", "corrupt": [{"at": 0.2, "bytes": 1000, "count": 3, "every": 0.1}]}
    clean = corpus.write(spec, tmp_path, clean=True).read_bytes()
    broken = corpus.write(spec, tmp_path, clean=False).read_bytes()
    assert len(clean) == len(broken)
    differ = [i for i, (a, b) in enumerate(zip(clean, broken, strict=True)) if a != b]
    starts = [int(f * len(clean)) for f in (0.2, 0.3, 0.4)]
    assert all(any(s <= i < s + 1000 for s in starts) for i in differ)
    assert len(differ) > 2900  # random garbage rarely matches the text it overwrites
    # The validation part (the last 10%) is the same text in both.
    assert clean[int(0.9 * len(clean)) :] == broken[int(0.9 * len(broken)) :]


def test_a_stretch_in_the_validation_part_is_refused(tmp_path: Path) -> None:
    spec = {"source": "pydoc", "corrupt": [{"at": 0.89, "bytes": 50000}]}
    with pytest.raises(ValueError, match=r"corpus\.corrupt: the stretch at 0\.89 runs into"):
        corpus.write(spec, tmp_path, clean=False)


def test_the_weight_growth_table_measures_a_case_as_the_trainer_does() -> None:
    """bench.weight_growth stops each run once the trainer has measured the figure: the
    calibration VAE at 20x its rate grows far more than its healthy reference."""
    case = yaml.safe_load((ZOO / "calibration" / "vae-rate-20x-too-high.yaml").read_text())
    figures = {
        variant: weight_growth.growth(
            merged(case["base"], {**case[variant], "remediation": {"mode": "off"}})
        )
        for variant in ("healthy", "broken")
    }
    assert list(figures["healthy"]) == ["total"]
    healthy, broken = figures["healthy"]["total"], figures["broken"]["total"]
    assert broken - 1 > 10 * (healthy - 1) > 0
