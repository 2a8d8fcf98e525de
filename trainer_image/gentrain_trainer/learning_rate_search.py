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

FACTORS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
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
    start = copy.deepcopy(family.state_dict())
    kept = dict(family.hp)
    losses: dict[float, float] = {}
    try:
        for factor in FACTORS:
            family.load_state_dict(copy.deepcopy(start))
            candidate = scaled(hyperparameters, factor)
            if "warmup_steps" in candidate:
                candidate["warmup_steps"] = 0
            family.apply_hyperparameters(candidate, 0)
            seen = []
            drawn = _counter(batch_at)
            for index in range(steps):
                torch.manual_seed(seed_at(index))
                result = family.train_step(drawn, index)
                seen.append(result.losses[key])
            tail = seen[-max(1, steps // 3) :]
            losses[factor] = (
                statistics.mean(tail) if all(math.isfinite(v) for v in tail) else math.inf
            )
    finally:
        family.load_state_dict(start)
        family.apply_hyperparameters(kept, 0)
    return SearchResult(losses, choose(losses), steps)


def choose(losses: dict[float, float]) -> float:
    """The winner (on a tie, e.g. every candidate diverged, the smallest rate: the safer
    guess), or the next larger candidate if its loss is within STEP_UP of the winner's."""
    best = min(sorted(losses), key=lambda f: losses[f])
    larger = [f for f in losses if f > best]
    if larger and math.isfinite(losses[best]):
        up = min(larger)
        if losses[up] - losses[best] <= STEP_UP * abs(losses[best]):
            return up
    return best
