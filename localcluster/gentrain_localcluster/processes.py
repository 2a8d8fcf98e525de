"""Background processes with pid files and log files, started and stopped by name.

Every component runs in its own session (process group), so that stopping it also stops
whatever it spawned, and no process outlives `down`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class ComponentError(RuntimeError):
    """A component failed to start or died; the message carries its log tail."""


class Supervisor:
    def __init__(self, state_dir: Path) -> None:
        self.pid_dir = state_dir / "pids"
        self.log_dir = state_dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if (pid := self.pid(name)) is not None:
            raise ComponentError(f"{name} is already running (pid {pid})")
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        self.pid_file(name).write_text(str(process.pid))
        return process.pid

    def pid(self, name: str) -> int | None:
        """The component's pid while it runs; None (and the stale pid file removed) if not."""
        path = self.pid_file(name)
        try:
            pid = int(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            path.unlink(missing_ok=True)
            return None
        return pid

    def names(self) -> list[str]:
        if not self.pid_dir.exists():
            return []
        return sorted(p.stem for p in self.pid_dir.glob("*.pid"))

    def stop(self, name: str, grace_seconds: float = 10.0) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        self.pid_file(name).unlink(missing_ok=True)

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_file(name)})"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self, name: str) -> None:
        if self.pid(name) is None:
            raise ComponentError(
                f"{name} exited; last lines of {self.log_file(name)}:\n{self.log_tail(name)}"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process counts as gone once reaped.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
