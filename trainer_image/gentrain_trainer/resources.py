"""Device choice and CPU threads sized from the pod's CPU limit, not the host's cores.

Two small torch trainers sharing 2 cores with torch's default thread count (one per host
core each) ran 15x slower than one alone; a trainer limited to N CPUs runs N threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from gentrain_contract import program


def cpu_limit() -> float | None:
    """The CPU limit: GENTRAIN_CPU_LIMIT (downward API), else the cgroup quota."""
    env = os.environ.get(program.CPU_LIMIT_VARIABLE)
    if env:
        try:
            value = float(env)
            if value > 0:
                return value
        except ValueError:
            pass
    v2 = Path("/sys/fs/cgroup/cpu.max")
    if v2.exists():
        quota, _, period = v2.read_text().partition(" ")
        if quota != "max":
            return int(quota) / int(period)
    v1_quota = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    v1_period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if v1_quota.exists() and v1_period.exists():
        quota_us = int(v1_quota.read_text())
        if quota_us > 0:
            return quota_us / int(v1_period.read_text())
    return None


def configure_threads(processes: int = 1) -> int:
    """Threads for this process: its share of the pod's CPU limit (torchrun runs
    `processes` trainers in one pod)."""
    limit = cpu_limit()
    cores = os.cpu_count() or 1
    share = (limit or cores) / processes
    threads = max(1, min(cores, math.floor(share)))
    torch.set_num_threads(threads)
    return threads


def choose_device(wanted: str, local_rank: int = 0) -> torch.device:
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible to this process")
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine() or "cpu"
