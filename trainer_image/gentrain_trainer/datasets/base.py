"""What every dataset provides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class DatasetError(ValueError):
    """The data cannot be loaded; the message names the field or file."""


@dataclass
class Batch:
    x: torch.Tensor
    labels: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        labels = self.labels.to(device) if self.labels is not None else None
        return Batch(self.x.to(device, non_blocking=True), labels)


class Dataset(Protocol):
    kind: str  # "points", "images" or "text"

    def batch(self, index: int, batch_size: int) -> Batch: ...


def generator(seed: int, index: int) -> torch.Generator:
    """A generator for batch `index` that depends on nothing else."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index * 7_919) % (2**62))
