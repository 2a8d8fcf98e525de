"""Re-reading the configuration (at a milestone, or as soon as the file changes): what
changed, what was refused, and taking it up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gentrain_contract import commands, hyperparameters, metrics
from gentrain_contract.commands import CommandSpec

from . import distributed
from .config import Retention

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger(__name__)
trainer_log = logging.getLogger("gentrain.trainer")  # what the trainer did, as the loop says it


@dataclass
class Reload:
    generation: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    commands: tuple[CommandSpec, ...] = ()
    retention: Retention | None = None
    max_steps: int | None = None
    # Whether the file changed since it was last taken up: its refusals are counted once
    # per version, not again at every milestone that reads it unchanged.
    new_version: bool = True


def reload(path: Path, family: str, current: dict[str, Any]) -> Reload:
    """Reads the file again. Values that fail validation are refused one by one."""
    result = Reload(hyperparameters=dict(current))
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as error:  # ValueError: not UTF-8
        result.refused["config"] = f"cannot read {path}: {error}"
        return result
    if not isinstance(raw, dict):
        result.refused["config"] = "the configuration is not a mapping"
        return result
    if raw.get("family", family) != family:
        result.refused["family"] = (
            f"family cannot change while running ({family} -> {raw.get('family')})"
        )
    generation = raw.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool):
        result.generation = generation
    wanted = raw.get("hyperparameters") or {}
    if isinstance(wanted, dict):
        result.hyperparameters, refused = hyperparameters.merge_live(family, current, wanted)
        result.refused.update(refused)
    else:
        result.refused["hyperparameters"] = "expected a mapping"
    parsed = commands.parse(raw.get("commands"))  # a bad entry is refused, the rest kept
    result.commands = parsed.commands
    result.refused.update(parsed.refused)
    result.retention = _retention_in(raw)
    max_steps = _mapping(raw, "training").get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        result.max_steps = max_steps
    for name, why in result.refused.items():
        log.warning(
            "configuration value refused, old value kept: %s",
            why if name in why else f"{name}: {why}",
        )
    return result


def _mapping(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """A section that is not a mapping is read as absent: a live reload keeps old values
    rather than stopping the run (the start-up read refuses it with a ConfigError)."""
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def _retention_in(raw: dict[str, Any]) -> Retention | None:
    """None when the pins are not a list of steps: the old retention stands."""
    checkpoints = _mapping(raw, "checkpoints")
    steps, judged = checkpoints.get("pinned"), checkpoints.get("judged_through")
    if not isinstance(steps, list) or not all(_is_int(p) for p in steps):
        return None
    return Retention(frozenset(steps), judged if _is_int(judged) else None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def retention(path: Path) -> Retention | None:
    """Only what the operator's verdicts ask to keep, read just before old checkpoints
    are rotated out: the operator pins the last healthy one as soon as it has judged it,
    and a rotation that waited for the milestone's full reload would already have
    deleted it."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return None
    return _retention_in(raw) if isinstance(raw, dict) else None


Stamp = tuple[int, int, int]


def stamp(path: Path) -> Stamp | None:
    """What tells that the file changed: its inode (a ConfigMap volume swaps a new file
    in), modification time and size. None when it cannot be read."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def take_up(trainer: Trainer) -> None:
    """The configuration as it is now, at a milestone or as soon as the file changes
    between two: refused fields counted, changed hyperparameters applied, a search's rate
    factor dropped when its generation is superseded, retention and max steps updated, new
    commands run."""
    read = None
    if trainer.world.main:
        # Stamped before reading: a write that lands while we read is a change next step.
        previous, trainer.config_stamp = trainer.config_stamp, stamp(trainer.options.config_path)
        read = reload(trainer.options.config_path, trainer.config.family, trainer.hp)
        read.new_version = trainer.config_stamp is None or trainer.config_stamp != previous
    change = distributed.from_main(read)
    assert change is not None
    if change.new_version:
        for refused in change.refused:
            trainer.count(metrics.CONFIG_REJECTED_TOTAL.name, refused)
    generation = trainer.generation if change.generation is None else change.generation
    stale_factor = trainer.rate_factor is not None and trainer.rate_factor[1] != generation
    if trainer.rate_factor is not None and stale_factor:
        trainer_log.info(
            "learning-rate factor %g dropped: generation %d", trainer.rate_factor[0], generation
        )
        trainer.rate_factor = None
    if change.hyperparameters != trainer.hp or stale_factor:
        trainer_log.info(
            "hyperparameters changed at step %d: %s",
            trainer.step,
            {
                k: (trainer.hp.get(k), v)
                for k, v in change.hyperparameters.items()
                if trainer.hp.get(k) != v
            },
        )
        trainer.hp = change.hyperparameters
        trainer.family.apply_hyperparameters(trainer.effective_hp(), trainer.step - trainer.origin)
        # The loss may now sit at another level (free bits, a KL weight, another GAN
        # loss): the losses before are no context for spikes in the ones after.
        trainer.window.forget()
    trainer.history.configuration(trainer.step, generation, trainer.effective_hp())
    if change.retention is not None:
        trainer.retention = change.retention
    if change.max_steps is not None and trainer.options.max_steps is None:
        trainer.max_steps = change.max_steps
    for command in change.commands:
        if command.id not in trainer.applied:
            trainer.run_command(command, generation)
    if generation != trainer.generation:  # after the commands: a rollback moves the step
        trainer.generation_step = trainer.step
    trainer.generation = generation
