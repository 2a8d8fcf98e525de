"""DDPM (Ho et al., 2020) with a small U-Net; linear or cosine (Nichol & Dhariwal, 2021)
noise schedules; DDPM ancestral or DDIM (Song et al., 2021) sampling; EMA weights.

The EMA decay warms up as min(decay, (1 + t) / (10 + t)): a fixed 0.9999 would leave a
short run's EMA model next to its random initialisation.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..config import Config
from ..datasets import Dataset, ImageDataset
from ..evaluation import image_quality, pictures
from .base import Family, ModelConfigError, NextBatch, StepResult, clip_and_measure, set_lr

# `held_out_loss`: so many held-out images, each noised at so many timesteps, drawn from
# a fixed seed.
HELD_OUT_IMAGES = 256
HELD_OUT_DRAWS = 2
HELD_OUT_NOISE_SEED = 7919


def noise_schedule(kind: str, steps: int) -> torch.Tensor:
    """Betas of the forward process."""
    if kind == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if kind == "cosine":
        t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
        alpha_bar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ModelConfigError(f"model.schedule: {kind!r} is not one of linear, cosine")


def ema_decay(target: float, step: int, warmup: int) -> float:
    return min(target, (1 + step) / (10 + step)) if warmup else target


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(8, cin), nn.GroupNorm(8, cout)
        self.conv1, self.conv2 = (
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.time = nn.Linear(tdim, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        out: torch.Tensor = h + self.skip(x)
        return out


class UNet(nn.Module):
    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.tdim = width * 4
        self.temb = nn.Sequential(
            nn.Linear(width, self.tdim), nn.SiLU(), nn.Linear(self.tdim, self.tdim)
        )
        self.width = width
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.down1 = ResBlock(width, width, self.tdim)
        self.down = nn.Conv2d(width, width * 2, 3, stride=2, padding=1)
        self.mid = ResBlock(width * 2, width * 2, self.tdim)
        self.up = nn.ConvTranspose2d(width * 2, width, 4, stride=2, padding=1)
        self.up1 = ResBlock(width * 2, width, self.tdim)
        self.out = nn.Sequential(
            nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.width))
        h0 = self.down1(self.inp(x), temb)
        h = self.mid(self.down(h0), temb)
        h = self.up1(torch.cat([self.up(h), h0], dim=1), temb)
        out: torch.Tensor = self.out(h)
        return out


class Diffusion(Family):
    name = "diffusion"
    has_held_out_loss = True

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config.hyperparameters)
        if not isinstance(dataset, ImageDataset):
            raise ModelConfigError(
                "model: the diffusion family trains on images (data.name: digits or images)"
            )
        self.config, self.dataset, self.device = config, dataset, device
        self.steps = int(config.model.get("timesteps", 200))
        betas = noise_schedule(str(config.model.get("schedule", "cosine")), self.steps)
        self.alpha_bar = torch.cumprod(1 - betas, 0).float().to(device)
        self.betas = betas.float().to(device)
        torch.manual_seed(config.seed)
        self.model = UNet(dataset.shape[0], int(config.model.get("width", 32))).to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        # The share of the sampling (EMA) weights that is still the random initialisation:
        # the product of every decay so far. A raw 0.9999 leaves 86% of it after 1,500 steps.
        self.ema_init_weight = 1.0
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.hp["lr"]))

    def components(self) -> dict[str, torch.nn.Module]:
        return {"denoiser": self.model}

    def baseline_loss(self) -> float | None:
        # The noise is standard normal: predicting zero scores its variance, 1.
        return 1.0

    def train_step(self, next_batch: NextBatch, step: int) -> StepResult:
        x0 = next_batch().to(self.device).x
        t = torch.randint(self.steps, (x0.shape[0],), device=self.device)
        noise = torch.randn_like(x0)
        a = self.alpha_bar[t][:, None, None, None]
        loss = F.mse_loss(self.model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t).float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm, clipped = clip_and_measure(self.model.parameters(), float(self.hp["grad_clip"]))
        self.optimizer.step()
        decay = ema_decay(float(self.hp["ema_decay"]), step, int(self.hp["ema_warmup_steps"]))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        self.ema_init_weight *= decay
        return StepResult(
            losses={"denoiser": float(loss.detach())},
            grad_norms={"denoiser": norm},
            clipped={"denoiser": clipped},
            learning_rates={"denoiser": float(self.hp["lr"])},
            extras={"ema_decay": decay},
        )

    def apply_hyperparameters(self, values: dict[str, Any], step: int) -> None:
        super().apply_hyperparameters(values, step)
        set_lr(self.optimizer, float(values["lr"]))

    def restart_optimizer(self) -> bool:
        self.optimizer.state.clear()  # Adam sets each parameter's moments up afresh
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema_init_weight": self.ema_init_weight,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.ema_init_weight = float(state.get("ema_init_weight", 0.0))  # unknown: assume spent

    @torch.no_grad()
    def held_out_loss(self, step: int) -> float | None:
        """The denoising loss of the trained (not the EMA) weights on held-out images, at
        timesteps and noise drawn once from a fixed seed: two calls differ only in the
        weights, whichever timesteps happen to be hard."""
        images = self.dataset.held_out[:HELD_OUT_IMAGES]
        g = torch.Generator().manual_seed(HELD_OUT_NOISE_SEED)
        x0 = images.repeat(HELD_OUT_DRAWS, 1, 1, 1)
        t = torch.randint(self.steps, (x0.shape[0],), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x0, t, noise = x0.to(self.device), t.to(self.device), noise.to(self.device)
        a = self.alpha_bar[t][:, None, None, None]
        self.model.eval()
        try:
            total = 0.0
            for start in range(0, x0.shape[0], 256):
                part = slice(start, start + 256)
                noisy = a[part].sqrt() * x0[part] + (1 - a[part]).sqrt() * noise[part]
                total += float(
                    F.mse_loss(self.model(noisy, t[part]).float(), noise[part], reduction="sum")
                )
        finally:
            self.model.train()
        return total / noise.numel()

    @torch.no_grad()
    def sample(self, n: int, sampler: str = "ddim", ddim_steps: int = 25) -> torch.Tensor:
        g = torch.Generator().manual_seed(31337)
        x = torch.randn(n, *self.dataset.shape, generator=g).to(self.device)
        if sampler == "ddpm":
            for i in reversed(range(self.steps)):
                t = torch.full((n,), i, device=self.device)
                eps = self.ema(x, t)
                a, ab, b = 1 - self.betas[i], self.alpha_bar[i], self.betas[i]
                x = (x - b / (1 - ab).sqrt() * eps) / a.sqrt()
                if i > 0:
                    x = x + b.sqrt() * torch.randn(x.shape, generator=g).to(self.device)
            return x.clamp(-1, 1).cpu()
        times = torch.linspace(self.steps - 1, 0, ddim_steps).long().tolist()
        for i, step in enumerate(times):
            t = torch.full((n,), step, device=self.device)
            eps = self.ema(x, t)
            ab = self.alpha_bar[step]
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            ab_next = (
                self.alpha_bar[times[i + 1]]
                if i + 1 < len(times)
                else torch.tensor(1.0, device=self.device)
            )
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return x.clamp(-1, 1).cpu()

    def evaluate(self, step: int) -> dict[str, Any]:
        n = int(self.config.evaluation.get("samples", 500))
        fake = self.sample(n, str(self.config.evaluation.get("sampler", "ddim")))
        figures = image_quality.evaluate_images(fake, self.dataset, self.config)
        return {**figures, "ema_init_weight": self.ema_init_weight}

    def pictures(self, directory: Path, step: int) -> list[Path]:
        path = directory / "samples.png"
        pictures.image_grid(path, self.sample(64))
        return [path]
