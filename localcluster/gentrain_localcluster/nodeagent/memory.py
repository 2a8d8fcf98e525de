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
        # Fails while a stray process of the container lives on; `down` clears what is left.
        with contextlib.suppress(OSError):
            self.path.rmdir()
