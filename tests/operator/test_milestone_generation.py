"""A milestone is read with the configuration generation in force when it was published,
not with one the trainer took up since, between milestones.

Found by a fresh clone (s58): a milestone whose window held NaNs (step 1200, generation 1)
was read again after a 409 Conflict, once the trainer had taken up the operator's rollback
(generation 2, applying from step 400). Read with the live generation, the rollback looked
taken up at 1200, was judged on the NaN window before it, and a second rollback followed."""

from __future__ import annotations

from gentrain_contract import metrics
from gentrain_operator.milestones import process
from gentrain_operator.snapshot import milestone, parse
from gentrain_sdk.exporter import milestone_series
from gentrain_sdk.window import SinceStart, Window
from tests.support.policy_runs import gan_job


def exposition(*, published: tuple[int, int] | None) -> str:
    lines = [
        f"{metrics.CHECKPOINT_STEP.name} 1200",
        f"{metrics.MILESTONE_TIMESTAMP_SECONDS.name} 1200",
        f"{metrics.MILESTONE_NONFINITE_LOSSES.name} 200",
        # Taken up after the milestone: the rollback to step 400.
        f"{metrics.CONFIG_GENERATION.name} 2",
        f"{metrics.CONFIG_GENERATION_STEP.name} 400",
    ]
    if published is not None:
        lines += [
            f"{metrics.MILESTONE_CONFIG_GENERATION.name} {published[0]}",
            f"{metrics.MILESTONE_CONFIG_GENERATION_STEP.name} {published[1]}",
        ]
    return "\n".join([*lines, ""])


def test_a_milestone_is_read_with_the_generation_it_was_published_under() -> None:
    record = milestone(parse(exposition(published=(1, 0)), 0.0))
    assert record is not None
    assert (record["generation"], record.get("generation_step")) == (1, 0)
    # A program that does not say (the SDK's take changes up at milestones): the live one.
    record = milestone(parse(exposition(published=None), 0.0))
    assert record is not None and record["generation"] == 2


def test_a_rollback_taken_up_after_a_milestone_is_not_judged_on_it() -> None:
    job = gan_job()
    job["metadata"]["generation"] = 2
    job["status"] = {
        "remediations": [
            {
                "id": "r1",
                "finding": "NonFiniteLoss",
                "rung": 0,
                "step": 800,
                "generation": 2,
                "actions": ["rollback", "lower_lr", "enable_clipping"],
                "changes": [],
                "outcome": "pending",
            }
        ]
    }
    record = milestone(parse(exposition(published=(1, 0)), 0.0))
    assert record is not None
    outcome = process(record, job, now=0.0)
    assert outcome.record is None and outcome.spec is None  # no second rollback
    (r1,) = outcome.status["remediations"]
    assert r1["outcome"] == "pending" and "appliedAtStep" not in r1


def test_the_trainer_publishes_the_generation_with_its_milestone() -> None:
    series = milestone_series(1200, 0.0, Window().summary(), {}, SinceStart(), generation=(3, 1100))
    assert series[metrics.MILESTONE_CONFIG_GENERATION.name] == {(): 3.0}
    assert series[metrics.MILESTONE_CONFIG_GENERATION_STEP.name] == {(): 1100.0}
