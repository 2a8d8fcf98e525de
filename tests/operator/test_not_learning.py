"""NotLearning: a run whose loss stays at what a model that learned nothing scores (the
trainer exports that baseline) starts afresh — fresh weights, clipping, and a rate a short
range test picks (a tenth of it for a GAN) — while at least half the run remains; the
search's choice is written into the job. The figures are those of the efficacy zoo's runs
(bench/zoo/calibration/transformer-no-warmup.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator import policy
from gentrain_operator.diagnosis import Finding, diagnose
from gentrain_operator.milestones import process
from gentrain_operator.report import markdown
from gentrain_operator.trainer_config import FAMILY_DEFAULTS

UNIGRAM_ENTROPY = 3.261  # nats per byte of the pydoc text


def milestone(step: int, loss_last: float) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"model": loss_last + 0.05},
        "loss_last": {"model": loss_last},
        "baseline_loss": UNIGRAM_ENTROPY,
    }


@pytest.mark.parametrize(
    ("losses", "fires"),
    [
        ([3.262, 3.117], True),  # 25x the LR, no warm-up: 96% of the baseline at step 200
        ([2.832, 2.572], False),  # healthy: 79%
        ([3.0], False),  # the first window starts from random weights: judged leniently
        ([3.2], True),  # ... but not learning at all is plain there too
    ],
)
def test_a_loss_stuck_at_the_baseline_is_found(losses: list[float], fires: bool) -> None:
    history = [milestone(100 * (i + 1), loss) for i, loss in enumerate(losses)]
    kinds = [f.kind for f in diagnose(history, "transformer")]
    assert ("NotLearning" in kinds) == fires


def transformer_job(**remediation: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {
                "maxSteps": 800,
                "hyperparameters": {"learningRate": 0.05, "gradientClip": 0, "warmupSteps": 0},
            },
            "checkpoints": {"interval": 100},
            "remediation": remediation,
        },
        "status": {},
    }


def second_milestone(job: dict[str, Any]) -> Any:
    first = process(milestone(100, 3.0), job, now=0.0)
    job["status"] = first.status
    return process(milestone(200, 3.117), job, now=0.0)


def test_a_run_that_learned_nothing_starts_afresh_at_a_searched_rate() -> None:
    outcome = second_milestone(transformer_job(mode="auto"))
    assert [f.kind for f in outcome.findings] == ["NotLearning"]
    assert outcome.record is not None
    assert outcome.record["actions"] == [
        "reinitialize",
        "search_learning_rate",
        "enable_clipping",
        "enable_warmup",
        "lower_beta2",
    ]
    hyperparameters = outcome.spec["training"]["hyperparameters"]
    assert hyperparameters["learningRate"] == 0.05  # the search decides, in the trainer
    assert hyperparameters["gradientClip"] == 1.0
    assert hyperparameters["warmupSteps"] == 30  # 5% of the 600 steps left
    rid = outcome.record["id"]
    assert outcome.spec["commands"] == [
        {"id": f"{rid}-0", "action": "reinitialize"},
        # A quarter of the 100-step interval per candidate.
        {"id": f"{rid}-1", "action": "search_learning_rate", "searchSteps": 25},
    ]


def test_the_fresh_start_undoes_a_beta2_of_0999_the_spec_set() -> None:
    # The evaluation zoo's transformer-beta2-no-warmup: afresh at the searched rate with
    # beta2 0.999 ended 1.51-1.83 over four seeds, with 0.95 1.49-1.54 (healthy 1.48).
    job = transformer_job(mode="auto")
    job["spec"]["training"]["hyperparameters"]["beta2"] = 0.999
    outcome = second_milestone(job)
    assert outcome.record is not None and "lower_beta2" in outcome.record["actions"]
    assert outcome.spec["training"]["hyperparameters"]["beta2"] == 0.95
    assert {"field": "training.hyperparameters.beta2", "from": 0.999, "to": 0.95} in (
        outcome.record["changes"]
    )


def test_a_beta2_at_or_below_the_default_is_left_alone() -> None:
    outcome = second_milestone(transformer_job(mode="auto"))
    assert outcome.record is not None
    assert all(c["field"] != "training.hyperparameters.beta2" for c in outcome.record["changes"])
    assert "beta2" not in outcome.spec["training"]["hyperparameters"]


def searched(step: int, generation: int, factor: float) -> dict[str, Any]:
    """A milestone as the trainer publishes it after a search (one candidate diverged)."""
    return {
        **milestone(step, 2.9),
        "generation": generation,
        "origin_step": 200,
        "learning_rate_search": {
            "losses": {
                "1": float("inf"),
                "0.3": 3.3,
                "0.1": 3.2,
                "0.03": 3.1,
                "0.01": 3.0,
                "0.003": 3.05,
            },
            "factor": factor,
            "steps": 150,
        },
    }


def after_the_fresh_start() -> tuple[dict[str, Any], Any]:
    job = transformer_job(mode="auto")
    decided = second_milestone(job)
    job["spec"], job["status"] = decided.spec, decided.status
    job["metadata"]["generation"] = 2
    return job, decided


def test_the_searched_rate_is_written_into_the_job_and_its_record() -> None:
    job, decided = after_the_fresh_start()
    outcome = process(searched(300, 2, 0.01), job, now=0.0)
    assert outcome.spec is not None
    assert outcome.spec["training"]["hyperparameters"]["learningRate"] == 0.05 * 0.01
    assert outcome.spec["commands"] == decided.spec["commands"]  # nothing new to run
    record = outcome.status["remediations"][0]
    assert record["search"] == {
        "atStep": 300,
        "stepsTrained": 150,
        "losses": {"1": None, "0.3": 3.3, "0.1": 3.2, "0.03": 3.1, "0.01": 3.0, "0.003": 3.05},
        "factor": 0.01,
    }
    assert {"field": "training.hyperparameters.learningRate", "from": 0.05, "to": 0.05 * 0.01} in (
        record["changes"]
    )
    (message,) = [m for _, reason, m in outcome.events if reason == "LearningRateSearched"]
    assert "x1 diverged" in message and "chose x0.01: learningRate 0.05 -> 0.0005" in message
    report = markdown({**job, "spec": outcome.spec, "status": outcome.status}, None)
    assert "learning-rate search at step 300 (150 probe steps in all)" in report
    assert "x1 diverged" in report and "chose **x0.01**" in report
    # Written once: the next milestone (no search in it) changes nothing.
    job["spec"], job["status"] = outcome.spec, outcome.status
    job["metadata"]["generation"] = 3
    later = process({**milestone(400, 2.5), "generation": 3}, job, now=0.0)
    # (The rate check is due there: it adds its probe, and nothing else.)
    assert later.record is not None and later.record["actions"] == ["probe_learning_rate"]
    assert later.spec is not None and later.spec["training"] == outcome.spec["training"]


def test_a_search_the_job_has_moved_past_is_recorded_but_not_written() -> None:
    job, _ = after_the_fresh_start()
    job["metadata"]["generation"] = 3  # someone edited the job meanwhile
    outcome = process(searched(300, 2, 0.01), job, now=0.0)
    assert outcome.spec is None
    assert outcome.status["remediations"][0]["search"]["superseded"] is True


def test_a_gan_that_learns_nothing_gets_tenfold_cuts() -> None:
    job = transformer_job(mode="auto")
    job["spec"]["model"]["family"] = "gan"
    job["spec"]["training"]["hyperparameters"] = {
        "generatorLearningRate": 0.01,
        "discriminatorLearningRate": 0.01,
    }
    finding = Finding("NotLearning", "critical", "no mode covered", {"step": 1000})
    decision = policy.decide(
        [finding],
        [],
        job["spec"],
        {"step": 1000},
        FAMILY_DEFAULTS["gan"],
        {"interval": 500, "remaining_fraction": 0.8},
    )
    assert decision.plan is not None
    assert decision.plan.actions == ["reinitialize", "cut_lr", "enable_clipping"]


def test_too_late_to_start_afresh_it_is_reported_only() -> None:
    job = transformer_job(mode="auto")
    job["spec"]["training"]["maxSteps"] = 350  # at step 200, 43% of the run remains
    outcome = second_milestone(job)
    assert [f.kind for f in outcome.findings] == ["NotLearning"]
    assert outcome.record is None and outcome.spec is None


def test_a_job_can_choose_its_own_actions() -> None:
    job = transformer_job(mode="auto", rules={"NotLearning": {"actions": ["cut_lr"]}})
    outcome = second_milestone(job)
    assert outcome.record is not None and outcome.record["finding"] == "NotLearning"
    assert outcome.spec is not None
    assert outcome.spec["training"]["hyperparameters"]["learningRate"] == pytest.approx(0.005)
    assert "commands" not in outcome.spec
