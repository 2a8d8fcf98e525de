"""`make gpu-check` is prepared for a GPU machine this project has not had yet: the same
code runs here on CPU (`--allow-cpu`, two ranks over gloo), so it cannot rot unnoticed
before its one short call on hardware."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support.kube import REPO

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "gpu_check.py"


def test_on_cpu_every_check_runs_and_passes(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--allow-cpu", "--steps", "3", "--families", "gan-ring",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-check-cpu.json").read_text())
    assert report["machine"]["device"] == "cpu" and report["failed"] == []
    speeds = report["families"]["gan-ring"]
    assert speeds["fp32"]["steps_per_second"] > 0 and speeds["bf16_autocast"]["finite"]
    # No NVML on CPU: the GPU series are absent, never zero.
    assert report["nvml"] == {"series": {}, "problems": [], "passed": True}
    ranks = report["two_ranks"]
    assert ranks["backend"] == "gloo" and ranks["passed"]
    assert len(set(ranks["fingerprints"].values())) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_checks_nothing() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 2 and "no CUDA GPU" in run.stderr
