"""How far one optimizer step moves the weights, relative to their size.

||Δw|| / ||w|| per weight matrix, the median over a component's largest matrices. The
textbook healthy figure is around 1e-3 (CS231n, "ratio of weights:updates"); a learning
rate many times too high shows as a ratio tens of times that. It is a direct sign where
the loss only shows a slow run: a transformer at 25x its learning rate without warm-up
trains on, just badly, and no loss-based rule can tell it from a slow healthy one.

Measured on one step in `EVERY`, on at most `PROBED` tensors per component: it costs a
copy of those few tensors now and then, never of the whole model.
"""

from __future__ import annotations

import statistics

import torch

EVERY = 10
PROBED = 4


def _largest(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    weights = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    return sorted(weights, key=lambda p: p.numel(), reverse=True)[:PROBED]


class UpdateProbe:
    def __init__(self) -> None:
        self._before: dict[str, list[tuple[torch.nn.Parameter, torch.Tensor]]] = {}

    def start(self, components: dict[str, torch.nn.Module]) -> None:
        """Copies the probed tensors before the step (looked up afresh: a reset
        discriminator is a new module)."""
        self._before = {
            name: [(p, p.detach().clone()) for p in _largest(module)]
            for name, module in components.items()
        }

    @torch.no_grad()
    def finish(self) -> dict[str, float]:
        """Per component, the median update ratio of the step since `start`."""
        ratios: dict[str, float] = {}
        for name, pairs in self._before.items():
            values = [
                float((p.detach() - old).norm() / old.norm().clamp_min(1e-12)) for p, old in pairs
            ]
            if values:
                ratios[name] = statistics.median(values)
        self._before = {}
        return ratios
