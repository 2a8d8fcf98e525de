"""A container's memory limit, enforced as a kubelet's runtime does: one memory cgroup per
container run, whose limit is the container's `resources.limits.memory`; the kernel's OOM
killer ends a container that goes over it, and the agent reports `OOMKilled`.

cgroup v1 only (the development host's); where there is no writable v1 memory controller
(a cgroup v2 host, an unprivileged agent) limits are not enforced, and `available()` says
so once in the agent's log."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path

log = logging.getLogger("nodeagent.memory")
V1_MOUNT = Path("/sys/fs/cgroup/memory")


@cache
def parent() -> Path | None:
    """The cgroup under which containers' cgroups are made: a child of the agent's own."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = V1_MOUNT / path.lstrip("/")
            if (base / "memory.limit_in_bytes").exists() and os.access(base, os.W_OK):
                return base / "gentrain-containers"
    log.warning("no writable cgroup v1 memory controller: container memory limits not enforced")
    return None


def available() -> bool:
    return parent() is not None


class MemoryCgroup:
    """One container run's cgroup. The container's first process joins it (`procs_file`)
    before it execs, so everything the container starts is counted and limited."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        root = parent()
        assert root is not None, "check available() first"
        root.mkdir(exist_ok=True)
        self.path = root / name
        self.path.mkdir(exist_ok=True)
        (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.limit_bytes = limit_bytes

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for going over the limit."""
        try:
            fields = dict(
                line.split() for line in (self.path / "memory.oom_control").read_text().splitlines()
            )
        except OSError:
            return False
        return int(fields.get("oom_kill", "0")) > 0

    def peak_bytes(self) -> int | None:
        try:
            return int((self.path / "memory.max_usage_in_bytes").read_text())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        """The container has exited: what it left running goes with it (see
        `end_every_process`), then the cgroup."""
        end_every_process(self.path)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def end_every_process(cgroup: Path, wait_seconds: float = 5.0) -> None:
    """Kills every process left in a container's cgroup, as a runtime does when the
    container ends (its PID namespace goes with it). A process group is not enough:
    torchrun starts each rank in a session of its own, and a rank blocked in a collective
    (deaf to SIGTERM) outlived its pod with parent 1 when the agent killed torchrun."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            pids = [int(line) for line in (cgroup / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def end_leftovers(pod_uids: Iterable[str]) -> None:
    """`down`: the cgroups (and their processes) of these pods' containers that a killed
    agent left behind. Other clusters' containers on this host are not touched."""
    root = parent()
    if root is None or not root.is_dir():
        return
    for uid in pod_uids:
        for cgroup in root.glob(f"{uid}-*"):
            end_every_process(cgroup)
            with contextlib.suppress(OSError):
                cgroup.rmdir()
