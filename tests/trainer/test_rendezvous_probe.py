"""The readiness probe of a pod of several: it passes while rank 0's rendezvous (a real
torchrun store) answers, fails with the address when nothing does, and leaves the store
working (a probe connects and closes every few seconds for the whole run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import torch.distributed as dist


def probe(address: str | None, port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PET_")}
    if address is not None:
        env.update({"PET_MASTER_ADDR": address, "PET_MASTER_PORT": str(port)})
    return subprocess.run(
        [sys.executable, "-m", "gentrain_trainer.rendezvous_probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_probe_passes_on_a_live_rendezvous_and_names_a_dead_one() -> None:
    port = free_port()
    store = dist.TCPStore(
        "127.0.0.1", port, 2, True, timeout=timedelta(seconds=30), wait_for_workers=False
    )
    for _ in range(3):
        assert probe("127.0.0.1", port).returncode == 0
    store.set("still", "working")
    assert store.get("still") == b"working"
    del store

    dead = probe("127.0.0.1", free_port())
    assert dead.returncode == 1
    assert "rank 0's rendezvous at 127.0.0.1:" in dead.stderr and "unreachable" in dead.stderr
    unset = probe(None, 0)
    assert unset.returncode == 1 and "PET_MASTER_ADDR is not set" in unset.stderr
