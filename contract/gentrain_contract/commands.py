"""The one-shot commands of a job's spec (`spec.commands`), as the operator writes them
into a program's configuration file: roll back, re-initialise, search the learning rate.
Each is applied once, by id: by the built-in trainer as soon as its file changes, by a
program on the SDK at its next milestone.

    commands:
      - {id: rb-1, action: rollback, step: 400, skip_batches: 50}
      - {id: fresh-1, action: reinitialize}
      - {id: lr-1, action: search_learning_rate, search_steps: 25}
      - {id: lr-2, action: search_learning_rate, max_factor: 0.15}

`parse` checks every entry and refuses a bad one by its field, so that the built-in
trainer (which refuses the whole file) and gentrain-sdk (which keeps the good entries)
refuse the same things in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .vocabulary import Command

MAX_COMMANDS = 32  # spec.commands' maxItems
DEFAULT_SEARCH_STEPS = 25
MIN_SEARCH_STEPS = 3  # a range test needs a few steps per candidate rate
ACTIONS = tuple(str(c) for c in Command)


@dataclass(frozen=True)
class CommandSpec:
    """One entry of spec.commands."""

    id: str
    action: str  # a vocabulary.Command
    step: int | None = None  # rollback: the checkpoint step to return to
    # rollback: batches to skip after it (past a bad stretch); the built-in trainer also
    # never reads again a batch it read since that checkpoint
    skip_batches: int = 0
    search_steps: int = DEFAULT_SEARCH_STEPS  # search/probe_learning_rate: per candidate
    # search_learning_rate: no candidate over this factor of the configured rates is tried
    # (the operator's, where the weights' growth says the rate is too high by so much)
    max_factor: float | None = None


@dataclass(frozen=True)
class Parsed:
    commands: tuple[CommandSpec, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # field -> the message


def parse(raw: object) -> Parsed:
    """The valid entries of `raw` (the file's `commands`), and a message for each bad one
    naming its field (`commands[2].step`) and what would be valid."""
    if raw is None:
        return Parsed()
    if not isinstance(raw, list):
        return Parsed(refused={"commands": "commands: expected a list"})
    commands: list[CommandSpec] = []
    refused: dict[str, str] = {}
    if len(raw) > MAX_COMMANDS:
        refused["commands"] = f"commands: at most {MAX_COMMANDS} entries, got {len(raw)}"
    seen: set[str] = set()
    for index, item in enumerate(raw[:MAX_COMMANDS]):
        where = f"commands[{index}]"
        try:
            command = _entry(item, where, seen)
        except ValueError as error:
            field_name = str(error).split(":", 1)[0]
            refused[field_name] = str(error)
            continue
        seen.add(command.id)
        commands.append(command)
    return Parsed(tuple(commands), refused)


def _entry(item: object, where: str, seen: set[str]) -> CommandSpec:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise ValueError(f"{where}.id: every command needs a non-empty string id")
    if item["id"] in seen:
        raise ValueError(f"{where}.id: {item['id']!r} is used twice")
    action = item.get("action")
    if action not in ACTIONS:
        raise ValueError(f"{where}.action: {action!r} is not one of {', '.join(ACTIONS)}")
    step = _count(item, "step", where, None, 0) if action == Command.ROLLBACK else None
    return CommandSpec(
        item["id"],
        str(action),
        step,
        _count(item, "skip_batches", where, 0, 0),
        _count(item, "search_steps", where, DEFAULT_SEARCH_STEPS, MIN_SEARCH_STEPS),
        _factor(item, "max_factor", where),
    )


def _factor(item: dict[str, object], key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: expected a number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{where}.{key}: must be over 0, got {value}")
    return float(value)


def _count(item: dict[str, object], key: str, where: str, default: int | None, least: int) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key}: expected an integer, got {value!r}")
    if value < least:
        raise ValueError(f"{where}.{key}: must be at least {least}, got {value}")
    return value
