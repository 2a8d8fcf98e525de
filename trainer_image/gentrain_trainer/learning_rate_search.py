"""The `search_learning_rate` and `probe_learning_rate` commands on a built-in family.

The range test and the rate check themselves — candidates, score, choice, and why — are
gentrain_sdk.rate_search, shared with users' programs. Here: the family's own training
step and judged loss, the probe's noise and batches replayed for every candidate, and the
rate check (`probe`), which judges candidates on held-out data from the run's current
weights.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch

from gentrain_sdk.rate_search import (
    FACTORS,
    PROBE_BEYOND,
    PROBE_FACTORS,
    SearchResult,
    beyond,
    choose,
    choose_probe,
    tail_mean,
    within,
)

from .datasets import Batch
from .families import Family

# A probe that moves the rate up this much or more also restarts the optimizer's moments
# (where the family does). At a rate ten or more times too low the weights hardly moved,
# but Adam's second moments still hold the large gradients of where training began, for
# about 1/(1 - beta2) = 1,000 steps, and shrink every step taken at the new rate: a DDPM a
# hundred times too low, moved to its healthy rate at step 150 of 1,200, ended at FID 46.6
# with its moments kept and 41.1 with them restarted (healthy: 38.6). That was an
# evaluation case (diffusion-learning-rate-too-low, seed 0): judged on other seeds. Not a
# transformer: fresh moments at a transformer's full rate are the no-warm-up fault.
RESTART_MOMENTS_FROM = 10.0
STEPS = 25
# The trainer's names of the rates a factor scales (generator and discriminator for GANs).
RATES = ("lr", "lr_g", "lr_d")
# The loss a candidate is judged on, by family. A GAN's losses rank no learning rate (they
# measure the game between two players, not how well either learned), so GANs are not searched.
JUDGED_LOSS = {"transformer": "model", "diffusion": "denoiser", "vae": "total"}


class SearchRefusedError(ValueError):
    """This family has no loss that ranks learning rates."""


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
    max_factor: float | None = None,
) -> SearchResult:
    """Tries every factor (none over `max_factor`) from the family's current weights;
    leaves them as they were.

    `batch_at(i)` and `seed_at(i)` give the i-th probe step its batch and noise seed: the
    same for every candidate, so the candidates differ in their rate alone."""
    key = JUDGED_LOSS.get(family_name)
    if key is None:
        raise SearchRefusedError(f"the {family_name} family has no loss that ranks learning rates")

    def judged(seen: list[dict[str, float]]) -> float:
        return tail_mean([s[key] for s in seen])

    fresh = dict(hyperparameters)
    if "warmup_steps" in fresh:
        fresh["warmup_steps"] = 0
    factors = within(FACTORS, max_factor)
    losses = _train_candidates(family, fresh, factors, batch_at, seed_at, steps, 0, judged)
    if more := beyond(losses, choose(losses), max_factor=max_factor):
        losses |= _train_candidates(family, fresh, more, batch_at, seed_at, steps, 0, judged)
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
    and schedule as they are), the configured rates times PROBE_FACTORS each train
    `steps` steps and are judged on held-out data (`Family.held_out_loss`). A rate other
    than the configured one is chosen only if it wins clearly (`choose_probe`)."""
    if not family.has_held_out_loss:
        raise SearchRefusedError(f"the {family.name} family has no loss that ranks learning rates")

    def held_out(seen: list[dict[str, float]]) -> float:
        value = family.held_out_loss(at_step + steps)
        return value if value is not None and math.isfinite(value) else math.inf

    def train(factors: tuple[float, ...]) -> dict[float, float]:
        return _train_candidates(
            family, hyperparameters, factors, batch_at, seed_at, steps, at_step, held_out
        )

    losses = train(PROBE_FACTORS)
    if more := beyond(losses, choose_probe(losses), PROBE_BEYOND):
        losses |= train(more)
    return SearchResult(losses, choose_probe(losses), steps)
