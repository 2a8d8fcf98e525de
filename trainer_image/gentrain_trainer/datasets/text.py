"""Byte-level text: CPython's own documentation (`pydoc_data`, always installed) or any
text file from a mounted volume. The last 10% is held out for validation.

Batches are random windows by default. `sequential` reads the file in its own order, as
a pretraining loader streams pre-shuffled shards once: batch i holds the i-th run of
blocks, so a bad stretch of the corpus arrives as consecutive batches (PaLM's loss
spikes) and skipping K batches skips that stretch of the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .base import Batch, DatasetError, generator

VOCAB = 256  # bytes
ORDERS = ("random", "sequential")
TRAINING_PART = 0.9  # the rest, the end of the file, is held out for validation


@dataclass
class TextDataset:
    train: torch.Tensor  # uint8 tokens
    validation: torch.Tensor
    block_size: int
    seed: int
    order: str = "random"
    kind: str = "text"
    vocab_size: int = VOCAB

    def _windows(self, tokens: torch.Tensor, starts: torch.Tensor) -> Batch:
        offsets = torch.arange(self.block_size + 1)
        chunk = tokens[starts[:, None] + offsets].long()
        return Batch(chunk[:, :-1], chunk[:, 1:])

    def batch(self, index: int, batch_size: int) -> Batch:
        if self.order == "sequential":  # wraps around at the end of the file
            blocks = (len(self.train) - 1) // self.block_size
            first = index * batch_size
            starts = (torch.arange(first, first + batch_size) % blocks) * self.block_size
        else:
            g = generator(self.seed, index)
            span = len(self.train) - self.block_size - 1
            starts = torch.randint(span, (batch_size,), generator=g)
        return self._windows(self.train, starts)

    def validation_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The same fixed windows at every evaluation, so that losses compare."""
        span = len(self.validation) - self.block_size - 1
        starts = torch.linspace(0, span, batch_size * count).long()
        return [self._windows(self.validation, s) for s in starts.split(batch_size)]


def pydoc_text() -> bytes:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics)).encode()


def load_text_dataset(
    path: Path | None, seed: int, block_size: int, order: str = "random"
) -> TextDataset:
    if order not in ORDERS:
        raise DatasetError(f"data.order: {order!r} is not one of {', '.join(ORDERS)}")
    if path is None:
        raw = pydoc_text()
    elif not path.is_file():
        raise DatasetError(f"data.path: {path} is not a file (is the volume mounted?)")
    else:
        raw = path.read_bytes()
    tokens = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    if len(tokens) < 20 * (block_size + 1):
        raise DatasetError(
            f"data.path: the text has {len(tokens)} bytes; at least {20 * (block_size + 1)} are needed"
        )
    cut = int(len(tokens) * TRAINING_PART)
    return TextDataset(tokens[:cut].clone(), tokens[cut:].clone(), block_size, seed, order)
