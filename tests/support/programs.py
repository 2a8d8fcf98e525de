"""Users' example programs (examples/sdk/) run in the test's process, with what each
milestone published read back as the operator reads it."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_operator import snapshot, trainer_config
from gentrain_sdk import Reporter

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sdk"


def run_program(
    monkeypatch: pytest.MonkeyPatch,
    program: Path,
    *argv: str,
    between: Callable[[int], None] | None = None,
) -> list[Any]:
    """`program`'s main to its end (no metrics port); the milestone a scrape read right
    after each, parsed by the operator's parser. `between(n)` runs after the n-th."""
    records: list[Any] = []
    publish = Reporter.milestone

    def milestone_then_scrape(self: Reporter, step: int, figures: Any = None) -> None:
        publish(self, step, figures)
        records.append(snapshot.milestone(snapshot.parse(self.exposition(), 0.0)))
        if between is not None:
            between(len(records))

    monkeypatch.setattr(Reporter, "milestone", milestone_then_scrape)
    runpy.run_path(str(program))["main"](["--port", "0", *argv])
    return records


def rates_reported(monkeypatch: pytest.MonkeyPatch) -> dict[int, float]:
    """The learning rate each step reported (filled in as the program runs)."""
    rates: dict[int, float] = {}
    report = Reporter.step

    def step_and_keep_rate(self: Reporter, step: int, loss: Any, **figures: Any) -> None:
        report(self, step, loss, **figures)
        rates[step] = float(figures["learning_rates"])

    monkeypatch.setattr(Reporter, "step", step_and_keep_rate)
    return rates


def final_validation_loss(monkeypatch: pytest.MonkeyPatch, program: Path, *argv: str) -> float:
    """`program` run untouched by any operator (no configuration): its last milestone's
    validation loss."""
    with monkeypatch.context() as scoped:
        scoped.delenv("GENTRAIN_CONFIG", raising=False)
        records = run_program(scoped, program, *argv)
    return float(records[-1]["validation_loss"])


class Job:
    """The job a program runs under, in-process: its checkpoint directory and the
    configuration file the operator would write ($GENTRAIN_CHECKPOINT_DIR,
    $GENTRAIN_CONFIG), rendered from `spec` at each `write(generation)`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path, spec: Any) -> None:
        self.checkpoints, self.config, self.spec = (
            directory / "checkpoints",
            directory / "config.yaml",
            spec,
        )
        monkeypatch.setenv("GENTRAIN_CHECKPOINT_DIR", str(self.checkpoints))
        monkeypatch.setenv("GENTRAIN_CONFIG", str(self.config))
        self.write(1)

    def write(self, generation: int) -> None:
        self.config.write_text(yaml.safe_dump(trainer_config.render(self.spec, generation)))


def rollbacks(early: int, late: int) -> list[dict[str, Any]]:
    """Two rollback commands: to `early` (before any checkpoint: refused) and to `late`."""
    return [
        {"id": "r1-early", "action": "rollback", "step": early},
        {"id": "r1-rollback", "action": "rollback", "step": late},
    ]


def rate_checked_after_first_milestone(
    monkeypatch: pytest.MonkeyPatch, directory: Path, max_steps: int, rate: float
) -> Callable[[int], None]:
    """A custom job at `rate` (its configuration written); what to run between milestones
    to send it the operator's rate check after the first (20 probe steps per candidate)."""
    spec: dict[str, Any] = {
        "model": {"family": "custom"},
        "training": {"maxSteps": max_steps, "hyperparameters": {"learningRate": rate}},
    }
    job = Job(monkeypatch, directory, spec)

    def check(milestones: int) -> None:
        if milestones == 1:
            spec["commands"] = [{"id": "r1-0", "action": "probe_learning_rate", "searchSteps": 20}]
            job.write(2)

    return check
