"""The rate check: a run of a family with a held-out objective (transformer, DDPM, VAE) that
shows no finding is probed once a fifth of it is done, past its warm-up — would a tenfold
higher or lower rate do much better from here? — and once more if the first probe moved the
rate. The trainer's choice is written into the job; a probe that kept the rate changes
nothing. Never for GANs, never with remediation off or the check disabled, never so late
that a new rate could not pay off."""

from __future__ import annotations

from typing import Any

from gentrain_operator import policy
from tests.support.policy_runs import run_milestones


def job(family: str = "transformer", **overrides: Any) -> dict[str, Any]:
    hyperparameters = {"learningRate": 0.0001, "warmupSteps": 0}
    hyperparameters.update(overrides.pop("hyperparameters", {}))
    return {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": family},
            "dataset": {"name": "pydoc"},
            "training": {"maxSteps": 1000, "hyperparameters": hyperparameters},
            "checkpoints": {"interval": 100},
            "remediation": {"mode": "auto", **overrides},
        },
        "status": {},
    }


def healthy(step: int, generation: int = 1, **extra: Any) -> dict[str, Any]:
    """A milestone no rule finds anything in (a loss well below the baseline)."""
    return {
        "step": step,
        "time": float(step),
        "generation": generation,
        "nonfinite": 0,
        "loss_mean": {"model": 3.0 - step / 1000},
        "loss_last": {"model": 3.0 - step / 1000},
        "baseline_loss": 5.0,
        **extra,
    }


def probed(step: int, generation: int, factor: float) -> dict[str, Any]:
    """A milestone as the trainer publishes it after a probe."""
    return healthy(
        step,
        generation,
        learning_rate_search={
            "losses": {"10": 2.5, "1": 2.9},
            "factor": factor,
            "steps": 48,
        },
    )


def feed(job: dict[str, Any], milestones: list[dict[str, Any]]) -> list[Any]:
    return run_milestones(job, milestones)[1]


def test_a_run_is_probed_once_a_fifth_of_it_is_done() -> None:
    j = job()
    early, due = feed(j, [healthy(100), healthy(200)])
    assert early.record is None
    assert due.record is not None
    assert due.record["finding"] == policy.RATE_CHECK and due.record["severity"] == "info"
    assert due.record["actions"] == ["probe_learning_rate"]
    assert due.record["changes"] == []  # the probe decides, in the trainer
    # Routine, not a fault: a Normal event of its own, and the run stays Healthy.
    assert [(kind, reason) for kind, reason, _ in due.events] == [("Normal", policy.RATE_CHECK)]
    assert due.status["health"] == "Healthy"
    # 5% of the 1,000 steps over its two candidates.
    assert j["spec"]["commands"] == [
        {"id": "r1-0", "action": "probe_learning_rate", "searchSteps": 25}
    ]


def test_a_probe_that_keeps_the_rate_changes_nothing_and_is_not_repeated() -> None:
    j = job()
    feed(j, [healthy(100), healthy(200)])
    kept, *later = feed(j, [probed(300, 2, 1.0), healthy(400, 2), healthy(500, 2)])
    assert kept.spec is None
    assert all(o.record is None for o in later)
    (record,) = j["status"]["remediations"]
    assert record["search"]["factor"] == 1.0 and record["outcome"] == "resolved"
    assert j["spec"]["training"]["hyperparameters"]["learningRate"] == 0.0001


def test_a_probe_that_moved_the_rate_is_written_down_and_checked_once_more() -> None:
    j = job()
    feed(j, [healthy(100), healthy(200)])
    moved, again, after = feed(j, [probed(300, 2, 10.0), healthy(400, 3), probed(500, 4, 10.0)])
    assert moved.spec is not None
    assert moved.spec["training"]["hyperparameters"]["learningRate"] == 0.0001 * 10
    (message,) = [m for _, reason, m in moved.events if reason == "LearningRateSearched"]
    assert "held-out loss" in message and "chose x10" in message
    assert again.record is not None and again.record["finding"] == policy.RATE_CHECK
    assert j["spec"]["training"]["hyperparameters"]["learningRate"] == 0.0001 * 100
    # Two checks at most.
    (last,) = feed(j, [healthy(600, 5)])
    assert after.record is None and last.record is None


def test_no_check_while_warming_up() -> None:
    j = job(hyperparameters={"warmupSteps": 250})
    outcomes = feed(j, [healthy(100), healthy(200), healthy(300)])
    assert [o.record is not None for o in outcomes] == [False, False, True]


def test_no_check_for_a_gan_with_remediation_off_disabled_or_too_late() -> None:
    def checked(j: dict[str, Any], steps: list[int]) -> bool:
        return any(o.record is not None for o in feed(j, [healthy(s) for s in steps]))

    assert not checked(job("gan"), [100, 200, 300])
    assert not checked(job(mode="off"), [100, 200, 300])
    assert not checked(
        job(mode="recommend", rules={"LearningRateCheck": {"enabled": False}}), [200]
    )
    # Fewer than 30% of the steps left: a new rate would have no time to pay off.
    assert not checked(job(), [750, 850])
    # ... but a run with remediation `recommend` is told what a check would do.
    assert checked(job(mode="recommend"), [100, 200])


def test_a_users_program_is_checked_only_where_it_declares_the_probe() -> None:
    """A custom program's held-out data is its own: the check runs where it declares
    probe_learning_rate (gentrain-sdk's callbacks do: the framework's evaluation data),
    never where it declares other actions only, or nothing (the built-in trainer's way of
    saying every action, which a program that is not the built-in trainer cannot mean)."""

    def checked(declared: list[str] | None) -> bool:
        extra = {} if declared is None else {"supported_actions": declared}
        steps = [healthy(s, **extra) for s in (100, 200, 300)]
        return any(o.record is not None for o in feed(job("custom"), steps))

    assert checked(["lower_lr", "probe_learning_rate", "reinitialize"])
    assert not checked(["lower_lr", "reinitialize", "search_learning_rate"])
    assert not checked(None)


def still(step: int, growth: float = 1.001, generation: int = 1) -> dict[str, Any]:
    """A milestone of a run whose weights grew `growth` in their first 100 updates."""
    return healthy(step, generation, weight_growth={"model": growth})


def test_a_run_whose_weights_barely_moved_is_checked_at_once() -> None:
    """A rate far too low: every step before the check is a step lost, so the run is
    checked at the first milestone that shows its growth, not a fifth of the way in."""
    j = job()
    (first,) = feed(j, [still(100)])
    assert first.record is not None and first.record["finding"] == policy.RATE_CHECK
    (message,) = [m for _, reason, m in first.events if reason == policy.RATE_CHECK]
    assert "grew only 1.001x" in message
    # A run that grew as much as a healthy one waits for a fifth, as before.
    moving = job()
    assert [o.record is not None for o in feed(moving, [still(100, 1.02), still(200, 1.02)])] == [
        False,
        True,
    ]


def test_only_the_first_check_comes_early() -> None:
    """The growth is measured at the run's initial rate: once a check has moved the rate
    it says nothing of the new one, and the second check waits for a fifth."""
    j = job(hyperparameters={})
    j["spec"]["training"]["maxSteps"] = 2000
    first, *waiting, due = feed(
        j,
        [
            still(100),
            probed(200, 2, 10.0) | {"weight_growth": {"model": 1.001}},
            still(300, generation=3),
            still(400, generation=3),
        ],
    )
    assert first.record is not None
    assert [o.record for o in waiting] == [None, None]
    assert due.record is not None and due.record["finding"] == policy.RATE_CHECK


def test_no_early_check_while_warming_up_or_without_a_figure() -> None:
    warming = job(hyperparameters={"warmupSteps": 150})
    assert [o.record is not None for o in feed(warming, [still(100), still(200)])] == [False, True]
    # A program that exports no growth (one on the SDK) is checked at a fifth.
    assert feed(job(), [healthy(100)])[0].record is None
