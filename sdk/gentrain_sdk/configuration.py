"""The configuration the operator writes for a training program (its ConfigMap, mounted
at /etc/gentrain/config.yaml), read again at each milestone: the generation of the job's
spec and the hyperparameters in force, under the API's names (learningRate,
gradientClip, ...), each checked against the contract's catalogue."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gentrain_contract.hyperparameters import BY_API, Value
from gentrain_contract.vocabulary import Command as Action

DEFAULT_PATH = Path("/etc/gentrain/config.yaml")  # gentrain_operator.names.CONFIG_PATH
PATH_VARIABLE = "GENTRAIN_CONFIG"
MAX_BYTES = 1 << 20  # a ConfigMap holds at most 1 MiB
MAX_COMMANDS = 32  # spec.commands' maxItems
COMMANDS = tuple(str(a) for a in Action)


@dataclass(frozen=True)
class Command:
    """A one-shot command of the job's spec (spec.commands), applied once by id."""

    id: str
    action: str
    step: int | None = None  # rollback: the checkpoint step to return to
    skip_batches: int = 0


@dataclass
class Configuration:
    generation: int = 0
    hyperparameters: dict[str, Value] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # field -> why


def default_path() -> Path | None:
    """$GENTRAIN_CONFIG, or the operator's mount if it is there; None outside a job."""
    named = os.environ.get(PATH_VARIABLE)
    if named:
        return Path(named)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def read(path: Path, current: Configuration) -> Configuration:
    """The file's configuration; what cannot be read or is out of bounds is refused one
    field at a time, the value in force kept."""
    result = Configuration(current.generation, dict(current.hyperparameters), current.commands)
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
        raw = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        result.refused["config"] = f"cannot read {path}: {error}"
        return result
    if not isinstance(raw, dict):
        result.refused["config"] = f"{path} does not hold a mapping"
        return result
    generation = raw.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation >= 0:
        result.generation = generation
    result.commands = _commands(raw.get("commands"), result.refused)
    wanted = raw.get("hyperparameters") or {}
    if not isinstance(wanted, dict):
        result.refused["hyperparameters"] = "expected a mapping"
        return result
    for name, value in wanted.items():
        parameter = BY_API.get(str(name))
        if parameter is None:
            result.refused[str(name)] = f"{name}: not a hyperparameter gentrain knows"
            continue
        try:
            result.hyperparameters[parameter.api] = parameter.check(parameter.api, value)
        except ValueError as error:
            result.refused[parameter.api] = str(error)
    return result


def _commands(raw: object, refused: dict[str, str]) -> tuple[Command, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        refused["commands"] = "expected a list"
        return ()
    commands = []
    for index, item in enumerate(raw[:MAX_COMMANDS]):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            refused[f"commands[{index}]"] = "every command needs a string id"
            continue
        action = str(item.get("action"))
        if action not in COMMANDS:
            refused[f"commands[{index}]"] = f"{action!r} is not one of {', '.join(COMMANDS)}"
            continue
        step, skip = item.get("step"), item.get("skip_batches", 0)
        commands.append(
            Command(
                item["id"],
                action,
                step if isinstance(step, int) and not isinstance(step, bool) else None,
                skip if isinstance(skip, int) and not isinstance(skip, bool) else 0,
            )
        )
    return tuple(commands)
