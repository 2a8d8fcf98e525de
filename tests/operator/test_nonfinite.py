"""A diverging run overflows its figures: +Inf and NaN in what the trainer exports must
not stop its milestone reaching status (JSON has neither: the API server refuses a body
carrying `Infinity`, and the operator retried the same milestone for ever)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from gentrain_operator import snapshot
from gentrain_operator.json_values import json_safe
from gentrain_operator.milestones import process
from gentrain_operator.snapshot import milestone, parse
from tests.support.expositions import gan_first_milestone

# These identify the milestone: they stay as the trainer sent them (but see below).
KEPT = (*snapshot.IDENTITY, "process_start_time_seconds")
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})? (?P<value>\S+)$")


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What a real GAN trainer serves at its first milestone."""
    return gan_first_milestone(tmp_path_factory.mktemp("gan"))


def overflowed(text: str, identity_too: bool = False) -> str:
    """Every sample of every family turned into +Inf, -Inf or NaN, in turn."""
    lines, values = [], ["+Inf", "NaN", "-Inf"]
    for i, line in enumerate(text.splitlines()):
        match = SAMPLE.match(line)
        if match and (identity_too or match["name"] not in KEPT):
            line = f"{match['name']}{match['labels'] or ''} {values[i % 3]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def gan_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "n", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {
                "maxSteps": 2000,
                "hyperparameters": {
                    "generatorLearningRate": 1e-3,
                    "discriminatorLearningRate": 1e-3,
                },
            },
            "checkpoints": {"interval": 20},
        },
        "status": {},
    }


def test_a_milestone_whose_figures_overflowed_reaches_status_as_json(exposition: str) -> None:
    record = milestone(parse(overflowed(exposition), 0.0))
    assert record is not None and record["step"] == 20
    assert "grad_norm_max/generator" in record["nonfinite_figures"]
    job = gan_job()
    outcome = process(record, job, now=0.0)
    json.dumps(outcome.status, allow_nan=False)  # raises on NaN or Infinity
    json.dumps(outcome.spec, allow_nan=False)
    # The fact is kept: an overflowed gradient norm explodes, in status and after a restart.
    assert "ExplodingGradients" in {f.kind for f in outcome.findings}
    job["status"] = json.loads(json.dumps(outcome.status))
    assert job["status"]["milestones"][-1]["nonfinite_figures"] == record["nonfinite_figures"]
    again = process({**record, "step": 40, "time": 1.0}, job, now=1.0)
    json.dumps(again.status, allow_nan=False)


def test_a_milestone_that_cannot_be_told_apart_is_no_milestone(exposition: str) -> None:
    # A step or timestamp that is not a number identifies nothing: no record, no crash.
    assert milestone(parse(overflowed(exposition, identity_too=True), 0.0)) is None


def test_the_last_guard_writes_null_for_what_slipped_through() -> None:
    body = {"a": math.inf, "b": [1.0, math.nan, {"c": -math.inf}], "d": "x", "e": 2}
    assert json_safe(body) == {"a": None, "b": [1.0, None, {"c": None}], "d": "x", "e": 2}
