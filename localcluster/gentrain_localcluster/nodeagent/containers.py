"""One container of a pod: its process, restarts, probes and reported state."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import memory
from .memory import MemoryCgroup
from .probes import ProbeState
from .volumes import Mount

log = logging.getLogger("nodeagent.container")
MAX_TERMINATION_MESSAGE = 4096
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LaunchSpec:
    """What the sandbox needs to start the container's process."""

    argv: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    workdir: str | None
    netns: str | None
    uid: int | None
    gid: int | None
    groups: list[int]
    memory_limit: int | None = None  # bytes: resources.limits.memory


@dataclass
class Container:
    spec: Mapping[str, Any]
    directory: Path
    is_init: bool = False
    process: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}}
    )
    last_state: dict[str, Any] = field(default_factory=dict)
    backoff: float = BACKOFF_START
    restart_at: float = 0.0
    readiness: ProbeState = field(init=False)
    liveness: ProbeState = field(init=False)
    startup: ProbeState = field(init=False)
    cgroup: MemoryCgroup | None = None
    # What the running process was started with: an exec probe runs with the same.
    launch: LaunchSpec | None = None

    def __post_init__(self) -> None:
        self.readiness = ProbeState(self.spec.get("readinessProbe"), initially=False)
        self.liveness = ProbeState(self.spec.get("livenessProbe"), initially=True)
        self.startup = ProbeState(self.spec.get("startupProbe"), initially=False)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def log_path(self, restart: int | None = None) -> Path:
        count = self.restart_count if restart is None else restart
        return self.directory / "logs" / f"{count}.log"

    @property
    def termination_log(self) -> Path:
        return self.directory / "termination-log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, launch: LaunchSpec, expose: list[str], keep: list[str]) -> None:
        self.launch = launch
        self.directory.mkdir(parents=True, exist_ok=True)
        self.termination_log.write_bytes(b"")
        self.termination_log.chmod(0o666)
        mounts = [
            {"source": str(m.source), "target": m.target, "read_only": m.read_only}
            for m in launch.mounts
        ]
        message_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        mounts.append(
            {"source": str(self.termination_log), "target": message_path, "read_only": False}
        )
        self.cgroup = None
        if launch.memory_limit is not None and memory.available():
            # <pod uid>-<container>-<run>: each run starts with a fresh OOM count.
            pod_uid = self.directory.parent.parent.name
            self.cgroup = MemoryCgroup(
                f"{pod_uid}-{self.name}-{self.restart_count}", launch.memory_limit
            )
        spec_file = self.directory / "launch.json"
        spec_file.write_text(
            json.dumps(
                {
                    "argv": launch.argv,
                    "env": launch.env,
                    "mounts": mounts,
                    "workdir": launch.workdir,
                    "netns": launch.netns,
                    "hostname": launch.env.get("HOSTNAME", ""),
                    "uid": launch.uid,
                    "gid": launch.gid,
                    "groups": launch.groups,
                    "expose": expose if launch.uid not in (None, 0) else [],
                    "keep": keep,
                    "staging": str(self.directory / "exposed"),
                    "cgroup_procs": self.cgroup.procs_file if self.cgroup else None,
                }
            )
        )
        self.log_path().parent.mkdir(parents=True, exist_ok=True)
        with self.log_path().open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gentrain_localcluster.nodeagent.sandbox", str(spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
            )
        # Recorded so that `down`, or a restarted agent, can stop an orphaned container.
        (self.directory / "pid").write_text(str(self.process.pid))
        started = time.monotonic()
        for probe in (self.readiness, self.liveness, self.startup):
            probe.started_at = started
            probe.successes = probe.failures = 0
        self.readiness.passing = self.readiness.probe is None
        self.startup.passing = self.startup.probe is None
        self.state = {"running": {"startedAt": now_rfc3339()}}

    def exec_context(self) -> tuple[list[str], dict[str, str]] | None:
        """How to run a command inside the running container, as a kubelet's exec does:
        its mount, network and host-name namespaces (its files, its /etc/hosts and
        resolv.conf, its address), its user, its environment. None while it is not
        running."""
        if not self.running or self.process is None or self.launch is None:
            return None
        # --wd: the container's own working directory.
        prefix = ["nsenter", "-t", str(self.process.pid), "-m", "-n", "-u", "--wd"]
        if self.launch.uid is not None:
            prefix += [f"--setuid={self.launch.uid}", f"--setgid={self.launch.gid or 0}"]
        return prefix, dict(self.launch.env)

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, grace_seconds: float | Callable[[], float]) -> None:
        """SIGTERM, then SIGKILL once the grace period is over. Given as a function, the
        grace period is read again while it runs: a pod deleted again with a shorter one
        (as a kubelet honours) is killed sooner."""
        grace = grace_seconds if callable(grace_seconds) else (lambda: grace_seconds)
        self.signal(signal.SIGTERM)
        started = time.monotonic()
        while self.running and time.monotonic() < started + grace():
            time.sleep(0.1)
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.reap(reason_if_killed="Error")

    def termination_message(self, exit_code: int) -> str:
        try:
            message = self.termination_log.read_bytes()[:MAX_TERMINATION_MESSAGE].decode(
                errors="replace"
            )
        except FileNotFoundError:
            message = ""
        if (
            not message
            and exit_code != 0
            and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        ):
            lines = self.log_path().read_text(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        return message

    def reap(self, reason_if_killed: str = "Error") -> int | None:
        """Records the exit of a finished process; returns its exit code (None if running)."""
        if self.process is None or "terminated" in self.state:
            return None
        code = self.process.poll()
        if code is None:
            return None
        exit_code = code if code >= 0 else 128 - code
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else reason_if_killed,
            "startedAt": self.state.get("running", {}).get("startedAt"),
            "finishedAt": now_rfc3339(),
            "containerID": f"gentrain://{self.process.pid}",
        }
        if exit_code != 0 and self.cgroup is not None and self.cgroup.oom_killed():
            terminated["reason"] = "OOMKilled"
        if self.cgroup is not None:
            peak = self.cgroup.peak_bytes() or 0
            log.info(
                "container %s exited %d (%s); peak memory %d MiB of its %d MiB limit",
                self.name,
                exit_code,
                terminated["reason"],
                peak >> 20,
                self.cgroup.limit_bytes >> 20,
            )
            self.cgroup.remove()
            self.cgroup = None
        message = self.termination_message(exit_code)
        if message:
            terminated["message"] = message
        self.state = {"terminated": terminated}
        return exit_code

    def schedule_restart(self) -> None:
        """Kubelet-style crash-loop backoff: 10 s doubling to 5 minutes."""
        self.last_state = self.state
        self.restart_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.state = {
            "waiting": {"reason": "CrashLoopBackOff", "message": f"back-off restarting {self.name}"}
        }

    def status(self, image: str) -> dict[str, Any]:
        ready = self.running and self.readiness.passing and self.startup.passing
        status: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": "",
            "ready": bool(ready),
            "restartCount": self.restart_count,
            "started": bool(self.running and self.startup.passing),
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.process is not None:
            status["containerID"] = f"gentrain://{self.process.pid}"
        return status
