"""Small files a program keeps beside its checkpoints, written so that a crash or a full
volume mid-write leaves the previous content, never a truncated one."""

from __future__ import annotations

import os
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Writes `text` aside, syncs it, and renames it over `path`. An OSError (a full or
    read-only volume) is the caller's; `path` then still holds what it held."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
