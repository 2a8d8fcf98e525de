"""The `search_learning_rate` command: a short learning-rate range test (after Smith, 2017).

From the weights in hand (usually the fresh ones a `reinitialize` just drew), every
candidate — the configured rate times one of FACTORS — trains the same few batches with
the same noise, without warm-up, and is scored by its mean loss over the last third of
those steps. A run that is not learning because its rate is tenfold or a hundredfold too
high thus gets a rate of the right size in one go, rather than a tenfold cut per
milestone with a fresh start each time (measured on the zoo: a transformer at 150x its
rate needed two such cuts and ended 16% short of its healthy reference).

So short a probe favours small rates (the short-horizon bias, Wu et al., 2018): the
rates that pay off over hundreds of steps are still on the plateau after 25. Measured on
the zoo's transformer, fresh for its last 600 steps with a 30-step warm-up: the probe's
winners were 0.0009-0.003 (and 0.0015 from the run at 25x), which end at validation loss
1.74 / 1.48 (1.61); the next candidate up, 0.003-0.009 (0.005), ends at 1.44-1.48; the
cliff is near 0.015 (2.24). So the next larger candidate is chosen when its probe loss is
within STEP_UP of the winner's — a candidate that is already unstable in its first steps
is not (the DDPM at 50x: x0.3 scored 36% above x0.1, which was kept).

The search trains no step of the run: the weights, the optimizer and the data position are
put back, and the chosen factor scales the configured rates from then on.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .datasets import Batch
from .families import Family

# Ten times the configured rate too: a run that learned nothing because its rate is far
# too low (a transformer at a fortieth of its rate was still above the unigram loss at
# step 100) is searched up, not cut (the calibration zoo's transformer-rate-40x-too-low).
FACTORS = (10.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
# The rate check (`probe`): from the run's current weights, a tenfold step either way.
PROBE_FACTORS = (10.0, 1.0, 0.1)
# A candidate must beat the rate in force on held-out data by this much (relative) to be
# taken. Lower rates get a larger margin: a short probe favours them whatever the right
# rate (a tenth of a healthy transformer's rate "won" by 2.6% at step 200 of 800, the
# first dip of an annealing that costs more than it gains over the rest of the run).
PROBE_MARGIN_UP = 0.02
PROBE_MARGIN_DOWN = 0.05
STEPS = 25
STEP_UP = 0.10  # relative probe loss within which the next larger candidate is preferred
# The trainer's names of the rates a factor scales (generator and discriminator for GANs).
RATES = ("lr", "lr_g", "lr_d")
# The loss a candidate is judged on, by family. A GAN's losses rank no learning rate (they
# measure the game between two players, not how well either learned), so GANs are not searched.
JUDGED_LOSS = {"transformer": "model", "diffusion": "denoiser", "vae": "total"}


class SearchRefusedError(ValueError):
    """This family has no loss that ranks learning rates."""


@dataclass
class SearchResult:
    losses: dict[float, float]  # factor -> mean loss over the last third of its steps
    factor: float  # the chosen one
    steps: int  # steps trained per candidate

    @property
    def trained_steps(self) -> int:
        return self.steps * len(self.losses)


def _counter(batch_at: Callable[[int], Batch]) -> Callable[[], Batch]:
    """Batches 0, 1, 2, ... of the probe, one per call (a step may draw several)."""
    drawn = 0

    def next_batch() -> Batch:
        nonlocal drawn
        drawn += 1
        return batch_at(drawn - 1)

    return next_batch


def scaled(hyperparameters: dict[str, Any], factor: float) -> dict[str, Any]:
    """The hyperparameters with every learning rate multiplied by `factor`."""
    return {k: (float(v) * factor if k in RATES else v) for k, v in hyperparameters.items()}


def _train_candidates(
    family: Family,
    hyperparameters: dict[str, Any],
    factors: tuple[float, ...],
    batch_at: Callable[[int], Batch],
    seed_at: Callable[[int], int],
    steps: int,
    at_step: int,
    score: Callable[[list[dict[str, float]]], float],
) -> dict[float, float]:
    """Each factor trains `steps` steps from the family's current weights and is scored by
    `score(its training losses)`; the weights and hyperparameters are put back after."""
    start = copy.deepcopy(family.state_dict())
    kept = dict(family.hp)
    losses: dict[float, float] = {}
    try:
        for factor in factors:
            family.load_state_dict(copy.deepcopy(start))
            family.apply_hyperparameters(scaled(hyperparameters, factor), at_step)
            seen = []
            drawn = _counter(batch_at)
            for index in range(steps):
                torch.manual_seed(seed_at(index))
                seen.append(family.train_step(drawn, at_step + index).losses)
            losses[factor] = score(seen)
    finally:
        family.load_state_dict(start)
        family.apply_hyperparameters(kept, at_step)
    return losses


def search(
    family: Family,
    family_name: str,
    hyperparameters: dict[str, Any],
    batch_at: Callable[[int], Batch],
    seed_at: Callable[[int], int],
    steps: int = STEPS,
) -> SearchResult:
    """Tries every factor from the family's current weights; leaves them as they were.

    `batch_at(i)` and `seed_at(i)` give the i-th probe step its batch and noise seed: the
    same for every candidate, so the candidates differ in their rate alone."""
    key = JUDGED_LOSS.get(family_name)
    if key is None:
        raise SearchRefusedError(f"the {family_name} family has no loss that ranks learning rates")

    def tail_mean(seen: list[dict[str, float]]) -> float:
        tail = [s[key] for s in seen[-max(1, steps // 3) :]]
        return statistics.mean(tail) if all(math.isfinite(v) for v in tail) else math.inf

    fresh = dict(hyperparameters)
    if "warmup_steps" in fresh:
        fresh["warmup_steps"] = 0
    losses = _train_candidates(family, fresh, FACTORS, batch_at, seed_at, steps, 0, tail_mean)
    return SearchResult(losses, choose(losses), steps)


def probe(
    family: Family,
    hyperparameters: dict[str, Any],
    batch_at: Callable[[int], Batch],
    seed_at: Callable[[int], int],
    steps: int,
    at_step: int,
) -> SearchResult:
    """The rate check: from the run's current weights, at its current step (its warm-up
    and schedule as they are), the configured rates and PROBE_FACTORS of them each train
    `steps` steps and are judged on held-out data (`Family.held_out_loss`). A rate other
    than the configured one is chosen only if it wins clearly (`choose_probe`)."""
    if not family.has_held_out_loss:
        raise SearchRefusedError(f"the {family.name} family has no loss that ranks learning rates")

    def held_out(seen: list[dict[str, float]]) -> float:
        value = family.held_out_loss(at_step + steps)
        return value if value is not None and math.isfinite(value) else math.inf

    losses = _train_candidates(
        family, hyperparameters, PROBE_FACTORS, batch_at, seed_at, steps, at_step, held_out
    )
    return SearchResult(losses, choose_probe(losses), steps)


def choose_probe(
    losses: dict[float, float], up: float = PROBE_MARGIN_UP, down: float = PROBE_MARGIN_DOWN
) -> float:
    """The candidate with the lowest held-out loss if it beats the configured rate's by
    more than its margin (relative; `up` for larger rates, `down` for smaller), else the
    configured rate (x1): a healthy run should be left alone."""
    current = losses.get(1.0, math.inf)
    others = {f: v for f, v in losses.items() if f != 1.0 and math.isfinite(v)}
    if not others:
        return 1.0
    best = min(sorted(others), key=lambda f: others[f])
    margin = up if best > 1.0 else down
    if not math.isfinite(current) or others[best] < current * (1 - margin):
        return best
    return 1.0


def choose(losses: dict[float, float]) -> float:
    """The winner (on a tie, e.g. every candidate diverged, the smallest rate: the safer
    guess), or the next larger candidate up to the configured rate if its loss is within
    STEP_UP of the winner's (a rate above the configured one must win outright)."""
    best = min(sorted(losses), key=lambda f: losses[f])
    larger = [f for f in losses if best < f <= 1.0]
    if larger and math.isfinite(losses[best]):
        up = min(larger)
        if losses[up] - losses[best] <= STEP_UP * abs(losses[best]):
            return up
    return best
