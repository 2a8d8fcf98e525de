"""The live figures' exponential average (the built-in trainer's and the SDK's alike):
what `gentrain_loss` and `gentrain_step_seconds` show between milestones."""

from __future__ import annotations

import math
from collections.abc import Mapping

SMOOTHING = 0.1  # the weight of the newest value


def smoothed(previous: float | None, value: float) -> float:
    """The average after `value`. A non-finite value shows as it is, and the next finite
    one starts afresh: a NaN loss must be seen, not averaged away."""
    if previous is None or not (math.isfinite(previous) and math.isfinite(value)):
        return value
    return (1 - SMOOTHING) * previous + SMOOTHING * value


class Smoothed:
    """Named figures (a loss by component), each averaged on its own."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add(self, figures: Mapping[str, float]) -> None:
        for name, value in figures.items():
            self.values[name] = smoothed(self.values.get(name), value)

    def clear(self) -> None:
        self.values.clear()
