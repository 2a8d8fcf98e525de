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


def _node(
    tmp_path: Path, config: Path, node_rank: int, port: int, metrics_port: int
) -> subprocess.Popen[str]:
    """One pod of a two-pod gang: torchrun with one rank, its own checkpoint directory."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        f"--node-rank={node_rank}",
        "--master-addr=127.0.0.1",
        f"--master-port={port}",
        "-m",
        "gentrain_trainer",
        "--config",
        str(config),
        "--checkpoint-dir",
        str(tmp_path / f"checkpoints-{node_rank}"),
        "--metrics-port",
        str(metrics_port),
        "--device",
        "cpu",
        "--termination-log",
        str(tmp_path / f"termination-log-{node_rank}"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )


def _gang(tmp_path: Path, config: dict[str, object]) -> list[str]:
    """Runs both pods of the gang to the end; their logs, node 0's first."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    nodes = [_node(tmp_path, path, rank, port, free_port()) for rank in (0, 1)]
    logs = []
    for node in nodes:
        try:
            _, err = node.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for other in nodes:
                other.kill()
            _, err = node.communicate()
            raise AssertionError(f"the gang hung:\n{err[-3000:]}") from None
        assert node.returncode == 0, err[-3000:]
        logs.append(err)
    return logs


def test_two_pods_without_a_shared_volume_resume_and_roll_back_as_one(tmp_path: Path) -> None:
    """Several pods of one job share no volume: rank 0's pod alone holds the checkpoints
    (and the ids of applied commands), and hands what it loads to every rank. The other
    pod resumes and rolls back with it, from nothing on its own disk."""
    config = tiny("gan-ring", training={"max_steps": 200}, checkpoints={"interval": 100})
    first = _gang(tmp_path, config)
    assert all("rank" in log for log in first)
    config = tiny(
        "gan-ring",
        training={"max_steps": 300},
        checkpoints={"interval": 100},
        commands=[{"id": "rb-1", "action": "rollback", "step": 100}],
    )
    logs = _gang(tmp_path, config)
    prints = {
        rank: fingerprint
        for log in logs
        for rank, fingerprint in re.findall(r"rank (\d) of 2: weights fingerprint (\S+)", log)
    }
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"], logs[1][-3000:]
    for log in logs:
        assert "resumed from checkpoint step 200" in log, log[-3000:]
        assert "command rb-1: rolled back to step 100" in log, log[-3000:]
    assert CheckpointStore(tmp_path / "checkpoints-0", 3).steps()[-1] == 300
    assert not CheckpointStore(tmp_path / "checkpoints-1", 3).steps()
    assert (tmp_path / "termination-log-0").read_text() == "completed 300 steps"


def test_ranks_listen_at_the_interface_holding_the_pod_address(monkeypatch: object) -> None:
    import pytest

    from gentrain_trainer import distributed

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    assert distributed.interface_with("127.0.0.1") == "lo"
    assert distributed.interface_with("192.0.2.254") is None
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    monkeypatch.delenv("NCCL_SOCKET_IFNAME", raising=False)
    monkeypatch.setenv("GENTRAIN_POD_IP", "127.0.0.1")
    distributed.listen_at_pod_address()
    assert os.environ["GLOO_SOCKET_IFNAME"] == os.environ["NCCL_SOCKET_IFNAME"] == "lo"
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "eth7")  # the user's choice stands
    distributed.listen_at_pod_address()
    assert os.environ["GLOO_SOCKET_IFNAME"] == "eth7"
