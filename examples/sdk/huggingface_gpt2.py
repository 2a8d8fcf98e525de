"""A Hugging Face `Trainer` under gentrain: a 2-layer GPT-2 built from a config (no
weights downloaded) learning CPython's documentation byte by byte. The gentrain part is
the import and `callbacks=[GentrainCallback(...)]`.

    python examples/sdk/huggingface_gpt2.py --learning-rate 0.003   # healthy
    python examples/sdk/huggingface_gpt2.py --learning-rate 0.5     # far too high
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import tempfile
from pydoc_data.topics import topics

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from gentrain_sdk.huggingface import GentrainCallback  # gentrain

BLOCK = 64


class Bytes(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, data: bytes) -> None:
        self.data = torch.tensor(list(data), dtype=torch.long)

    def __len__(self) -> int:
        return (len(self.data) - 1) // BLOCK

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        chunk = self.data[index * BLOCK : (index + 1) * BLOCK]
        return {"input_ids": chunk, "labels": chunk}


def unigram_entropy(data: bytes) -> float:
    """The loss of a model that learned only the bytes' frequencies, in nats."""
    counts = collections.Counter(data)
    return -sum(c / len(data) * math.log(c / len(data)) for c in counts.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--interval", type=int, default=100, help="steps between milestones")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)

    text = "\n".join(topics[name] for name in sorted(topics)).encode()
    split = int(len(text) * 0.9)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=256, n_positions=BLOCK, n_embd=64, n_layer=2, n_head=2)
    )
    gentrain = GentrainCallback(port=args.port, baseline_loss=unigram_entropy(text))  # gentrain
    # On the job's checkpoint volume, the Trainer's checkpoints are what a rollback loads.
    with tempfile.TemporaryDirectory() as scratch:
        output = os.environ.get("GENTRAIN_CHECKPOINT_DIR") or scratch
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=output,
                max_steps=args.steps,
                per_device_train_batch_size=16,
                learning_rate=args.learning_rate,
                warmup_steps=10,
                logging_steps=1,
                eval_strategy="steps",
                eval_steps=args.interval,
                per_device_eval_batch_size=32,
                save_strategy="steps",
                save_steps=args.interval,
                report_to=[],
                use_cpu=True,
                seed=0,
            ),
            train_dataset=Bytes(text[:split]),
            eval_dataset=torch.utils.data.Subset(Bytes(text[split:]), range(64)),
            callbacks=[gentrain],  # gentrain
        )
        trainer.train()


if __name__ == "__main__":
    main()
