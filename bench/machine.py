"""The machine a figure was measured on, printed and stored beside it.

Training figures depend on the CPU as much as on the code: a GAN's trajectory follows the
order in which the CPU's kernels add floating-point numbers, which differs between
instruction sets (AVX2, AVX-512) and thread counts. A figure without its machine cannot
be compared with a rerun on another one.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict[str, str | int]:
    """CPU model, cores, the instruction set torch's kernels use, torch and its threads."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "isa": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def line(machine: dict[str, str | int] | None = None) -> str:
    m = machine or describe()
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['isa']} kernels, torch {m['torch']}, "
        f"{m['threads']} thread{'s' if m['threads'] != 1 else ''}"
    )
