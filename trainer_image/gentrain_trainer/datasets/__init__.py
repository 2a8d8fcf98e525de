"""Training data that needs no download, addressed by batch index.

Every dataset returns batch `i` as a pure function of (seed, i): resuming from a
checkpoint only needs the index of the next batch, and skipping K batches (a rollback
past bad data) is adding K to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Batch, Dataset, DatasetError
from .images import ImageDataset, load_image_dataset
from .text import TextDataset, load_text_dataset
from .toy2d import Toy2D, grid25, ring8

__all__ = [
    "Batch",
    "Dataset",
    "DatasetError",
    "ImageDataset",
    "TextDataset",
    "Toy2D",
    "make_dataset",
]


def make_dataset(data: dict[str, Any], seed: int) -> Dataset:
    name = data.get("name")
    path = data.get("path")
    if name == "ring8":
        return ring8(
            seed, radius=float(data.get("radius", 1.0)), sigma=float(data.get("sigma", 0.01))
        )
    if name == "grid25":
        return grid25(
            seed, spacing=float(data.get("spacing", 2.0)), sigma=float(data.get("sigma", 0.05))
        )
    if name in ("digits", "images"):
        return load_image_dataset(name, Path(path) if path else None, seed)
    if name in ("pydoc", "text"):
        return load_text_dataset(
            Path(path) if path else None,
            seed,
            int(data.get("block_size", 64)),
            str(data.get("order", "random")),
        )
    raise DatasetError(
        f"data.name: {name!r} is not one of ring8, grid25, digits, images (with data.path), "
        "pydoc, text (with data.path)"
    )
