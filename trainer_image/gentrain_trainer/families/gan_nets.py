"""Generators and discriminators: MLPs for 2-D points, DCGAN-style convolutions for images.

The discriminator has no batch normalisation: it would make each sample's output depend
on the rest of the batch, which breaks the per-sample gradient that WGAN-GP's penalty
and R1 take. Spectral normalisation and a minibatch-stddev feature are options.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _maybe_sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(layer) if enabled else layer


class MinibatchStddev(nn.Module):
    """Appends the batch's mean feature standard deviation (Karras et al., 2018)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.std(dim=0, unbiased=False).mean().expand(x.shape[0], 1)
        return torch.cat([x, std], dim=1)


class _Discriminator(nn.Module):
    """Features, then the optional minibatch-stddev feature, then one linear output."""

    def __init__(self, features: nn.Module, width: int, sn: bool, mbstd: bool) -> None:
        super().__init__()
        self.features = features
        self.mbstd = MinibatchStddev() if mbstd else None
        self.head = _maybe_sn(nn.Linear(width + (1 if mbstd else 0), 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.mbstd is not None:
            h = self.mbstd(h)
        out: torch.Tensor = self.head(h).squeeze(1)
        return out


class MLPGenerator(nn.Module):
    def __init__(self, latent: int, hidden: int, layers: int, out: int = 2) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = latent
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, out))
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(z)
        return out


class MLPDiscriminator(_Discriminator):
    def __init__(self, hidden: int, layers: int, sn: bool, mbstd: bool, inp: int = 2) -> None:
        blocks: list[nn.Module] = []
        width = inp
        for _ in range(layers):
            blocks += [_maybe_sn(nn.Linear(width, hidden), sn), nn.LeakyReLU(0.2)]
            width = hidden
        super().__init__(nn.Sequential(*blocks), width, sn, mbstd)


def _doublings(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"image size {size} must be a power of two, at least 8")
    return size.bit_length() - 3  # 8 -> 1 step up from 4x4


class ConvGenerator(nn.Module):
    def __init__(self, latent: int, channels: int, size: int, width: int) -> None:
        super().__init__()
        steps = _doublings(size)
        top = width * 2**steps
        self.project = nn.Sequential(nn.Linear(latent, top * 16), nn.ReLU())
        self.top = top
        blocks: list[nn.Module] = []
        c = top
        for _ in range(steps):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        blocks += [nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, self.top, 4, 4)
        out: torch.Tensor = self.net(h)
        return out


class ConvDiscriminator(_Discriminator):
    def __init__(self, channels: int, size: int, width: int, sn: bool, mbstd: bool) -> None:
        steps = _doublings(size)
        blocks: list[nn.Module] = [
            _maybe_sn(nn.Conv2d(channels, width, 3, 1, 1), sn),
            nn.LeakyReLU(0.2),
        ]
        c = width
        for _ in range(steps):
            blocks += [_maybe_sn(nn.Conv2d(c, c * 2, 4, 2, 1), sn), nn.LeakyReLU(0.2)]
            c *= 2
        super().__init__(nn.Sequential(*blocks, nn.Flatten()), c * 16, sn, mbstd)


def diff_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al., 2020): differentiable translation and cutout, applied to
    real and fake images alike so the discriminator cannot memorise a small dataset."""
    _n, _, h, _w = x.shape
    shift = max(1, h // 8)
    dx, dy = (torch.randint(-shift, shift + 1, (2,), generator=generator)).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    size = max(1, h // 2)
    cy, cx = (torch.randint(0, h - size + 1, (2,), generator=generator)).tolist()
    mask = torch.ones_like(x)
    mask[:, :, cy : cy + size, cx : cx + size] = 0
    return x * mask
