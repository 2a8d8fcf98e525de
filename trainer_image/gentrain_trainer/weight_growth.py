"""How much the weights grew in their first steps at the full rate: a component's weight
norm GROWTH_STEPS steps past its warm-up, over its norm when it was initialised.

Adam moves every weight by about the learning rate at each step, whatever the gradient's
scale, so the growth over the first steps says how large the rate is against the scale
the weights were initialised at. A rate too high for the model shows there at once, even
where the run then learns, badly, and no loss-based rule sees anything wrong: on the
calibration zoo (seeds 0-2) the healthy runs grew 1.02-1.20x (transformers the most, their
warm-up's growth included), and every run at a rate 10-50x too high 1.27-5.8x
(`python -m bench.weight_growth`; docs/diagnosis-calibration.md, session 29).

Counted in the component's own updates: a discriminator that takes k steps per generator
step is measured after GROWTH_STEPS of its own, ceil(GROWTH_STEPS / k) trainer steps (at
100 trainer steps a discriminator at five steps each grew 1.23-1.32 on the evaluation
zoo's ring: 500 updates at a healthy rate, read as a rate too high — prompted by that
set, so said so).

A fixed number of updates, not a milestone window: the window is the user's checkpoint
interval, and weights keep growing as a healthy run trains. Measured once per
initialisation (the run's, a fresh start's, a reset discriminator's), two passes over
the weights in all; kept in the checkpoint, so a restart neither loses nor repeats it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import torch

GROWTH_STEPS = 100


@torch.no_grad()
def weight_norm(module: torch.nn.Module) -> float:
    return math.sqrt(sum(float(p.detach().float().pow(2).sum()) for p in module.parameters()))


class WeightGrowth:
    def __init__(self) -> None:
        # component -> (the step it was initialised at, its weight norm then)
        self.started: dict[str, tuple[int, float]] = {}
        self.growth: dict[str, float] = {}  # component -> the figure, once measured

    def begin(
        self,
        components: Mapping[str, torch.nn.Module],
        step: int,
        only: Collection[str] | None = None,
    ) -> None:
        """Components initialised at `step` (all, or `only` those): measured afresh."""
        for name, module in components.items():
            if only is None or name in only:
                self.started[name] = (step, weight_norm(module))
                self.growth.pop(name, None)

    def observe(
        self,
        components: Mapping[str, torch.nn.Module],
        step: int,
        warmup: int,
        updates_per_step: Mapping[str, int] | None = None,
    ) -> None:
        """After a step: measures each component that has just made GROWTH_STEPS updates
        past its warm-up (`updates_per_step`: a component updated more than once per
        trainer step; a run resumed later than that has no figure)."""
        for name, (since, initial) in self.started.items():
            updates = max(1, int((updates_per_step or {}).get(name, 1)))
            if step - since != warmup + math.ceil(GROWTH_STEPS / updates) or name in self.growth:
                continue
            if name in components and initial > 0:
                self.growth[name] = weight_norm(components[name]) / initial

    def state(self) -> dict[str, Any]:
        return {
            "started": {name: [since, initial] for name, (since, initial) in self.started.items()},
            "growth": dict(self.growth),
        }

    def load(self, saved: Mapping[str, Any] | None) -> None:
        """From a checkpoint's state; one saved without it (an older trainer) keeps what
        the fresh build measured, and no figure."""
        if not saved:
            self.growth = {}
            return
        self.started = {
            str(name): (int(since), float(initial))
            for name, (since, initial) in (saved.get("started") or {}).items()
        }
        self.growth = {str(name): float(g) for name, g in (saved.get("growth") or {}).items()}
