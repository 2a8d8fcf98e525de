"""`make bench`: what gentrain-sdk costs a Hugging Face `Trainer`. The example's 2-layer
GPT-2 (examples/sdk/huggingface_gpt2.py) trains the same steps with and without
GentrainCallback (logging every step either way: the callback needs it, and a user who
logs less pays less), alternated in one process; the figure is the ratio of their
steps/s (goal >= 0.98)."""

from __future__ import annotations

import runpy
import statistics
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
from transformers.utils import logging as transformers_logging

from bench.machine import line as machine_line
from bench.quiet import warnings_silenced
from gentrain_sdk.huggingface import GentrainCallback

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sdk" / "huggingface_gpt2.py"
STEPS, ROUNDS = 150, 3


def steps_per_second(with_callback: bool, parts: dict[str, Any]) -> float:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=256, n_positions=parts["BLOCK"], n_embd=64, n_layer=2, n_head=2)
    )
    text = "\n".join(topics[name] for name in sorted(topics)).encode()
    callbacks = [GentrainCallback(port=0)] if with_callback else []
    with tempfile.TemporaryDirectory() as output:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=output,
                max_steps=STEPS,
                per_device_train_batch_size=16,
                learning_rate=3e-3,
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                use_cpu=True,
                disable_tqdm=True,
                seed=0,
            ),
            train_dataset=parts["Bytes"](text),
            callbacks=callbacks,
        )
        started = time.perf_counter()
        trainer.train()
        return STEPS / (time.perf_counter() - started)


@warnings_silenced()
def main() -> None:
    transformers_logging.set_verbosity_error()
    parts = runpy.run_path(str(EXAMPLE))
    steps_per_second(True, parts)  # warm-up: imports, allocator, thread pools
    plain, reported = [], []
    for _ in range(ROUNDS):
        plain.append(steps_per_second(False, parts))
        reported.append(steps_per_second(True, parts))
    ratio = statistics.median(reported) / statistics.median(plain)
    print(machine_line())
    print(
        f"HF Trainer, 2-layer GPT-2, {STEPS} steps x {ROUNDS} rounds: "
        f"{statistics.median(plain):.1f} steps/s without the callback, "
        f"{statistics.median(reported):.1f} with: ratio {ratio:.3f} (goal >= 0.98)"
    )


if __name__ == "__main__":
    main()
