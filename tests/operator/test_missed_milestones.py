"""A milestone the scrapes missed loses nothing: its NaNs and spikes reach the next one
through the trainer's since-start totals (within one trainer process)."""

from __future__ import annotations

from typing import Any

from gentrain_operator.milestones import process


def transformer_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {"maxSteps": 2000, "hyperparameters": {"learningRate": 1e-3}},
            "checkpoints": {"interval": 100},
        },
        "status": {},
    }


def milestone(
    step: int, started: float, nonfinite_total: int, spikes_total: float
) -> dict[str, Any]:
    """A healthy-looking window: what the scrape saw at this milestone."""
    return {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"model": 3.0 - step / 1000},
        "spikes": {"model": 0.0},
        "trainer_started": started,
        "nonfinite_losses_since_start": nonfinite_total,
        "spikes_since_start": {"model": spikes_total},
    }


def findings_at_third(started_again: float) -> tuple[list[str], dict[str, Any]]:
    job = transformer_job()
    first = process(milestone(100, 1000.0, 0, 0.0), job, now=0.0)
    job["status"] = first.status
    # Milestone 200 had 4 NaN losses and 3 spikes, but no scrape saw it.
    third = process(milestone(300, started_again, 4, 3.0), job, now=0.0)
    return [f.kind for f in third.findings], third.status["milestones"][-1]


def test_nans_and_spikes_of_a_missed_milestone_count_at_the_next() -> None:
    kinds, kept = findings_at_third(started_again=1000.0)
    assert "NonFiniteLoss" in kinds
    assert kept["nonfinite"] == 4 and kept["spikes"] == {"model": 3.0}


def test_a_restarted_trainer_s_totals_are_not_taken_as_a_difference() -> None:
    # A new process (another start time) counts from zero: its totals say nothing about
    # the windows between, and the window's own figures stand.
    kinds, kept = findings_at_third(started_again=2000.0)
    assert "NonFiniteLoss" not in kinds
    assert kept["nonfinite"] == 0 and kept["spikes"] == {"model": 0.0}
