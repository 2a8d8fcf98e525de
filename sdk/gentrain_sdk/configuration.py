"""The configuration the operator writes for a training program (its ConfigMap, mounted
at /etc/gentrain/config.yaml), read again at each milestone: the generation of the job's
spec and the hyperparameters in force, under the API's names (learningRate,
gradientClip, ...), each checked against the contract's catalogue."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gentrain_contract import commands, program
from gentrain_contract.commands import CommandSpec
from gentrain_contract.hyperparameters import BY_API, Value

DEFAULT_PATH = Path(program.CONFIG_PATH)
MAX_BYTES = 1 << 20  # a ConfigMap holds at most 1 MiB


@dataclass
class Configuration:
    generation: int = 0
    hyperparameters: dict[str, Value] = field(default_factory=dict)
    commands: tuple[CommandSpec, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # field -> why


def default_path() -> Path | None:
    """$GENTRAIN_CONFIG, or the operator's mount if it is there; None outside a job."""
    named = os.environ.get(program.CONFIG_VARIABLE)
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
    parsed = commands.parse(raw.get("commands"))  # a bad entry is refused, the rest kept
    result.commands = parsed.commands
    result.refused.update(parsed.refused)
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
