"""PNG pictures written with every checkpoint, drawn with Pillow (no plotting stack)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def image_grid(path: Path, images: torch.Tensor, scale: int = 4) -> None:
    """A square grid of images in [-1, 1], shaped (n, channels, h, w)."""
    n, c, h, w = images.shape
    side = math.ceil(math.sqrt(n))
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    canvas = torch.full((c, side * (h + 1) + 1, side * (w + 1) + 1), 255, dtype=torch.uint8)
    for i in range(n):
        row, col = divmod(i, side)
        canvas[
            :, 1 + row * (h + 1) : 1 + row * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w
        ] = pixels[i]
    array = canvas.permute(1, 2, 0).squeeze(-1).numpy()
    image = Image.fromarray(array, "L" if c == 1 else "RGB")
    image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST).save(path)


def scatter(
    path: Path, series: Sequence[tuple[torch.Tensor, tuple[int, int, int]]], size: int = 480
) -> None:
    """2-D points, each series in its own colour, on a shared square frame."""
    every = torch.cat([points for points, _ in series])
    low, high = every.min(dim=0).values, every.max(dim=0).values
    span = float((high - low).max()) or 1.0
    centre = (low + high) / 2
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for points, colour in series:
        xy = ((points - centre) / span * 0.9 + 0.5) * size
        for x, y in xy.tolist():
            draw.ellipse((x - 1.5, size - y - 1.5, x + 1.5, size - y + 1.5), fill=colour)
    image.save(path)


def heatmaps(path: Path, maps: torch.Tensor, scale: int = 4) -> None:
    """Attention maps (heads, n, n) side by side, darker = more attention."""
    heads, n, _ = maps.shape
    canvas = Image.new("L", (heads * (n + 2) * scale, n * scale), 255)
    for head in range(heads):
        values = maps[head] / maps[head].max().clamp_min(1e-9)
        tile = Image.fromarray((255 - values * 255).round().to(torch.uint8).numpy(), "L")
        canvas.paste(
            tile.resize((n * scale, n * scale), Image.Resampling.NEAREST),
            (head * (n + 2) * scale, 0),
        )
    canvas.save(path)
