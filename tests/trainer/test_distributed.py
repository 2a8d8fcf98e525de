"""More than one GPU means torchrun and one trainer per GPU; here the same code runs on
CPU over gloo with two ranks: both train, averaging gradients, and end with identical
weights; rank 0 alone writes checkpoints and the termination log."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from gentrain_trainer.checkpoints import CheckpointStore
from tests.trainer.conftest import tiny


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_ranks_train_in_step_and_rank_zero_writes(tmp_path: Path) -> None:
    config = tiny("gan-ring", training={"max_steps": 200}, checkpoints={"interval": 100})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "gentrain_trainer",
        "--config",
        str(tmp_path / "config.yaml"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--metrics-port",
        str(free_port()),
        "--device",
        "cpu",
        "--termination-log",
        str(tmp_path / "termination-log"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    prints = dict(re.findall(r"rank (\d) of 2: weights fingerprint (\S+)", done.stderr))
    assert set(prints) == {"0", "1"}, done.stderr[-3000:]
    assert prints["0"] == prints["1"]
    assert CheckpointStore(tmp_path / "checkpoints", 3).steps() == [100, 200]
    assert (tmp_path / "termination-log").read_text() == "completed 200 steps"
    # Each rank drew its own batches: at every milestone the two logged different losses.
    losses: dict[int, list[dict[str, float]]] = {}
    for line in re.findall(r"milestone (\{.*\})", done.stderr):
        record = json.loads(line)
        losses.setdefault(record["step"], []).append(record["loss"])
    assert sorted(losses) == [100, 200]
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in losses.values())
