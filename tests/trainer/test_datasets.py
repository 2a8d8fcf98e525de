"""User image data from a mounted volume: a folder of pictures (one subfolder per class),
.npy / .npz arrays, or a torchvision dataset already on disk — and clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gentrain_trainer.datasets import DatasetError, ImageDataset, make_dataset


def load(path: Path) -> ImageDataset:
    data = make_dataset({"name": "images", "path": str(path)}, seed=0)
    assert isinstance(data, ImageDataset)
    return data


def pictures(n: int, size: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size), dtype=np.uint8)


def test_a_folder_of_pictures_with_a_subfolder_per_class(tmp_path: Path) -> None:
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i, array in enumerate(pictures(15)):
            Image.fromarray(array).save(tmp_path / label / f"{i}.png")
    data = load(tmp_path)
    assert data.shape == (1, 12, 12) and data.classes == 2
    assert len(data.train) + len(data.held_out) == 30
    assert float(data.train.min()) >= -1.0 and float(data.train.max()) <= 1.0


def test_npy_and_npz_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", pictures(40))
    assert load(tmp_path / "x.npy").shape == (1, 12, 12)
    rgb = np.random.default_rng(1).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", images=rgb, labels=np.arange(40) % 4)
    data = load(tmp_path / "x.npz")
    assert data.shape == (3, 8, 8) and data.classes == 4


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's own file format (what torchvision reads): magic, dimensions, bytes."""
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_a_torchvision_mnist_folder_is_read_by_torchvision(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 60), ("t10k", 20)):
        write_idx(raw / f"{split}-images-idx3-ubyte", pictures(n, 28))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load(tmp_path)
    assert data.shape == (1, 28, 28) and data.classes == 10
    assert len(data.train) + len(data.held_out) == 80


def test_a_damaged_torchvision_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"data\.path: .*MNIST"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "no image files"),
        (lambda p: (np.save(p / "few.npy", pictures(5)), p / "few.npy")[1], "at least 20"),
    ],
)
def test_bad_data_gets_an_error_naming_the_field(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=f"data.path: .*{message}"):
        load(make(tmp_path))


def test_sequential_text_reads_the_file_in_order_and_skipping_skips_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(bytes(range(256)) * 40)
    data = make_dataset(
        {"name": "text", "path": str(corpus), "block_size": 8, "order": "sequential"}, 0
    )
    first, second = data.batch(0, 4), data.batch(1, 4)
    # Batch i holds blocks 4i .. 4i+3 of the file, each followed by its next byte.
    assert first.x[:, 0].tolist() == [0, 8, 16, 24]
    assert second.x[:, 0].tolist() == [32, 40, 48, 56]
    assert first.labels is not None and first.labels[0].tolist() == list(range(1, 9))
    # Skipping K batches (a rollback past bad data) starts K batches further into the file.
    assert data.batch(5, 4).x[0, 0].item() == (5 * 4 * 8) % 256


def test_an_unknown_text_order_names_the_field(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"x" * 4096)
    with pytest.raises(
        DatasetError, match=r"data\.order: 'shuffled' is not one of random, sequential"
    ):
        make_dataset({"name": "text", "path": str(corpus), "order": "shuffled"}, 0)
