"""The run's history as TensorBoard event files, read back by TensorBoard's own reader:
every milestone's figures, each configuration change (the operator's remediation) and
each command as text, beyond the 20 milestones the job's status keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from gentrain_operator import trainer_config
from gentrain_sdk import Reporter
from gentrain_sdk.tensorboard import EventLog

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def write(config: Path, generation: int, rate: float, commands: list[Any] | None = None) -> None:
    spec: dict[str, Any] = {
        "model": {"family": "custom"},
        "training": {"maxSteps": 3000, "hyperparameters": {"learningRate": rate}},
        "commands": commands or [],
    }
    config.write_text(yaml.safe_dump(trainer_config.render(spec, generation)))


def test_milestones_changes_and_commands_are_in_the_event_files(tmp_path: Path) -> None:
    config, events = tmp_path / "config.yaml", tmp_path / "tensorboard"
    write(config, 1, 0.5)
    reporter = Reporter(0, config=config, events=events)
    milestones = 25  # more than the job's status keeps
    for index in range(1, milestones + 1):
        step = index * 100
        if index == 2:  # the operator's remediation, taken up at the next milestone
            write(config, 2, 0.05, [{"id": "r1-reinitialize", "action": "reinitialize"}])
        reporter.step(step, {"total": 3.0 / index})
        grid = tmp_path / "grid.png"  # a sample grid, darker at each milestone
        Image.new("RGB", (8, 4), (255 - 10 * index, 0, 0)).save(grid)
        reporter.milestone(step, {"validation_loss": 2.0 / index, "bleu": 0.1 * index}, [grid])
    assert reporter.history.tracker(EventLog) is not None
    reporter.close()

    # Every image kept (the reader samples 4 by default).
    read = event_accumulator.EventAccumulator(str(events), {event_accumulator.IMAGES: 0})
    read.Reload()
    losses = read.Scalars("loss_mean/total")
    assert [e.step for e in losses] == [i * 100 for i in range(1, milestones + 1)]
    assert losses[-1].value == pytest.approx(3.0 / milestones)
    grids = read.Images("samples/grid")
    assert [(e.step, e.width, e.height) for e in grids][-1] == (2500, 8, 4)
    assert len(grids) == milestones
    assert read.Scalars("validation_loss")[0].value == pytest.approx(2.0)
    assert read.Scalars("figure/bleu")[-1].value == pytest.approx(2.5)
    rates = [(e.step, e.value) for e in read.Scalars("hyperparameter/learningRate")]
    assert rates == [(0, 0.5), (200, pytest.approx(0.05))]
    texts = read.Tensors("configuration/text_summary")
    said = [t.tensor_proto.string_val[0].decode() for t in texts]
    assert said[-1] == "generation 2: learningRate 0.5 -> 0.05", said
    command = read.Tensors("commands/text_summary")[0]
    assert command.step == 200
    assert command.tensor_proto.string_val[0].decode() == (
        "r1-reinitialize (reinitialize): refused: unsupported"
    )
