"""Checkpoints: `<dir>/step-<N>/` with the full state and a manifest carrying its checksum.

Written into a temporary directory and renamed, so a crash mid-write never damages an
earlier checkpoint; verified on load, so a damaged one is skipped with a warning; the
last `keep` are kept, and what the operator's verdicts ask for (`Retention`) never
rotates out; a rollback moves the checkpoints after its target aside (`abandoned-<id>/`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .config import UNJUDGED_SPARE, Retention

log = logging.getLogger(__name__)
STATE, MANIFEST = "state.pt", "manifest.json"
_NAME = re.compile(r"^step-(\d+)$")


class DamagedCheckpointError(RuntimeError):
    pass


class VolumeFullError(OSError):
    """The checkpoint volume has no room for the next checkpoint; the partial one was
    removed and every earlier checkpoint is intact."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _no_space(error: BaseException) -> bool:
    """Whether the error, or one it was raised from, is a full volume or quota."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return True
        current = current.__cause__ or current.__context__
    return False


class CheckpointStore:
    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep
        self.damaged = 0
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, step: int) -> Path:
        return self.directory / f"step-{step}"

    def steps(self) -> list[int]:
        found = (_NAME.match(p.name) for p in self.directory.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def save(
        self,
        step: int,
        state: dict[str, Any],
        meta: dict[str, Any],
        pictures: Iterable[Path] = (),
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """The checkpoint of `step`, with `pictures` moved into it and `files` (name ->
        text) written into it, all before it appears under its name."""
        tmp = self.directory / f".tmp-step-{step}-{os.getpid()}"
        try:
            return self._write(step, tmp, state, meta, pictures, files or {})
        except (OSError, RuntimeError) as error:
            # torch.save reports a failed write as a RuntimeError wrapping the errno.
            if not _no_space(error):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            kept = self.steps()
            raise VolumeFullError(
                errno.ENOSPC,
                f"checkpoint volume full: no room for step {step} in {self.directory} "
                f"({shutil.disk_usage(self.directory).free >> 20} MiB free); the checkpoints "
                f"kept are {', '.join(map(str, kept)) or 'none'}",
            ) from error

    def _write(
        self,
        step: int,
        tmp: Path,
        state: dict[str, Any],
        meta: dict[str, Any],
        pictures: Iterable[Path],
        files: Mapping[str, str],
    ) -> Path:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        # Through a Python file: a failed write then carries its errno (ENOSPC) as the
        # cause of torch's error, which otherwise names only a stream position.
        with (tmp / STATE).open("wb") as f:
            torch.save(state, f)
        _fsync(tmp / STATE)
        for picture in pictures:
            if picture.exists():
                shutil.move(str(picture), tmp / picture.name)
        for name, content in files.items():
            (tmp / name).write_text(content)
            _fsync(tmp / name)
        manifest = {
            "format": 1,
            "step": step,
            "sha256": _sha256(tmp / STATE),
            "bytes": (tmp / STATE).stat().st_size,
            "created": time.time(),
            **meta,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        _fsync(tmp / MANIFEST)
        final = self.path(step)
        if final.exists():  # the same step reached again after a rollback
            old = self.directory / f".old-step-{step}-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync(self.directory)
        return final

    def manifest(self, step: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path(step) / MANIFEST).read_text())
        return data

    def load(self, step: int) -> dict[str, Any]:
        directory = self.path(step)
        try:
            manifest = self.manifest(step)
            actual = _sha256(directory / STATE)
        except (OSError, ValueError) as error:
            raise DamagedCheckpointError(
                f"checkpoint {directory} is unreadable: {error}"
            ) from error
        if actual != manifest.get("sha256"):
            raise DamagedCheckpointError(
                f"checkpoint {directory} is damaged: checksum {actual[:12]} != {str(manifest.get('sha256'))[:12]}"
            )
        state: dict[str, Any] = torch.load(directory / STATE, map_location="cpu", weights_only=True)
        return state

    def latest(self, at_most: int | None = None) -> tuple[int, dict[str, Any]] | None:
        """The newest checkpoint that loads, skipping damaged ones with a warning."""
        for step in reversed(self.steps()):
            if at_most is not None and step > at_most:
                continue
            try:
                return step, self.load(step)
            except DamagedCheckpointError as error:
                self.damaged += 1
                log.warning("%s; trying an older one", error)
        return None

    def abandon_after(self, step: int, reason: str) -> list[int]:
        """Moves every checkpoint newer than `step` into `abandoned-<reason>/`: the
        timeline a rollback leaves. Not deleted (a person may want it), but out of
        `steps()`, so a restart resumes on the timeline the rollback chose."""
        later = [s for s in self.steps() if s > step]
        if not later:
            return []
        # `reason` comes from the job (a command id): only a safe slug of it names a folder.
        aside = self.directory / f"abandoned-{re.sub(r'[^a-z0-9-]', '-', reason.lower())[:63]}"
        aside.mkdir(exist_ok=True)
        for s in later:
            target = aside / self.path(s).name
            shutil.rmtree(target, ignore_errors=True)  # a retry of the same rollback
            self.path(s).rename(target)
        _fsync(self.directory)
        return later

    def rotate(self, retention: Retention) -> list[int]:
        """Deletes every checkpoint but the newest `keep`, the pinned ones, and the
        newest `keep + UNJUDGED_SPARE` of those the operator has not judged yet (see
        Retention). A `judged_through` past the newest checkpoint was judged on a timeline
        a rollback abandoned: the newest pin stands in for it until a verdict on this one
        arrives."""
        steps = self.steps()
        keep = set(steps[-self.keep :]) | retention.pinned
        judged = retention.judged_through
        if judged is not None:
            if steps and judged > steps[-1]:
                judged = max(retention.pinned, default=-1)
            unjudged = [s for s in steps if s > judged]
            keep |= set(unjudged[-(self.keep + UNJUDGED_SPARE) :])
        removed = [s for s in steps if s not in keep]
        for step in removed:
            shutil.rmtree(self.path(step), ignore_errors=True)
        for leftover in self.directory.glob(".tmp-step-*"):
            if not leftover.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(leftover, ignore_errors=True)
        return removed
