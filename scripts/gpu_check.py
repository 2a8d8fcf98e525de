"""The GPU check (`make gpu-check`): what gentrain has never run on hardware, in one short
call on a machine with NVIDIA GPUs.

- every built-in family (trainer_image/gentrain_trainer/configs) trains a fixed number of
  steps on CUDA, with the bf16 autocast a pod uses and without it: steps/s of each;
- the trainer's NVML series are exported, parsed from a real exposition and plausible
  (utilisation in [0, 1], memory used within total, temperature and power in range);
- with two GPUs or more, two ranks under torchrun over NCCL end with identical weights.

Writes a JSON report (`--out`) and prints a summary; exit 0 when every check passed, 1 when
one failed, 2 when there is no CUDA GPU (`--allow-cpu` runs the same code on CPU, over gloo:
how the tests keep this script from rotting).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch
from prometheus_client.parser import text_string_to_metric_families

from gentrain_contract import metrics
from gentrain_trainer.loop import Options, Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "trainer_image" / "gentrain_trainer" / "configs"
WARMUP_STEPS = 10  # CUDA context, cuDNN autotuning, allocator growth: not measured
# What NVML may plausibly report; outside, the exporter (or the driver) is wrong.
PLAUSIBLE = {
    metrics.GPU_UTILIZATION_RATIO.name: (0.0, 1.0),
    metrics.GPU_TEMPERATURE_CELSIUS.name: (1.0, 120.0),
    metrics.GPU_POWER_WATTS.name: (1.0, 2000.0),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(
    config: Path, device: str, steps: int, autocast: bool, port: int = 0
) -> tuple[Trainer, float]:
    """A trainer that trained `steps` steps, and the seconds its training loop took (the
    model and data built before it are not counted)."""
    with tempfile.TemporaryDirectory() as checkpoints:
        options = Options(
            config,
            Path(checkpoints),
            metrics_port=port,
            resume="none",
            device=device,
            max_steps=steps,
            evaluate=False,
            autocast=autocast,
        )
        trainer = Trainer(options)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        trainer.run()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    return trainer, seconds


def speed(config: Path, device: str, steps: int) -> dict[str, Any]:
    """Steps/s of one family with and without bf16 autocast, after a warm-up."""
    train(config, device, WARMUP_STEPS, autocast=True)
    result: dict[str, Any] = {}
    for name, autocast in (("fp32", False), ("bf16_autocast", True)):
        trainer, seconds = train(config, device, steps, autocast)
        losses = {k: v for k, v in trainer.smoothed.values.items() if isinstance(v, float)}
        result[name] = {
            "steps_per_second": round(steps / seconds, 2),
            "final_losses": {k: round(v, 4) for k, v in losses.items()},
            "finite": all(math.isfinite(v) for v in losses.values()),
        }
    result["bf16_speedup"] = round(
        result["bf16_autocast"]["steps_per_second"] / result["fp32"]["steps_per_second"], 2
    )
    return result


def nvml_series(config: Path, device: str) -> dict[str, Any]:
    """The exporter's GPU series, from a real scrape of a trainer that trained a little."""
    port = free_port()
    train(config, device, WARMUP_STEPS, autocast=True, port=port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    series: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("gentrain_gpu_"):
            for sample in family.samples:
                series.setdefault(sample.name, {})[sample.labels.get("gpu", "")] = sample.value
    problems = []
    for name, (low, high) in PLAUSIBLE.items():
        for gpu, value in series.get(name, {}).items():
            if not low <= value <= high:
                problems.append(f"{name}{{gpu={gpu}}} = {value} outside [{low}, {high}]")
    used = series.get(metrics.GPU_MEMORY_USED_BYTES.name, {})
    total = series.get(metrics.GPU_MEMORY_TOTAL_BYTES.name, {})
    for gpu, value in used.items():
        if not 0 < value <= total.get(gpu, 0):
            problems.append(f"memory used {value} of {total.get(gpu)} on GPU {gpu}")
    if device == "cuda":
        expected = {str(i) for i in range(torch.cuda.device_count())}
        for name in (*PLAUSIBLE, metrics.GPU_MEMORY_USED_BYTES.name):
            if set(series.get(name, {})) != expected:
                problems.append(
                    f"{name}: GPUs {sorted(series.get(name, {}))}, not {sorted(expected)}"
                )
    elif series:  # on CPU they must be absent, never zero
        problems.append(f"GPU series on a CPU run: {sorted(series)}")
    return {"series": series, "problems": problems, "passed": not problems}


def two_ranks(config: Path, device: str, steps: int) -> dict[str, Any]:
    """Two ranks under torchrun (NCCL on GPUs, gloo on CPU) end with the same weights."""
    with tempfile.TemporaryDirectory() as checkpoints:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            "-m", "gentrain_trainer", "--config", str(config), "--checkpoint-dir", checkpoints,
            "--metrics-port", "0", "--resume", "none", "--device", device,
            "--max-steps", str(steps), "--no-eval",
        ]  # fmt: skip
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        seconds = time.perf_counter() - started
    fingerprints = re.findall(r"rank (\d) of 2: weights fingerprint (\S+)", run.stderr)
    values = {rank: float(value) for rank, value in fingerprints}
    passed = run.returncode == 0 and len(values) == 2 and len(set(values.values())) == 1
    return {
        "backend": "nccl" if device == "cuda" else "gloo",
        "returncode": run.returncode,
        "fingerprints": values,
        "seconds": round(seconds, 1),
        "passed": passed,
        **({} if passed else {"stderr_tail": run.stderr[-3000:]}),
    }


def machine(device: str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host_cpu": platform.processor() or platform.machine(),
    }
    if device == "cuda":
        facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        facts["bf16_supported"] = torch.cuda.is_bf16_supported()
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="measured steps per run")
    parser.add_argument("--families", nargs="*", help="config names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("docs/gpu-check"))
    parser.add_argument("--allow-cpu", action="store_true", help="run on CPU without a GPU")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.allow_cpu:
        print("gpu-check: no CUDA GPU visible to torch (nothing to check; --allow-cpu runs "
              "the same code on CPU)", file=sys.stderr)  # fmt: skip
        return 2
    configs = sorted(CONFIGS.glob("*.yaml"))
    if args.families:
        configs = [c for c in configs if c.stem in args.families]
    report: dict[str, Any] = {"machine": machine(device), "steps": args.steps, "families": {}}
    for config in configs:
        report["families"][config.stem] = speed(config, device, args.steps)
        print(f"gpu-check: {config.stem}: {json.dumps(report['families'][config.stem])}")
    report["nvml"] = nvml_series(configs[0], device)
    if device == "cpu" or torch.cuda.device_count() >= 2:
        report["two_ranks"] = two_ranks(configs[0], device, max(args.steps // 4, 5))
    failed = [
        name for name, result in report["families"].items()
        if not (result["fp32"]["finite"] and result["bf16_autocast"]["finite"])
    ] + [
        section for section in ("nvml", "two_ranks")
        if section in report and not report[section]["passed"]
    ]  # fmt: skip
    report["failed"] = failed
    args.out.mkdir(parents=True, exist_ok=True)
    label = re.sub(r"[^A-Za-z0-9]+", "-", (report["machine"].get("gpus") or ["cpu"])[0]).strip("-")
    path = args.out / f"gpu-check-{label.lower()}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"gpu-check: report in {path}; {'FAILED: ' + ', '.join(failed) if failed else 'all passed'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
