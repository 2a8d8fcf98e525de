"""A real MLflow tracking server (from PyPI, SQLite backend), in its own environment
(.tools/mlflow, made by scripts/setup.sh), for the tests of the run's MLflow history."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import kube, processes

MLFLOW = kube.REPO / ".tools" / "mlflow" / "bin" / "mlflow"
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """`mlflow server` on a free local port, its store in `directory`; yields its URI."""
    if not MLFLOW.exists():
        raise RuntimeError(f"{MLFLOW} is missing: scripts/setup.sh (make setup) installs it")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = (directory / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(MLFLOW), "server",
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            # Artifacts uploaded through the server (mlflow-artifacts:/), as a pod must.
            "--artifacts-destination", str(directory / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:  # noqa: S310 - our own local server
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the MLflow server did not start: {(directory / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield uri
    finally:
        processes.stop(server)
        log.close()
