"""Helper processes the tests start (a tracking server, Kueue, prometheus-operator)."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period; reaped."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
