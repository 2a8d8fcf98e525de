"""A gradient spike the clip in force held: the step the optimiser took was the clipped
gradient, so a spike the clip kept within the explosion ratio of the window's median moved
the weights no further than an ordinary step; halving the clip treats nothing. Reported,
acted on only when the next window explodes too. The clip is read from what the trainer
exports as in force (the built-in trainer's `grad_clip`, a program's `gradientClip`) and
kept in status: the history the diagnosis reads after a restart has no hyperparameters.

The figures are the evaluation zoo's healthy transformer (corrupt documentation), seed 2,
at its first milestone: a 151x spike at step 30 of its warm-up, clip 1.0, median 1.18."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_contract import metrics
from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process
from gentrain_operator.snapshot import milestone, parse
from tests.operator import test_not_learning as not_learning


def exposition(step: int, largest: float, clip_name: str, clip: float) -> str:
    return "\n".join(
        [
            f"{metrics.CHECKPOINT_STEP.name} {step}",
            f"{metrics.MILESTONE_TIMESTAMP_SECONDS.name} {step}",
            f"{metrics.CONFIG_GENERATION.name} 1",
            f'{metrics.MILESTONE_GRAD_NORM_MAX.name}{{component="model"}} {largest}',
            f'{metrics.MILESTONE_GRAD_NORM_MEDIAN.name}{{component="model"}} 1.18',
            f'{metrics.HYPERPARAMETER.name}{{name="{clip_name}"}} {clip}',
            "",
        ]
    )


def transformer_job() -> dict[str, Any]:
    """The evaluation zoo's healthy transformer settings: a warm-up and clip 1.0."""
    job = not_learning.transformer_job(mode="auto")
    job["spec"]["training"]["hyperparameters"] = {
        "learningRate": 0.003,
        "warmupSteps": 40,
        "gradientClip": 1.0,
    }
    return job


@pytest.mark.parametrize("clip_name", ["grad_clip", "gradientClip"])
def test_a_spike_the_clip_held_draws_no_action(clip_name: str) -> None:
    record = milestone(parse(exposition(100, 151.2, clip_name, 1.0), 0.0))
    assert record is not None and record["grad_clip"] == 1.0
    outcome = process(record, transformer_job(), now=0.0)
    [spike] = [f for f in outcome.findings if f.kind == "ExplodingGradients"]
    assert spike.severity == "info" and spike.evidence["bounded"]
    assert outcome.record is None or outcome.record["finding"] != "ExplodingGradients"
    assert outcome.status["milestones"][-1]["grad_clip"] == 1.0  # kept for a restart


def test_a_spike_that_recurs_is_acted_on() -> None:
    job = transformer_job()
    first = milestone(parse(exposition(100, 151.2, "grad_clip", 1.0), 0.0))
    assert first is not None
    job["status"] = process(first, job, now=0.0).status
    again = milestone(parse(exposition(200, 140.0, "grad_clip", 1.0), 1.0))
    assert again is not None
    outcome = process(again, job, now=1.0)
    assert outcome.record is not None and outcome.record["finding"] == "ExplodingGradients"


def test_without_a_clip_the_whole_spike_reached_the_weights() -> None:
    record = milestone(parse(exposition(100, 151.2, "grad_clip", 0.0), 0.0))
    assert record is not None
    outcome = process(record, transformer_job(), now=0.0)
    assert outcome.record is not None and outcome.record["finding"] == "ExplodingGradients"


@pytest.mark.parametrize(("origin", "acted"), [(0, True), (800, False)])
def test_a_spike_before_a_fresh_start_does_not_make_the_next_one_recur(
    origin: int, acted: bool
) -> None:
    """The window before a fresh start exploded on the weights the start threw away; the
    new weights' first held spike is theirs alone (a 25-mode GAN restarted at 800)."""
    before = {
        "step": 800,
        "grad_norm_max": {"discriminator": 703.1},
        "grad_norm_median": {"discriminator": 0.49},
        "grad_clip": 0.0,
    }
    after = {
        "step": 1600,
        "origin_step": origin,
        "grad_norm_max": {"discriminator": 210.0},
        "grad_norm_median": {"discriminator": 0.3},
        "grad_clip": 1.0,
    }
    [spike] = [f for f in diagnose([before, after], "gan") if f.kind == "ExplodingGradients"]
    assert spike.evidence["bounded"]
    assert spike.severity == ("warning" if acted else "info")
