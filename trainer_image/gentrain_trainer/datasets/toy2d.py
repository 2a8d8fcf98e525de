"""2-D Gaussian mixtures, as set up by VEEGAN (Srivastava et al., 2017) and PacGAN.

8 modes on a ring (radius 1, sigma 0.01) and 25 on a 5x5 grid (spacing 2, sigma 0.05).
A sample is high quality when within 3 sigma of its nearest mode; a mode is covered when
at least 20 high-quality samples land on it (PacGAN's convention), counted over 2,500
generated samples as in both papers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Batch, generator


@dataclass
class Toy2D:
    centers: torch.Tensor  # (modes, 2)
    sigma: float
    seed: int
    kind: str = "points"

    def batch(self, index: int, batch_size: int) -> Batch:
        g = generator(self.seed, index)
        modes = torch.randint(len(self.centers), (batch_size,), generator=g)
        noise = torch.randn(batch_size, 2, generator=g) * self.sigma
        return Batch(self.centers[modes] + noise, modes)

    def reference(self, n: int) -> torch.Tensor:
        return self.batch(-1, n).x


def ring8(seed: int, radius: float = 1.0, sigma: float = 0.01) -> Toy2D:
    angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    centers = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1)
    return Toy2D(centers, sigma, seed)


def grid25(seed: int, spacing: float = 2.0, sigma: float = 0.05) -> Toy2D:
    axis = (torch.arange(5, dtype=torch.float32) - 2) * spacing
    centers = torch.cartesian_prod(axis, axis)
    return Toy2D(centers, sigma, seed)


def mode_coverage(samples: torch.Tensor, data: Toy2D, min_per_mode: int = 20) -> tuple[int, float]:
    """(modes covered, high-quality ratio) of generated 2-D samples."""
    distances = torch.cdist(samples.float(), data.centers)
    nearest, which = distances.min(dim=1)
    high_quality = nearest <= 3 * data.sigma
    counts = torch.bincount(which[high_quality], minlength=len(data.centers))
    covered = int((counts >= min_per_mode).sum())
    ratio = float(high_quality.float().mean()) if len(samples) else 0.0
    return int(covered), ratio
