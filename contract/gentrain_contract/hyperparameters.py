"""The hyperparameter catalogue: every hyperparameter a job may set and the trainer may
change while it runs, defined once — its name in the API and in the trainer, its type and
bounds, and its default in each family it applies to.

The CRD's `spec.training.hyperparameters` block (and the rules refusing a field of another
family) is generated from this table (`make generate`; a test fails when the file lags);
the operator renders a job's configuration with it and the trainer checks every live
change against it, so the three cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

BUILT_IN = ("gan", "vae", "transformer", "diffusion")  # the built-in trainer's families
# A program of the user's (gentrain-sdk): it sees the hyperparameters it may be given under
# their API names, and has no defaults gentrain knows (its own code holds them).
CUSTOM = "custom"
FAMILIES = (*BUILT_IN, CUSTOM)
GAN_LOSSES = ("non_saturating", "minimax", "hinge", "least_squares", "wgan_gp")
KL_SCHEDULES = ("none", "linear", "cyclical")

Value = float | int | str


@dataclass(frozen=True)
class Hyperparameter:
    api: str  # spec.training.hyperparameters.<api>
    trainer: str  # the trainer configuration's (and the gentrain_hyperparameter label's) name
    type: Literal["number", "integer", "string"]
    description: str
    defaults: Mapping[str, Value]  # by built-in family: those it applies to, in order
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    custom: bool = False  # a custom program may be given it too

    @property
    def families(self) -> tuple[str, ...]:
        return (*self.defaults, *((CUSTOM,) if self.custom else ()))

    def check(self, name: str, value: Any) -> Value:
        """The value as the trainer holds it; raises ValueError naming `name` and the bound
        it breaks."""
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
                raise ValueError(
                    f"{name}: must be greater than {self._shown(self.minimum)}, got {value}"
                )
            if value < self.minimum:
                raise ValueError(
                    f"{name}: must be at least {self._shown(self.minimum)}, got {value}"
                )
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name}: must be at most {self._shown(self.maximum)}, got {value}")
        return int(value) if self.type == "integer" else float(value)

    def _shown(self, bound: float) -> int | float:
        return int(bound) if self.type == "integer" else float(bound)


def _rate(
    api: str, trainer: str, description: str, custom: bool = False, **defaults: float
) -> Hyperparameter:
    return Hyperparameter(
        api, trainer, "number", description, defaults, 0.0, 1.0, True, custom=custom
    )


CATALOGUE = (
    _rate(
        "learningRate",
        "lr",
        "Peak learning rate.",
        custom=True,
        vae=1e-3,
        transformer=1e-3,
        diffusion=2e-4,
    ),
    _rate("generatorLearningRate", "lr_g", "Generator learning rate.", gan=2e-4),
    _rate("discriminatorLearningRate", "lr_d", "Discriminator learning rate.", gan=2e-4),
    Hyperparameter(
        "ganLoss",
        "loss",
        "string",
        "GAN objective.",
        {"gan": "non_saturating"},
        choices=GAN_LOSSES,
    ),
    Hyperparameter(
        "discriminatorSteps",
        "d_steps",
        "integer",
        "Discriminator steps per generator step.",
        {"gan": 1},
        1,
        10,
    ),
    Hyperparameter(
        "gradientPenaltyWeight", "gp_weight", "number", "WGAN-GP penalty weight.", {"gan": 10.0},
        0, 1000,
    ),
    Hyperparameter(
        "r1Gamma", "r1_gamma", "number", "R1 penalty weight on real data; 0 turns it off.",
        {"gan": 0.0}, 0, 1000,
    ),
    Hyperparameter("beta1", "beta1", "number", "Adam beta1.", {"gan": 0.5}, 0, 0.999),
    Hyperparameter(
        "beta2", "beta2", "number", "Adam beta2.", {"gan": 0.999, "transformer": 0.95},
        0, 0.9999,
    ),
    Hyperparameter(
        "gradientClip",
        "grad_clip",
        "number",
        "Clip the gradient norm to this; 0 turns clipping off.",
        {"gan": 0.0, "vae": 0.0, "transformer": 1.0, "diffusion": 1.0},
        0,
        1e6,
        custom=True,
    ),
    Hyperparameter(
        "klWeight", "kl_weight", "number", "Weight of the KL term.", {"vae": 1.0}, 0, 1000
    ),
    Hyperparameter(
        "klSchedule",
        "kl_schedule",
        "string",
        "KL annealing: none, linear, or cyclical.",
        {"vae": "none"},
        choices=KL_SCHEDULES,
    ),
    Hyperparameter(
        "klAnnealSteps", "kl_anneal_steps", "integer",
        "Length of the KL ramp or cycle in steps.", {"vae": 1000}, 1, 10_000_000,
    ),
    Hyperparameter(
        "freeBits", "free_bits", "number", "Minimum KL per latent dimension in nats.",
        {"vae": 0.0}, 0, 10,
    ),
    Hyperparameter(
        "minLearningRate", "min_lr", "number", "Learning rate at the end of the cosine decay.",
        {"transformer": 1e-4}, 0, 1,
    ),
    Hyperparameter(
        "warmupSteps", "warmup_steps", "integer", "Linear warm-up steps.",
        {"transformer": 100}, 0, 10_000_000, custom=True,
    ),
    Hyperparameter(
        "weightDecay", "weight_decay", "number", "AdamW weight decay.", {"transformer": 0.1},
        0, 10, custom=True,
    ),
    Hyperparameter(
        "zLoss", "z_loss", "number", "Weight of the z-loss on the softmax normaliser.",
        {"transformer": 0.0}, 0, 1,
    ),
    Hyperparameter(
        "emaDecay", "ema_decay", "number", "EMA decay of the sampling weights.",
        {"diffusion": 0.999}, 0, 0.99999,
    ),
    Hyperparameter(
        "emaWarmupSteps", "ema_warmup_steps", "integer",
        "EMA warm-up; 0 uses emaDecay from the start.", {"diffusion": 200}, 0, 10_000_000,
    ),
)  # fmt: skip

BY_API = {parameter.api: parameter for parameter in CATALOGUE}


def of_family(family: str) -> dict[str, Hyperparameter]:
    """The family's hyperparameters by their trainer names."""
    if family not in FAMILIES:
        raise ValueError(f"family: {family!r} is not one of {', '.join(FAMILIES)}")
    return {p.trainer: p for p in CATALOGUE if family in p.families}


def api_names(family: str) -> dict[str, str]:
    """spec.training.hyperparameters names -> the names the program reads, for one family
    (a custom program reads the API's own)."""
    return {p.api: p.api if family == CUSTOM else p.trainer for p in of_family(family).values()}


def defaults(family: str) -> dict[str, Value]:
    """The family's defaults by trainer name: what a run gets for a field it leaves out
    (none for a custom program: its code holds them)."""
    return {n: p.defaults[family] for n, p in of_family(family).items() if family in p.defaults}


def api_defaults(family: str) -> dict[str, Value]:
    """The same defaults, by API name."""
    return {
        p.api: v for p in of_family(family).values() if (v := p.defaults.get(family)) is not None
    }


def validate(
    family: str, values: Mapping[str, Any], prefix: str = "hyperparameters"
) -> dict[str, Value]:
    """All of `values` (trainer names) checked; raises ValueError naming the first bad
    field."""
    table = of_family(family)
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
