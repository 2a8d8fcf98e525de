"""The final milestone, kept beside the final checkpoint. A pod lost between its last
checkpoint and the operator's scrape of it is replaced by one that resumes at the end with
no step left to train; it publishes this again (seen on the real node: the job ended
Succeeded with its final milestone never recorded)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from gentrain_sdk.files import replace_text

log = logging.getLogger("gentrain.trainer")
FILE = "final-milestone.json"  # in the final checkpoint's directory
Series = dict[str, dict[tuple[str, ...], float]]


def text(series: Mapping[str, Mapping[tuple[str, ...], float]]) -> str:
    """The milestone's series as the file holds them."""
    entries = {
        name: [[list(labels), value] for labels, value in by_labels.items()]
        for name, by_labels in series.items()
    }
    return json.dumps(entries)


def keep(directory: Path, series: Mapping[str, Mapping[tuple[str, ...], float]]) -> None:
    """Writes the milestone's series into `directory`; a failure is logged (the run's
    result stands without it)."""
    try:
        replace_text(directory / FILE, text(series))
    except OSError as error:
        log.warning("final milestone not kept in %s: %s", directory, error)


def read(directory: Path) -> Series | None:
    """The series kept in `directory`, or None where none was (or it cannot be read)."""
    try:
        entries = json.loads((directory / FILE).read_text())
        return {
            name: {tuple(labels): float(value) for labels, value in by_labels}
            for name, by_labels in entries.items()
        }
    except (OSError, ValueError, TypeError, AttributeError):
        return None
