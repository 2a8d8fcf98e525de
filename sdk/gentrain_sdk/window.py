"""The milestone summary: statistics over every step since the previous checkpoint.

Computed in the trainer rather than from scrapes, so that no step is lost to the scrape
interval: a NaN or a spike between two scrapes still counts.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

SPIKE_Z = 6.0  # robust z-score above which a loss counts as a spike
SPIKE_CONTEXT = 50  # steps before a loss that it is compared with


def _robust_spikes(earlier: list[float], values: list[float]) -> int:
    """Losses in `values` far above the median of the steps just before them (a robust
    z-score over a trailing window, so that a loss still falling fast early in training
    is no spike). `earlier`: the losses before the window's first, its context."""
    series = earlier + values
    spikes = 0
    for index in range(max(SPIKE_CONTEXT, len(earlier)), len(series)):
        context = series[index - SPIKE_CONTEXT : index]
        median = statistics.median(context)
        scale = 1.4826 * statistics.median(abs(v - median) for v in context)
        if scale > 1e-12 and (series[index] - median) / scale > SPIKE_Z:
            spikes += 1
    return spikes


class Window:
    def __init__(self) -> None:
        # The last SPIKE_CONTEXT finite losses before this window, per component: a step
        # early in a window is compared with the previous window's last steps.
        self.context: dict[str, list[float]] = {}
        self.losses: dict[str, list[float]] = defaultdict(list)
        self.reset()

    def reset(self) -> None:
        """A new window (at a milestone); the losses just before it stay as context."""
        for name, values in self.losses.items():
            finite = [v for v in values if math.isfinite(v)]
            self.context[name] = (self.context.get(name, []) + finite)[-SPIKE_CONTEXT:]
        self._clear()

    def forget(self) -> None:
        """A new window after new weights (a fresh start, a rollback) or new
        hyperparameters (the loss may sit at another level): the losses before say
        nothing about the next ones."""
        self.context = {}
        self._clear()

    def _clear(self) -> None:
        self.steps = 0
        self.losses = defaultdict(list)
        self.grad_norms: dict[str, list[float]] = defaultdict(list)
        self.clipped: dict[str, int] = defaultdict(int)
        self.extras: dict[str, list[float]] = defaultdict(list)
        self.update_ratios: dict[str, list[float]] = defaultdict(list)
        self.nonfinite = 0
        self.data_seconds = 0.0
        self.total_seconds = 0.0

    def add(
        self,
        losses: dict[str, float],
        grad_norms: dict[str, float],
        clipped: dict[str, bool],
        extras: dict[str, float],
        data_seconds: float,
        total_seconds: float,
        update_ratios: dict[str, float] | None = None,
    ) -> None:
        self.steps += 1
        for name, value in (update_ratios or {}).items():
            self.update_ratios[name].append(value)
        if not all(math.isfinite(v) for v in losses.values()):
            self.nonfinite += 1
        for name, value in losses.items():
            self.losses[name].append(value)
        for name, value in grad_norms.items():
            self.grad_norms[name].append(value)
        for name, was in clipped.items():
            self.clipped[name] += int(was)
        for name, value in extras.items():
            self.extras[name].append(value)
        self.data_seconds += data_seconds
        self.total_seconds += total_seconds

    def summary(self) -> dict[str, Any]:
        per_component: dict[str, dict[str, float]] = {}
        for name, values in self.losses.items():
            finite = [v for v in values if math.isfinite(v)]
            tenth = max(1, len(finite) // 10)
            per_component[name] = {
                "loss_mean": statistics.fmean(finite) if finite else math.nan,
                "loss_std": statistics.pstdev(finite) if len(finite) > 1 else 0.0,
                "loss_max": max(finite) if finite else math.nan,
                "loss_first": statistics.fmean(finite[:tenth]) if finite else math.nan,
                "loss_last": statistics.fmean(finite[-tenth:]) if finite else math.nan,
                "loss_spikes": float(_robust_spikes(self.context.get(name, []), finite)),
            }
        for name, values in self.grad_norms.items():
            finite = [v for v in values if math.isfinite(v)]
            entry = per_component.setdefault(name, {})
            entry["grad_norm_max"] = max(values) if values else math.nan
            entry["grad_norm_median"] = statistics.median(finite) if finite else math.nan
            entry["grad_clip_ratio"] = self.clipped[name] / max(1, len(values))
        for name, values in self.update_ratios.items():
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                per_component.setdefault(name, {})["update_ratio"] = statistics.median(finite)
        return {
            "steps": self.steps,
            "nonfinite_losses": self.nonfinite,
            "components": per_component,
            "extras": {k: statistics.fmean(v) for k, v in self.extras.items() if v},
            "data_wait_ratio": self.data_seconds / self.total_seconds
            if self.total_seconds
            else 0.0,
            "steps_per_second": self.steps / self.total_seconds if self.total_seconds else 0.0,
        }


class SinceStart:
    """Non-finite losses and spikes summed over every window since this process started:
    a milestone that the operator's scrapes missed still counts in the next one."""

    def __init__(self) -> None:
        self.nonfinite = 0
        self.spikes: dict[str, float] = {}

    def add(self, summary: dict[str, Any]) -> None:
        self.nonfinite += int(summary["nonfinite_losses"])
        for component, figures in summary["components"].items():
            if "loss_spikes" in figures:
                self.spikes[component] = self.spikes.get(component, 0.0) + figures["loss_spikes"]
