"""Fuzz targets for the two parsers that read what a user controls: the exposition a
trainer pod serves (read by the operator) and the configuration file the trainer reads at
start and at every milestone. Each target returns for any input; an exception other than
the documented refusal is a bug (it would stop a job's monitor, or crash the trainer).
Imports no torch, so that the fuzzer's process starts in a second."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gentrain_operator import snapshot
from gentrain_operator.json_values import json_safe
from gentrain_operator.milestones import process
from gentrain_trainer import config, live_config

INT64 = (-(2**63), 2**63 - 1)
JOB: dict[str, Any] = {
    "metadata": {"name": "fuzz", "namespace": "n", "generation": 1},
    "spec": {
        "model": {"family": "gan"},
        "dataset": {"name": "ring8"},
        "training": {"maxSteps": 2000},
        "checkpoints": {"interval": 100},
    },
    "status": {},
}


def _check_api_json(value: Any, where: str = "status") -> None:
    """What the API server accepts: JSON without NaN/Infinity, integers within int64."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise AssertionError(f"{where}: {value} does not fit an int64")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_api_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_api_json(item, f"{where}[{index}]")


def exposition(data: bytes) -> None:
    """The monitor's path from a scrape body to the status PATCH."""
    text = data.decode("utf-8", errors="replace")
    try:
        parsed = snapshot.parse(text, 0.0)
    except ValueError:  # reported as MetricsAvailable=False
        return
    record = snapshot.milestone(parsed)
    if record is None:
        return
    outcome = process(record, JOB, now=0.0)
    _check_api_json(json_safe(outcome.status))
    if outcome.spec is not None:
        _check_api_json(json_safe(outcome.spec), "spec")


_FILE = Path(tempfile.mkdtemp(prefix="gentrain-fuzz-")) / "config.yaml"


def trainer_config(data: bytes) -> None:
    """The trainer's start-up read (refuses with ConfigError), and its live reloads and
    pre-rotation reads (which refuse nothing: a bad value keeps the old one)."""
    _FILE.write_bytes(data)
    with contextlib.suppress(config.ConfigError):
        config.load(_FILE)
    live_config.reload(_FILE, "gan", {"generator_lr": 1e-4, "discriminator_lr": 1e-4})
    live_config.retention(_FILE)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "exposition": exposition,
    "trainer_config": trainer_config,
}
