"""`make bench-gang`: a job's pace on two pods against one. The same job (the multinode
cluster test's ring GAN) is trained by the trainer as one process, and as two torchrun
"pods" on this machine (one rank each over gloo, each with its own checkpoint directory,
joined at 127.0.0.1 as pods join at rank 0's pod IP), one after the other. Each rank draws
the job's batchSize per step, so two ranks train on twice the samples per step; the
figures are steps/s and samples/s between the first and the last milestone (start-up and
the join not counted), from the trainer's own log. Two ranks share this machine's cores,
as pods on one node would: a report, not a goal (issue 16)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

from bench.machine import line as machine_line
from gentrain_operator.trainer_config import render_job
from tests.operator.test_operator_cluster import gtj

STEPS, INTERVAL = 4000, 500
MILESTONE = re.compile(r"^(\S+ \S+) INFO gentrain.trainer: milestone \{\"step\": (\d+)", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pace(log: str) -> float:
    """Steps/s between the first and the last milestone in a trainer's log."""
    found = [
        (datetime.fromisoformat(when.replace(",", ".")), int(step))
        for when, step in MILESTONE.findall(log)
    ]
    (t0, s0), (t1, s1) = found[0], found[-1]
    return (s1 - s0) / (t1 - t0).total_seconds()


def trainer(config: Path, checkpoints: Path) -> list[str]:
    return [
        "-m",
        "gentrain_trainer",
        "--config",
        str(config),
        "--checkpoint-dir",
        str(checkpoints),
        "--metrics-port",
        str(free_port()),
        "--device",
        "cpu",
        "--termination-log",
        str(checkpoints.parent / f"{checkpoints.name}.termination-log"),
    ]


def main() -> None:
    job = gtj("pace", max_steps=STEPS, interval=INTERVAL)
    job["metadata"].update({"namespace": "bench", "uid": "bench", "generation": 1})
    batch = int(job["spec"]["dataset"]["batchSize"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENTRAIN_CPU_LIMIT": "1"}
    env.pop("WORLD_SIZE", None)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = root / "config.yaml"
        config.write_text(yaml.safe_dump(dict(render_job(job))))
        one = subprocess.run(
            [sys.executable, *trainer(config, root / "one")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        port = free_port()
        pods = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--nnodes=2",
                    "--nproc-per-node=1",
                    f"--node-rank={rank}",
                    "--master-addr=127.0.0.1",
                    f"--master-port={port}",
                    *trainer(config, root / f"pod-{rank}"),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for rank in (0, 1)
        ]
        logs = [pod.communicate(timeout=600)[1] for pod in pods]
        if any(pod.returncode for pod in pods):
            raise SystemExit(f"the two-pod run failed:\n{logs[0][-2000:]}\n{logs[1][-2000:]}")
    alone, together = pace(one.stderr), pace(logs[0])
    print(machine_line())
    print(
        f"ring GAN, batch {batch} per rank, {STEPS} steps, milestones every {INTERVAL}:\n"
        f"  one pod:  {alone:.0f} steps/s, {alone * batch:.0f} samples/s\n"
        f"  two pods: {together:.0f} steps/s, {together * batch * 2:.0f} samples/s\n"
        f"  ratio (two / one): steps/s {together / alone:.2f}, "
        f"samples/s {2 * together / alone:.2f}"
    )


if __name__ == "__main__":
    main()
