"""The run's history as TensorBoard event files, beside its checkpoints (one of the
trackers of `history`): every milestone's figures as scalars, its pictures (the built-in
trainer's samples) as images, and each change of the configuration (the job's spec:
yours, or the operator's remediation) and each command as text. The job's status keeps
the last 20 milestones; the event files keep them all, for whoever points TensorBoard at
the volume.

Written when the event writer (`tensorboardX`, the `[tensorboard]` extra) is installed:
the built-in trainer always has it; a program without it writes none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("gentrain_sdk")
DIRECTORY = "tensorboard"  # under the checkpoint directory
PREFIX = "gentrain_milestone_"
Series = Mapping[str, Mapping[tuple[str, ...], float]]


def tag(name: str, labels: tuple[str, ...]) -> str:
    """A series' TensorBoard tag: `loss_mean/generator` for
    gentrain_milestone_loss_mean{component="generator"}."""
    return "/".join((name.removeprefix(PREFIX), *labels))


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What a new configuration changed, as `name old -> new` (`unset` where it was not
    set), by name: the text both trackers write for a change."""
    return [
        f"{name} {before.get(name, 'unset')} -> {value}"
        for name, value in sorted(after.items())
        if before.get(name) != value
    ]


def numeric(hyperparameters: Mapping[str, Any]) -> dict[str, float]:
    """The hyperparameters that are numbers (not flags or names), as floats."""
    return {
        name: float(value)
        for name, value in hyperparameters.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class EventLog:
    """Event files in `directory`; a write that fails (a full volume) is logged, never
    raised: the history is a convenience, the run is not."""

    def __init__(self, directory: Path) -> None:
        from tensorboardX import SummaryWriter

        directory.mkdir(parents=True, exist_ok=True)
        self.writer: Any = SummaryWriter(str(directory), flush_secs=10)
        self.hyperparameters: dict[str, Any] = {}

    @classmethod
    def open(cls, directory: Path) -> EventLog | None:
        """The log in `directory`, or None where the event writer is not installed or the
        directory cannot be made."""
        try:
            return cls(directory)
        except ImportError:
            return None
        except OSError as error:
            log.warning("no TensorBoard events in %s: %s", directory, error)
            return None

    def milestone(self, step: int, series: Series) -> None:
        """A milestone's series (the exporter's, by metric name and label values)."""
        for name, by_labels in series.items():
            for labels, value in by_labels.items():
                if math.isfinite(value):
                    self.writer.add_scalar(tag(name, labels), value, step)
        self._flush()

    def pictures(self, step: int, images: Mapping[str, Any]) -> None:
        """A milestone's pictures (name -> RGB image, height x width x 3), as images
        `samples/<name>` at `step`."""
        import numpy as np

        for name, image in images.items():
            self.writer.add_image(f"samples/{name}", np.asarray(image), step, dataformats="HWC")
        self._flush()

    def configuration(self, step: int, generation: int, hyperparameters: Mapping[str, Any]) -> None:
        """The configuration taken up at `step`: what changed, as text, and every numeric
        hyperparameter as a scalar (`hyperparameter/learningRate`)."""
        changed = changes(self.hyperparameters, hyperparameters)
        if changed:
            self.writer.add_text(
                "configuration", f"generation {generation}: {'; '.join(changed)}", step
            )
        for name, value in numeric(hyperparameters).items():
            self.writer.add_scalar(f"hyperparameter/{name}", value, step)
        self.hyperparameters = dict(hyperparameters)
        self._flush()

    def command(self, step: int, command_id: str, action: str, refused: str | None) -> None:
        """A command carried out at `step`, or refused (`refused`: why)."""
        outcome = "applied" if refused is None else f"refused: {refused}"
        self.writer.add_text("commands", f"{command_id} ({action}): {outcome}", step)
        self._flush()

    def _flush(self) -> None:
        try:
            self.writer.flush()
        except OSError as error:
            log.warning("TensorBoard events not written: %s", error)

    def close(self, finished: bool = False) -> None:
        """Flushes and closes the files (a run resumed later appends to new ones)."""
        try:
            self.writer.close()
        except OSError as error:
            log.warning("TensorBoard events not written: %s", error)
