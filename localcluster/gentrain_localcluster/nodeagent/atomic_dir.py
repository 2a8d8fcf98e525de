"""The kubelet's atomic writer: a volume's files change all at once, never half-written.

Files live in a timestamped directory; `..data` is a symlink to it and each visible name a
symlink through `..data`. An update writes a new directory and renames a new `..data`
link over the old one, so a reader sees either the old set of files or the new one.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Mapping
from pathlib import Path


def current(directory: Path) -> dict[str, bytes]:
    data = directory / "..data"
    if not data.exists():
        return {}
    return {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()}


def write(directory: Path, files: Mapping[str, bytes], mode: int = 0o644) -> bool:
    """Makes `directory` show exactly `files`. Returns whether anything changed."""
    directory.mkdir(parents=True, exist_ok=True)
    if current(directory) == dict(files) and (directory / "..data").exists():
        return False
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        path = stamp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    stamp.chmod(0o755)
    data_link = directory / "..data"
    old_target = data_link.readlink() if data_link.is_symlink() else None
    tmp_link = directory / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp.name)
    tmp_link.rename(directory / "..data")
    top_names = {name.split("/", 1)[0] for name in files}
    for name in top_names:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in top_names:
            entry.unlink()
    if old_target is not None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(directory / old_target)
    return True
