"""What every family provides to the training loop."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..datasets import Batch

NextBatch = Callable[[], Batch]


class ModelConfigError(ValueError):
    """A `model.*` setting cannot be used with this family or dataset."""


@dataclass
class StepResult:
    losses: dict[str, float]
    grad_norms: dict[str, float] = field(default_factory=dict)
    clipped: dict[str, bool] = field(default_factory=dict)
    learning_rates: dict[str, float] = field(default_factory=dict)
    extras: dict[str, float] = field(default_factory=dict)


def clip_and_measure(parameters: Iterable[torch.nn.Parameter], clip: float) -> tuple[float, bool]:
    """The gradient's total norm before clipping, and whether clipping changed it. Under
    torchrun the gradients are first averaged over the ranks."""
    params = [p for p in parameters if p.grad is not None]
    distributed.average_gradients(params)
    limit = clip if clip > 0 else math.inf
    norm = float(torch.nn.utils.clip_grad_norm_(params, limit, error_if_nonfinite=False))
    return norm, clip > 0 and norm > clip


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class Family:
    """Base class: the loop calls these; families override what they need."""

    name = "family"
    # Whether `held_out_loss` ranks a fit: known without paying for a validation pass.
    has_held_out_loss = False

    def __init__(self, hyperparameters: dict[str, Any]) -> None:
        self.hp = dict(hyperparameters)

    def train_step(self, next_batch: NextBatch, step: int) -> StepResult:
        raise NotImplementedError

    def apply_hyperparameters(self, values: dict[str, Any], step: int) -> None:
        self.hp = dict(values)

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def evaluate(self, step: int) -> dict[str, Any]:
        """Family-specific milestone figures (quality, diversity)."""
        return {}

    def pictures(self, directory: Path, step: int) -> list[Path]:
        return []

    def components(self) -> dict[str, torch.nn.Module]:
        """The trained networks, named as in the step's grad norms."""
        return {}

    def updates_per_step(self) -> dict[str, int]:
        """Components the optimizer steps more than once per trainer step (none: one)."""
        return {}

    def baseline_loss(self) -> float | None:
        """The training loss of the best predictor that learned nothing from the inputs,
        where the family has one: a run whose loss stays there is not learning."""
        return None

    def held_out_loss(self, step: int) -> float | None:
        """The training objective on held-out data with fixed noise (the same on every
        call), or None where the family has no objective that ranks a fit (a GAN's
        losses score a game). Candidates of a learning-rate probe are judged on it."""
        return None

    def restart_optimizer(self) -> bool:
        """Starts the optimizer's moment estimates afresh, the weights as they are (see
        learning_rate_search.RESTART_MOMENTS_FROM); False where the family does not."""
        return False

    def reset_discriminator(self, step: int) -> bool:
        """Re-initialises the discriminator and its optimizer; False if there is none."""
        return False
