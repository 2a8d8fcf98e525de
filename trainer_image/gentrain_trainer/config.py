"""The trainer's configuration file (rendered by the operator into a ConfigMap).

    generation: 3                  # bumped by the operator at every spec change
    family: gan                    # gan | vae | transformer | diffusion
    seed: 0
    model: {...}                   # architecture, fixed for the run
    data: {name: ring8, batch_size: 256}
    training: {max_steps: 3000}
    hyperparameters: {...}         # live: re-read and applied at each milestone
    checkpoints: {interval: 200, keep: 3, pinned: [400], judged_through: 600}   # see Retention
    evaluation: {samples: 2000, extractor: auto}
    commands:                      # one-shot, each applied once, by id
      - {id: rb-1, action: rollback, step: 400, skip_batches: 50}
      - {id: reset-1, action: reset_discriminator}
      - {id: fresh-1, action: reinitialize}   # fresh weights, schedules restart here
      - {id: lr-1, action: search_learning_rate, search_steps: 25}   # a range test

Every error names the field and says what would be valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gentrain_contract import commands, hyperparameters
from gentrain_contract.commands import CommandSpec

FAMILIES = hyperparameters.BUILT_IN


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the field."""


# Checkpoints newer than the operator's last verdict kept beyond `keep` (see Retention).
UNJUDGED_SPARE = 4


@dataclass(frozen=True)
class Retention:
    """What the operator's verdicts ask the rotation to keep besides the newest `keep`.

    `pinned`: the last checkpoint it judged healthy, a rollback's target. `judged_through`:
    the step of the last milestone it judged; None when no operator judges the run (a
    trainer started by hand), and the rotation keeps only `keep` and the pins.

    The operator judges a milestone seconds after it is saved (one scrape interval), and
    its verdict reaches the trainer through a ConfigMap volume (0.25 s on the local node,
    about a minute on a kubelet). Keeping only the oldest checkpoint newer than the last
    pin was not enough: on a loaded machine with a 0.7 s save interval the operator judged
    200 and 400 healthy while the pins were still in flight, the rotation kept 200 as
    "oldest not judged" and dropped 400, then dropped 200 when 400's pin came, and the
    rollback to 400 found neither. Every checkpoint newer than `judged_through` may be the
    next one pinned, so the newest `keep + UNJUDGED_SPARE` of them wait for the verdict."""

    pinned: frozenset[int] = frozenset()
    judged_through: int | None = None


@dataclass(frozen=True)
class Config:
    generation: int
    family: str
    seed: int
    model: dict[str, Any]
    data: dict[str, Any]
    max_steps: int
    hyperparameters: dict[str, Any]
    checkpoint_interval: int
    checkpoint_keep: int
    retention: Retention
    evaluation: dict[str, Any]
    commands: tuple[CommandSpec, ...] = field(default=())

    @property
    def batch_size(self) -> int:
        return int(self.data.get("batch_size", 64))


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _int(section: Mapping[str, Any], key: str, where: str, default: int, minimum: int = 0) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}: must be at least {minimum}, got {value}")
    return value


def _commands(raw: Any) -> tuple[CommandSpec, ...]:
    parsed = commands.parse(raw)
    if parsed.refused:
        raise ConfigError(next(iter(parsed.refused.values())))
    return parsed.commands


def parse(raw: Any) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a YAML mapping")
    family = raw.get("family")
    if family not in FAMILIES:
        raise ConfigError(f"family: {family!r} is not one of {', '.join(FAMILIES)}")
    training = _section(raw, "training")
    checkpoints = _section(raw, "checkpoints")
    data = _section(raw, "data")
    if "name" not in data and "path" not in data:
        raise ConfigError("data.name: name a built-in dataset, or give data.path")
    _int(data, "batch_size", "data", 64, minimum=1)
    wanted = _section(raw, "hyperparameters")
    try:
        values = {**hyperparameters.defaults(family), **hyperparameters.validate(family, wanted)}
    except ValueError as error:
        raise ConfigError(str(error)) from error
    pinned = checkpoints.get("pinned") or []
    if not isinstance(pinned, list) or not all(isinstance(p, int) and p >= 0 for p in pinned):
        raise ConfigError("checkpoints.pinned: expected a list of step numbers")
    judged = checkpoints.get("judged_through")
    if judged is not None:
        judged = _int(checkpoints, "judged_through", "checkpoints", 0)
    return Config(
        generation=_int(raw, "generation", "config", 1),
        family=family,
        seed=_int(raw, "seed", "config", 0),
        model=_section(raw, "model"),
        data=data,
        max_steps=_int(training, "max_steps", "training", 1000, minimum=1),
        hyperparameters=values,
        checkpoint_interval=_int(checkpoints, "interval", "checkpoints", 200, minimum=1),
        checkpoint_keep=_int(checkpoints, "keep", "checkpoints", 3, minimum=1),
        retention=Retention(frozenset(pinned), judged),
        evaluation=_section(raw, "evaluation"),
        commands=_commands(raw.get("commands")),
    )


def load(path: Path) -> Config:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"config file {path} does not exist") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text: {error}") from error
    return parse(raw)
