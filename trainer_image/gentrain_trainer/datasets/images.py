"""Image datasets: scikit-learn's 8x8 digits (shipped in this package), or the user's own
images from a mounted volume — a folder of image files (sub-folders as classes), or a
`.npy` / `.npz` array. Pixels are scaled to [-1, 1]; 10% is held out for evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .base import Batch, DatasetError, generator

DIGITS = Path(__file__).with_name("digits.npz")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


@dataclass
class ImageDataset:
    train: torch.Tensor  # (n, channels, height, width) in [-1, 1]
    train_labels: torch.Tensor | None
    held_out: torch.Tensor
    held_out_labels: torch.Tensor | None
    seed: int
    name: str
    kind: str = "images"

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def classes(self) -> int:
        return int(self.train_labels.max()) + 1 if self.train_labels is not None else 0

    def batch(self, index: int, batch_size: int) -> Batch:
        per_epoch = max(1, len(self.train) // batch_size)
        epoch, position = divmod(index, per_epoch)
        order = torch.randperm(len(self.train), generator=generator(self.seed, -1 - epoch))
        chosen = order[position * batch_size : (position + 1) * batch_size]
        labels = self.train_labels[chosen] if self.train_labels is not None else None
        return Batch(self.train[chosen], labels)


def _split(images: np.ndarray, labels: np.ndarray | None, seed: int, name: str) -> ImageDataset:
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DatasetError(
            f"data.path: expected images shaped (n, h, w) or (n, c, h, w), got {images.shape}"
        )
    if len(images) < 20:
        raise DatasetError(f"data.path: only {len(images)} images; at least 20 are needed")
    scale = 16.0 if name == "digits" else (255.0 if images.max() > 1.0 else 1.0)
    x = torch.from_numpy(images.astype(np.float32) / scale * 2 - 1)
    y = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    cut = len(x) // 10
    held, kept = order[:cut], order[cut:]
    return ImageDataset(
        x[kept],
        y[kept] if y is not None else None,
        x[held],
        y[held] if y is not None else None,
        seed,
        name,
    )


def _from_folder(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    from PIL import Image

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(
            f"data.path: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}"
        )
    classes = sorted({p.parent.name for p in files})
    first = Image.open(files[0])
    mode, size = ("L" if first.mode in ("L", "1") else "RGB"), first.size
    arrays = [np.asarray(Image.open(p).convert(mode).resize(size)) for p in files]
    labels = np.array([classes.index(p.parent.name) for p in files]) if len(classes) > 1 else None
    return np.stack(arrays), labels


# Folders torchvision's dataset classes keep under their root, and the class reading each.
TORCHVISION_LAYOUTS = {
    "MNIST": "MNIST",
    "FashionMNIST": "FashionMNIST",
    "KMNIST": "KMNIST",
    "cifar-10-batches-py": "CIFAR10",
    "cifar-100-python": "CIFAR100",
}


def _from_torchvision(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A torchvision dataset already on disk under `path` (its root), train and test
    splits together; None if `path` holds none. Never downloads."""
    for folder, class_name in TORCHVISION_LAYOUTS.items():
        if not (path / folder).is_dir():
            continue
        try:
            from torchvision import datasets
        except ImportError as error:
            raise DatasetError(
                f"data.path: {path} holds a torchvision dataset ({folder}), "
                "but torchvision is not installed in this image"
            ) from error
        kind = getattr(datasets, class_name)
        try:
            splits = [kind(str(path), train=train, download=False) for train in (True, False)]
        except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
            raise DatasetError(f"data.path: {path / folder}: {error}") from error
        images = np.concatenate([np.asarray(s.data) for s in splits])
        labels = np.concatenate([np.asarray(s.targets) for s in splits])
        return images, labels
    return None


def load_image_dataset(name: str, path: Path | None, seed: int) -> ImageDataset:
    if name == "digits" and path is None:
        with np.load(DIGITS) as data:
            return _split(data["images"], data["labels"], seed, "digits")
    if path is None:
        raise DatasetError("data.path: the images dataset needs a path (a folder, .npy or .npz)")
    if not path.exists():
        raise DatasetError(f"data.path: {path} does not exist (is the volume mounted?)")
    if path.is_dir():
        found = _from_torchvision(path)
        images, labels = found if found is not None else _from_folder(path)
    elif path.suffix == ".npy":
        images, labels = np.load(path), None
    elif path.suffix == ".npz":
        with np.load(path) as data:
            key = "images" if "images" in data else data.files[0]
            images = data[key]
            labels = data.get("labels", None)
    else:
        raise DatasetError(f"data.path: {path} is neither a folder, a .npy nor a .npz file")
    return _split(images, labels, seed, path.name)
