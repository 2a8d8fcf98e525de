"""The `probe_learning_rate` command (the rate check): from the run's own weights, the rates
in force and ten times them (a hundred times too where ten times wins) each train a few
steps and are judged on held-out data; another rate is taken only if it wins clearly, and
the run is left as it was. A run whose rate is far too low is moved up from its own
weights, without a fresh start."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from gentrain_sdk import rate_search
from gentrain_trainer import learning_rate_search
from gentrain_trainer.families.transformer import learning_rate
from tests.trainer.conftest import MakeTrainer, commanded_after_twenty_steps, tiny

FAR_TOO_LOW = 0.00002  # a hundredth of the config's healthy 0.002


def transformer(**hyperparameters: Any) -> dict[str, Any]:
    return tiny(
        "transformer-text",
        model={"width": 64, "layers": 2, "heads": 4},
        training={"max_steps": 80},
        checkpoints={"interval": 20, "keep": 5},
        hyperparameters={"lr": 0.002, "warmup_steps": 0, "grad_clip": 1.0, **hyperparameters},
    )


@pytest.mark.parametrize(
    ("losses", "chosen"),
    [
        ({10.0: 2.50, 1.0: 2.90}, 10.0),  # far too low: ten times wins clearly
        ({10.0: 2.86, 1.0: 2.90}, 1.0),  # ... only just ahead: left alone
        ({10.0: 2.615, 1.0: 1.800}, 1.0),  # measured: a healthy transformer at 200 of 800
        ({10.0: 2.50, 1.0: 2.90, 100.0: 2.20}, 100.0),  # a hundred times too low
        ({10.0: 2.50, 1.0: 2.90, 100.0: math.inf}, 10.0),  # ... x100 diverged
        ({10.0: 3.0, 1.0: math.inf}, 1.0),  # the rate in force diverged: not a reason to go up
        ({10.0: math.inf, 1.0: math.inf}, 1.0),  # nothing learns: no change
    ],
)
def test_another_rate_only_when_it_wins_clearly(losses: dict[float, float], chosen: float) -> None:
    assert rate_search.choose_probe(losses, margin=0.02) == chosen


def test_the_probe_leaves_the_run_as_it_was_and_repeats_itself(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(transformer(), evaluate=False)
    for _ in range(5):
        trainer.train_one()
    before = {k: v.clone() for k, v in trainer.family.model.state_dict().items()}
    held_out = trainer.family.held_out_loss(5)
    assert held_out is not None and held_out == trainer.family.held_out_loss(5)

    def once() -> rate_search.SearchResult:
        return learning_rate_search.probe(
            trainer.family,
            trainer.hp,
            lambda i: trainer.dataset.batch(trainer.data_index + i, trainer.config.batch_size),
            lambda i: 1000 + i,
            steps=4,
            at_step=5,
        )

    first, second = once(), once()
    assert first.losses == second.losses and first.factor == second.factor
    tried = list(first.losses)  # x100 too where x10 won (this early, it may)
    assert tried[:2] == list(rate_search.PROBE_FACTORS)
    assert tried[2:] in ([], list(rate_search.PROBE_BEYOND))
    assert first.trained_steps == 4 * len(tried)
    after = trainer.family.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert trainer.family.held_out_loss(5) == held_out
    assert trainer.family.hp["lr"] == 0.002


@pytest.mark.parametrize("name", ["vae-digits", "diffusion-digits"])
def test_held_out_losses_change_with_the_weights_alone(
    make_trainer: MakeTrainer, name: str
) -> None:
    trainer = make_trainer(tiny(name, training={"max_steps": 10}), name=name, evaluate=False)
    first = trainer.family.held_out_loss(0)
    assert first is not None and math.isfinite(first)
    assert trainer.family.has_held_out_loss  # what the probe reads instead of a pass
    torch.manual_seed(123)  # the global generator's state must not matter
    assert trainer.family.held_out_loss(0) == first
    trainer.train_one()
    assert trainer.family.held_out_loss(1) != first


def test_a_far_too_low_rate_is_probed_up_and_the_run_goes_on_from_its_weights(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    """A hundredth of the healthy rate: x10 wins clearly, so x100 is tried too (the
    range had not bracketed the best rate) and wins: the healthy rate in one check."""
    # 20 steps a candidate: x10 then wins by 4.3% (measured; by 2.5% with 8, too near the
    # 2% margin for a test that must hold on any CPU).
    probe = {"id": "r1-0", "action": "probe_learning_rate", "search_steps": 20}
    _, trainer = commanded_after_twenty_steps(
        make_trainer, tmp_path, transformer(lr=FAR_TOO_LOW), [probe]
    )

    assert trainer.rate_factor == (100.0, 2)
    assert trainer.origin == 0 and trainer.step == 20  # no fresh start, no run step trained
    series = trainer.collector.milestone
    losses = series["gentrain_milestone_learning_rate_search_loss"]
    tried = (*rate_search.PROBE_FACTORS, *rate_search.PROBE_BEYOND)
    assert set(losses) == {(f"{f:g}",) for f in tried}
    assert losses[("10",)] < losses[("1",)] * (1 - rate_search.PROBE_MARGIN_UP)
    assert losses[("100",)] < losses[("10",)]
    assert series["gentrain_milestone_learning_rate_search_steps"] == {(): 20.0 * 3}
    trainer.train_one()
    expected = learning_rate(20, 100 * FAR_TOO_LOW, float(trainer.hp["min_lr"]), 0, 80)
    assert trainer.family.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    assert trainer.counters["gentrain_commands_applied_total"] == {("probe_learning_rate",): 1.0}
    # A transformer keeps its moments: fresh ones at its full rate are the no-warm-up fault.
    assert {int(s["step"]) for s in trainer.family.optimizer.state.values()} == {21}


def test_a_rate_moved_tenfold_restarts_the_optimizers_moments(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    """A DDPM a hundred times too low: its weights hardly moved, but Adam's second moments
    hold the large gradients of where it began and would shrink every step at the new rate
    for about a thousand steps. The probe that moves the rate up starts them afresh."""
    probe = {"id": "r1-0", "action": "probe_learning_rate", "search_steps": 20}
    config = tiny(
        "diffusion-digits",
        training={"max_steps": 80},
        checkpoints={"interval": 20, "keep": 5},
        hyperparameters={"lr": 0.00001, "grad_clip": 1.0},
    )
    _, trainer = commanded_after_twenty_steps(make_trainer, tmp_path, config, [probe])

    assert trainer.rate_factor is not None
    assert trainer.rate_factor[0] >= learning_rate_search.RESTART_MOMENTS_FROM
    assert not trainer.family.optimizer.state
    trainer.train_one()
    assert {int(s["step"]) for s in trainer.family.optimizer.state.values()} == {1}


def test_a_gan_is_not_probed(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(tiny("gan-ring", training={"max_steps": 20}), name="gan", evaluate=False)
    assert not trainer.family.has_held_out_loss and trainer.family.held_out_loss(0) is None
    with pytest.raises(learning_rate_search.SearchRefusedError, match="gan family"):
        learning_rate_search.probe(
            trainer.family, trainer.hp, lambda i: trainer.dataset.batch(i, 8), lambda i: i, 3, 0
        )
