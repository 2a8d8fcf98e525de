"""WeightGrowth: weights that grew far past their initial norm in their first 100 steps at
the full rate (the trainer's `weight_growth`, per component) say the rate is too high for
the model, even where it then learns, badly, and no loss rule sees a fault. The run starts
afresh as for NotLearning: at a searched rate (a GAN's or a VAE's cut tenfold) with
clipping. The figures are the calibration zoo's (docs/diagnosis-calibration.md, session 29)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gentrain_contract import metrics
from gentrain_contract.vocabulary import FindingKind, Severity
from gentrain_operator import ladders, trainer_config
from gentrain_operator.diagnosis import diagnose
from gentrain_operator.findings import Finding
from gentrain_operator.milestones import process
from gentrain_operator.snapshot import milestone, parse


def exposition(step: int, growth: dict[str, float]) -> str:
    lines = [
        f"{metrics.CHECKPOINT_STEP.name} {step}",
        f"{metrics.MILESTONE_TIMESTAMP_SECONDS.name} {step}",
        f"{metrics.CONFIG_GENERATION.name} 1",
    ]
    lines += [
        f'{metrics.MILESTONE_WEIGHT_GROWTH.name}{{component="{c}"}} {g}' for c, g in growth.items()
    ]
    return "\n".join([*lines, ""])


def job(family: str, interval: int, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": family},
            "dataset": {"name": {"gan": "ring8", "transformer": "pydoc"}.get(family, "digits")},
            "training": {"maxSteps": 10 * interval, "hyperparameters": hyperparameters},
            "checkpoints": {"interval": interval},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }


@pytest.mark.parametrize(
    ("family", "growth", "fires"),
    [
        ("diffusion", {"denoiser": 5.57}, True),  # DDPM at 50x its rate
        ("diffusion", {"denoiser": 1.02}, False),  # its healthy reference
        ("transformer", {"model": 2.63}, True),  # 10x with warm-up: reported only
        ("custom", {"model": 2.63}, True),  # reported only
        ("transformer", {"model": 1.158}, False),  # healthy, with its warm-up
        ("transformer", {"model": 1.196}, False),  # healthy, on clean code
        ("vae", {"total": 2.52}, True),  # 20x
        ("vae", {"total": 1.053}, False),
        ("gan", {"generator": 1.14, "discriminator": 1.274}, True),  # ring at 10x: reported
        ("gan", {"generator": 1.015, "discriminator": 1.12}, False),  # minimax, strong D
        ("gan", {"generator": math.nan}, False),
        ("diffusion", {}, False),  # not measured yet, or a program that does not
    ],
)
def test_weights_grown_far_in_their_first_steps_are_found(
    family: str, growth: dict[str, float], fires: bool
) -> None:
    findings = diagnose([{"step": 150, "weight_growth": growth}], family)  # type: ignore[typeddict-item]
    found = [f for f in findings if f.kind == "WeightGrowth"]
    assert bool(found) == fires
    if fires:
        acted_on = family in ("diffusion", "vae")
        assert found[0].severity == ("warning" if acted_on else "info")
        assert found[0].evidence["growth"] == {c: g for c, g in growth.items() if g >= 1.23}


@pytest.mark.parametrize(
    ("family", "hyperparameters", "actions", "rates"),
    [
        (
            "diffusion",
            {"learningRate": 0.01, "gradientClip": 0},
            ["reinitialize", "search_learning_rate", "enable_clipping"],
            {"learningRate": 0.01},  # the trainer's search picks the rate
        ),
        (
            "vae",
            {"learningRate": 0.02},
            ["reinitialize", "cut_lr", "enable_clipping"],
            {"learningRate": 0.002},
        ),
    ],
)
def test_a_run_whose_weights_outgrew_their_scale_starts_afresh(
    family: str, hyperparameters: dict[str, Any], actions: list[str], rates: dict[str, float]
) -> None:
    component = {"vae": "total"}.get(family, "denoiser")
    record = milestone(parse(exposition(150, {component: 2.5}), 0.0))
    assert record is not None and record["weight_growth"] == {component: 2.5}
    j = job(family, 150, **hyperparameters)
    outcome = process(record, j, now=0.0)
    assert outcome.record is not None and outcome.record["finding"] == "WeightGrowth"
    assert outcome.record["actions"] == actions
    assert outcome.spec is not None
    new = outcome.spec["training"]["hyperparameters"]
    assert {name: pytest.approx(new[name]) for name in rates} == rates
    assert new["gradientClip"] == 1.0
    assert outcome.status["milestones"][-1]["weight_growth"] == {component: 2.5}  # kept


@pytest.mark.parametrize("family", ["transformer", "gan", "custom"])
def test_a_transformer_gan_or_custom_programs_growth_is_reported_not_acted_on(family: str) -> None:
    # A healthy transformer's growth rises with its rate (1.16-1.20 on the calibration
    # zoo): a fresh start at 2.5x the healthy rate, on its way to beating the healthy run,
    # grew past the threshold and was started afresh again (calibration, session 29). A
    # GAN's discriminator grows with the game too: a tenfold cut of both rates for a
    # minimax discriminator at 10x its generator's left the generator unable to learn.
    component = "discriminator" if family == "gan" else "model"
    record = milestone(parse(exposition(150, {component: 2.63}), 0.0))
    assert record is not None
    hyperparameters = {"gan": {"discriminatorLearningRate": 0.001}}.get(
        family, {"learningRate": 0.02}
    )
    outcome = process(record, job(family, 150, **hyperparameters), now=0.0)
    assert outcome.record is None and outcome.spec is None
    (finding,) = [f for f in outcome.findings if f.kind == "WeightGrowth"]
    assert finding.severity == "info" and "reported, not acted on" in finding.message
    # A figure of the run's first updates, not of this window: the checkpoint stays a
    # rollback target (the figure is exported at every milestone from then on).
    assert outcome.status["lastHealthyCheckpoint"] == 150
    assert [reason for _, reason, _ in outcome.events] == ["WeightGrowth"]
    # ... and it is announced once: at the next milestone the same figure says nothing new.
    later = milestone(parse(exposition(300, {component: 2.63}), 0.0))
    assert later is not None
    next_job = {**job(family, 150, **hyperparameters), "status": outcome.status}
    again = process(later, next_job, now=0.0)
    assert [f.kind for f in again.findings] == ["WeightGrowth"]  # still in the status
    assert "WeightGrowth" not in [reason for _, reason, _ in again.events]
    assert again.status["lastHealthyCheckpoint"] == 300


def test_growth_that_persists_after_a_fresh_start_cuts_the_rate() -> None:
    """A search that kept the rate the growth says is too high would keep it again."""
    finding = Finding(FindingKind.WEIGHT_GROWTH, Severity.WARNING, "grew", {})
    for family in ("diffusion", "vae"):
        ladder = ladders.ladder(finding, job(family, 100)["spec"])
        assert ladder is not None
        assert ladder[1] == ["reinitialize", "cut_lr"], family


@pytest.mark.parametrize(
    ("growth", "not_learning", "ceiling"),
    [
        (2.56, False, 0.1474),  # linear-schedule DDPM at 20x (evaluation zoo): x0.1 at most
        (1.47, False, 0.4894),  # DDPM at 10x (calibration zoo): x0.3 at most
        (5.57, True, 0.0503),  # DDPM at 50x: NotLearning's search is bounded too
        (1.02, True, None),  # a healthy growth bounds nothing: NotLearning's search is free
    ],
)
def test_a_search_started_where_the_weights_outgrew_their_scale_is_bounded_by_the_growth(
    growth: float, not_learning: bool, ceiling: float | None
) -> None:
    """Adam moves each weight by about the rate at every update: weights grown by g - 1
    where the threshold allows T - 1 were moved by a rate at least (g - 1)/(T - 1) times
    too high, so the fresh start's search tries no rate above (T - 1)/(g - 1)."""
    record = milestone(parse(exposition(150, {"denoiser": growth}), 0.0))
    assert record is not None
    if not_learning:  # the loss of a model that learned nothing: NotLearning comes first
        record = {**record, "loss_last": {"denoiser": 1.0}, "baseline_loss": 1.0}
    outcome = process(record, job("diffusion", 150, learningRate=0.01), now=0.0)
    assert outcome.record is not None and "search_learning_rate" in outcome.record["actions"]
    assert outcome.record["finding"] == ("NotLearning" if not_learning else "WeightGrowth")
    assert outcome.spec is not None
    (search,) = [c for c in outcome.spec["commands"] if c["action"] == "search_learning_rate"]
    if ceiling is None:
        assert "maxFactor" not in search
    else:
        assert search["maxFactor"] == pytest.approx(ceiling, abs=1e-4)
    # ... and reaches the trainer under the file's name.
    rendered = trainer_config.render(outcome.spec, 2, [], 150)["commands"]
    (command,) = [c for c in rendered if c["action"] == "search_learning_rate"]
    assert command.get("max_factor") == search.get("maxFactor")


@pytest.mark.parametrize(
    ("growth", "actions"),
    [
        # The calibration 25-mode grid at 10x, seed 5, first milestone: its discriminator
        # grew 1.277, and a gradient 703x its window's median (seed 0's).
        (
            {"discriminator": 1.277, "generator": 1.117},
            ["reinitialize", "cut_lr", "enable_clipping"],
        ),
        ({"discriminator": 1.023, "generator": 1.085}, ["enable_clipping"]),  # healthy growth
    ],
)
def test_a_gan_whose_gradients_explode_with_grown_weights_starts_afresh_at_a_tenth(
    growth: dict[str, float], actions: list[str]
) -> None:
    text = exposition(500, growth)
    text += "".join(
        f'{metric.name}{{component="{c}"}} {value}\n'
        for c, (top, median) in {"discriminator": (703.1, 0.49), "generator": (3.0, 0.2)}.items()
        for metric, value in (
            (metrics.MILESTONE_GRAD_NORM_MAX, top),
            (metrics.MILESTONE_GRAD_NORM_MEDIAN, median),
        )
    )
    record = milestone(parse(text, 0.0))
    assert record is not None
    rates = {"generatorLearningRate": 0.01, "discriminatorLearningRate": 0.01}
    outcome = process(record, job("gan", 500, **rates), now=0.0)
    assert outcome.record is not None and outcome.record["finding"] == "ExplodingGradients"
    assert outcome.record["actions"] == actions
    assert outcome.spec is not None
    new = outcome.spec["training"]["hyperparameters"]
    cut = 0.001 if "cut_lr" in actions else 0.01
    assert new["generatorLearningRate"] == pytest.approx(cut)
    assert new["discriminatorLearningRate"] == pytest.approx(cut)
