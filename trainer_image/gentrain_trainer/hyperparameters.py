"""Hyperparameters that may change while a run goes on, per family, with their bounds.

This table is what the live-config reload checks a new value against: an unknown name,
a wrong type or a value out of bounds is refused with a message naming the field, and
the old value is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    default: float | int | str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    exclusive_minimum: bool = False

    def check(self, name: str, value: Any) -> float | int | str:
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{name}: {value!r} is not one of {', '.join(self.choices)}")
            return str(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                raise ValueError(f"{name}: must be greater than {self.minimum}, got {value}")
            if value < self.minimum:
                raise ValueError(f"{name}: must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name}: must be at most {self.maximum}, got {value}")
        return int(value) if isinstance(self.default, int) else float(value)


def _lr(default: float) -> Param:
    return Param(default, minimum=0.0, maximum=1.0, exclusive_minimum=True)


GAN_LOSSES = ("non_saturating", "minimax", "hinge", "least_squares", "wgan_gp")
KL_SCHEDULES = ("none", "linear", "cyclical")

FAMILIES: dict[str, dict[str, Param]] = {
    "gan": {
        "lr_g": _lr(2e-4),
        "lr_d": _lr(2e-4),
        "beta1": Param(0.5, minimum=0.0, maximum=0.999),
        "beta2": Param(0.999, minimum=0.0, maximum=0.9999),
        "d_steps": Param(1, minimum=1, maximum=10),
        "loss": Param("non_saturating", choices=GAN_LOSSES),
        "gp_weight": Param(10.0, minimum=0.0, maximum=1000.0),
        "r1_gamma": Param(0.0, minimum=0.0, maximum=1000.0),
        "grad_clip": Param(0.0, minimum=0.0, maximum=1e6),
    },
    "vae": {
        "lr": _lr(1e-3),
        "kl_weight": Param(1.0, minimum=0.0, maximum=1000.0),
        "kl_schedule": Param("none", choices=KL_SCHEDULES),
        "kl_anneal_steps": Param(1000, minimum=1, maximum=10_000_000),
        "free_bits": Param(0.0, minimum=0.0, maximum=10.0),
        "grad_clip": Param(0.0, minimum=0.0, maximum=1e6),
    },
    "transformer": {
        "lr": _lr(1e-3),
        "min_lr": Param(1e-4, minimum=0.0, maximum=1.0),
        "warmup_steps": Param(100, minimum=0, maximum=10_000_000),
        "weight_decay": Param(0.1, minimum=0.0, maximum=10.0),
        "grad_clip": Param(1.0, minimum=0.0, maximum=1e6),
        "z_loss": Param(0.0, minimum=0.0, maximum=1.0),
        "beta2": Param(0.95, minimum=0.0, maximum=0.9999),
    },
    "diffusion": {
        "lr": _lr(2e-4),
        "ema_decay": Param(0.999, minimum=0.0, maximum=0.99999),
        "ema_warmup_steps": Param(200, minimum=0, maximum=10_000_000),
        "grad_clip": Param(1.0, minimum=0.0, maximum=1e6),
    },
}


def defaults(family: str) -> dict[str, float | int | str]:
    return {name: param.default for name, param in FAMILIES[family].items()}


def validate(
    family: str, values: Mapping[str, Any], prefix: str = "hyperparameters"
) -> dict[str, Any]:
    """All of `values` checked; raises ValueError naming the first bad field."""
    table = FAMILIES[family]
    checked = {}
    for name, value in values.items():
        if name not in table:
            raise ValueError(
                f"{prefix}.{name}: not a {family} hyperparameter (known: {', '.join(sorted(table))})"
            )
        checked[name] = table[name].check(f"{prefix}.{name}", value)
    return checked


def merge_live(
    family: str, current: Mapping[str, Any], wanted: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Applies each valid change; returns (new values, {field: why refused})."""
    result, refused = dict(current), {}
    for name, value in wanted.items():
        try:
            result.update(validate(family, {name: value}))
        except ValueError as error:
            # YAML keys need not be strings (`lr: 0,001` in a flow mapping makes a key 1):
            # the refusal is named as written, for the log and the metric's label.
            refused[str(name)] = str(error)
    return result, refused
