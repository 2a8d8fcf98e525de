"""The ids of the one-shot commands a program has applied, kept beside its checkpoints
(`program.APPLIED_COMMANDS_FILE`), so that a restarted program never applies a command a
second time: starting afresh twice on one command throws away the run it started."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from .files import replace_text

log = logging.getLogger("gentrain_sdk")
MAX_BYTES = 1 << 20  # 32 commands' ids are far less; a larger file is not ours


class AppliedCommands:
    """The applied ids, read from `path` (None: kept in memory only).

    A damaged file (cut short by a full volume, or not a list of ids) counts every command
    the configuration holds (`configured`) as applied: a pending command is lost, never
    one applied twice, and the program goes on."""

    def __init__(self, path: Path | None, configured: Iterable[str] = ()) -> None:
        self.path = path
        self.ids = _read(path, set(configured))

    def __contains__(self, command_id: object) -> bool:
        return command_id in self.ids

    def record(self, command_id: str, *, write: bool = True) -> None:
        """Adds `command_id`; with `write`, saves the ids (aside, then renamed: a crash or
        a full volume mid-write leaves the previous list, never a truncated one). An
        OSError of the write is the caller's: the id stays recorded in memory."""
        self.ids.add(command_id)
        if write and self.path is not None:
            replace_text(self.path, json.dumps(sorted(self.ids)))


def _read(path: Path | None, configured: set[str]) -> set[str]:
    if path is None or not path.exists():
        return set()
    try:
        with path.open("rb") as handle:
            ids = json.loads(handle.read(MAX_BYTES + 1))
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            return set(ids)
    except (OSError, ValueError):  # ValueError: not JSON, not UTF-8
        pass
    log.warning(
        "%s is damaged: counting the %d commands in the configuration as applied",
        path,
        len(configured),
    )
    return set(configured)
