"""Where the run's history goes, beyond the 20 milestones the job's status keeps: every
milestone's figures and pictures, each change of the configuration (the job's spec: yours, or the
operator's remediation) and each one-shot command with its outcome.

Two trackers users already read, each written when it is there:
- TensorBoard event files beside the checkpoints (`tensorboard.EventLog`; the
  `[tensorboard]` extra, always in the built-in trainer);
- an MLflow run, when MLFLOW_TRACKING_URI is set (`mlflow_run.MlflowRun`; the `[mlflow]`
  extra, always in the built-in trainer).
A tracker that fails is logged, never raised: the history is a convenience, the run is not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from . import tensorboard
from .mlflow_run import MlflowRun
from .tensorboard import EventLog, Series

log = logging.getLogger("gentrain_sdk")


class Tracker(Protocol):
    def milestone(self, step: int, series: Series) -> None: ...

    def pictures(self, step: int, images: Mapping[str, Any]) -> None: ...

    def configuration(
        self, step: int, generation: int, hyperparameters: Mapping[str, Any]
    ) -> None: ...

    def command(self, step: int, command_id: str, action: str, refused: str | None) -> None: ...

    def close(self, finished: bool) -> None: ...


def read_pictures(paths: Iterable[Path]) -> dict[str, Any]:
    """PNG files as RGB images (PIL), by file stem; a file that cannot be read is logged
    and left out, as is every picture where pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        log.warning("pictures left out of the run's history: pillow is not installed")
        return {}
    images: dict[str, Any] = {}
    for path in paths:
        try:
            with Image.open(path) as picture:
                images[Path(path).stem] = picture.convert("RGB")
        except OSError as error:
            log.warning("picture %s left out of the run's history: %s", path, error)
    return images


class History:
    """Every tracker the run writes to, told the same things."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        # The configuration last told (the first one is told whatever its generation).
        self.told: tuple[int, dict[str, Any]] | None = None

    @classmethod
    def open(cls, events: Path | None, checkpoints: Path | None, run_name: str | None) -> History:
        """TensorBoard events in `events` (when given), and an MLflow run (when
        MLFLOW_TRACKING_URI is set) named `run_name`, which a program restarted on the same
        `checkpoints` continues."""
        trackers: list[Tracker] = []
        if events is not None and (log := EventLog.open(events)) is not None:
            trackers.append(log)
        if (run := MlflowRun.open(run_name, checkpoints)) is not None:
            trackers.append(run)
        return cls(trackers)

    @classmethod
    def beside(cls, checkpoints: Path, run_name: str | None) -> History:
        """The history of a job's program: events under its checkpoint directory."""
        return cls.open(checkpoints / tensorboard.DIRECTORY, checkpoints, run_name)

    def tracker(self, kind: type[Any]) -> Any | None:
        return next((t for t in self.trackers if isinstance(t, kind)), None)

    def milestone(self, step: int, series: Series) -> None:
        for tracker in self.trackers:
            tracker.milestone(step, series)

    def pictures(self, step: int, paths: Iterable[Path]) -> None:
        """A milestone's pictures (PNG files, read now: they may be gone by the time a
        tracker writes), each under its file's stem (`samples`, `latent-pca`)."""
        if not self.trackers:
            return
        images = read_pictures(paths)
        if images:
            for tracker in self.trackers:
                tracker.pictures(step, images)

    def configuration(self, step: int, generation: int, hyperparameters: Mapping[str, Any]) -> None:
        """The configuration in force from `step`; told only when it is new."""
        current = (generation, dict(hyperparameters))
        if self.told is not None and self.told == current:
            return
        self.told = current
        for tracker in self.trackers:
            tracker.configuration(step, generation, hyperparameters)

    def command(self, step: int, command_id: str, action: str, refused: str | None) -> None:
        for tracker in self.trackers:
            tracker.command(step, command_id, action, refused)

    def close(self, finished: bool = False) -> None:
        """Flushes and closes every tracker; `finished`: the run is over (an MLflow run is
        then marked FINISHED, else KILLED: the attempt that resumes it marks it RUNNING)."""
        for tracker in self.trackers:
            tracker.close(finished)
        self.trackers = []
