"""`make bench`: timed figures, printed. Each speed figure is a ratio against a baseline
measured in the same process, never a timed assertion.

- trainer: steps/s with full monitoring vs monitoring off (goal >= 0.97)
- checkpoint save and load time
- FID/KID/precision/recall on 2,000 samples on CPU
- the healthy ring GAN: steps and seconds to 8/8 modes with >= 90% high-quality samples
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.machine import line as machine_line
from bench.quiet import warnings_silenced
from bench.recorder import CONFIGS, merged
from gentrain_trainer import run_state
from gentrain_trainer.datasets import make_dataset
from gentrain_trainer.evaluation import extractors, image_quality
from gentrain_trainer.loop import Options, Trainer


def trainer(config: dict[str, Any], directory: Path, **options: Any) -> Trainer:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return Trainer(Options(path, directory / "checkpoints", metrics_port=0, **options))


def config(name: str, **overrides: Any) -> dict[str, Any]:
    return merged(yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()), overrides)


def monitoring_overhead() -> None:
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for monitoring in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                run = trainer(
                    config(
                        "gan-ring", training={"max_steps": 1500}, checkpoints={"interval": 100_000}
                    ),
                    Path(tmp),
                    monitoring=monitoring,
                    evaluate=False,
                )
                started = time.perf_counter()
                run.run()
                rates[monitoring].append(run.step / (time.perf_counter() - started))
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(
        f"trainer monitoring overhead: {on:.0f} steps/s monitored vs {off:.0f} unmonitored "
        f"(ratio {on / off:.3f}, goal >= 0.97; medians of 3 interleaved runs, gan-ring, CPU)"
    )


def checkpoint_times() -> None:
    for name in ("gan-digits", "transformer-text", "diffusion-digits"):
        with tempfile.TemporaryDirectory() as tmp:
            run = trainer(config(name, training={"max_steps": 1}), Path(tmp), evaluate=False)
            run.run()
            saves, loads = [], []
            for i in range(5):
                run.step = 1000 + i
                started = time.perf_counter()
                run_state.save(run)
                saves.append(time.perf_counter() - started)
                started = time.perf_counter()
                run.store.load(run.step)
                loads.append(time.perf_counter() - started)
            size = (run.store.path(run.step) / "state.pt").stat().st_size
            print(
                f"checkpoint {name}: {size / 1e6:.1f} MB, save {statistics.median(saves) * 1000:.0f} ms, "
                f"load+verify {statistics.median(loads) * 1000:.0f} ms (median of 5)"
            )


def evaluation_time() -> None:
    data = make_dataset({"name": "digits"}, 0)
    started = time.perf_counter()
    extractors.extractor_for(data)  # type: ignore[arg-type]
    trained = time.perf_counter() - started
    fake = data.train[torch.randint(len(data.train), (2000,))] + 0.1 * torch.randn(2000, 1, 8, 8)  # type: ignore[attr-defined]
    from gentrain_trainer.config import parse

    parsed = parse(config("gan-digits"))
    started = time.perf_counter()
    result = image_quality.evaluate_images(fake, data, parsed)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    print(
        f"evaluation: FID/KID/precision/recall/IS on 2,000 samples in {elapsed:.2f} s "
        f"(domain extractor trained once in {trained:.1f} s; FID of noisy real digits {result['fid']:.2f})"
    )


def ring_to_eight_modes(limit_steps: int = 12_000) -> None:
    reached: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = trainer(
            config("gan-ring", training={"max_steps": limit_steps}, checkpoints={"interval": 250}),
            Path(tmp),
        )
        original = run.family.evaluate
        started = time.perf_counter()

        def evaluate(step: int) -> dict[str, Any]:
            result = original(step)
            if not reached and result["modes_covered"] == 8 and result["high_quality_ratio"] >= 0.9:
                reached.update(
                    step=step,
                    seconds=time.perf_counter() - started,
                    hq=result["high_quality_ratio"],
                )
                run.stop_requested = True
            return result

        run.family.evaluate = evaluate  # type: ignore[method-assign]
        run.run()
    if reached:
        print(
            f"healthy ring GAN: 8/8 modes with {reached['hq']:.0%} high-quality samples at step {reached['step']}, "
            f"{reached['seconds']:.0f} s on CPU (goal <= 300 s)"
        )
    else:
        print(
            f"healthy ring GAN: did not reach 8/8 modes with >= 90% high-quality samples in {limit_steps} steps"
        )


@warnings_silenced()
def main() -> None:
    print(f"measured on: {machine_line()}")
    monitoring_overhead()
    checkpoint_times()
    evaluation_time()
    ring_to_eight_modes()


if __name__ == "__main__":
    main()
