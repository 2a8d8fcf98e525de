"""A convolutional VAE with a Bernoulli decoder on pixels in [0, 1].

Live: learning rate, KL weight, KL schedule (none, linear — Bowman et al. 2016 —,
cyclical — Fu et al. 2019), anneal length, free bits (Kingma et al. 2016: each latent
dimension's KL counts as at least `free_bits` nats), clipping. A schedule restarts from
zero when it is switched on, so a live remedy anneals from the step it arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..config import Config
from ..datasets import Dataset, ImageDataset
from ..evaluation import image_quality, pictures
from .base import Family, ModelConfigError, NextBatch, StepResult, clip_and_measure, set_lr

# The reparameterisation noise of `held_out_loss`: fixed, so that two calls differ only
# in the weights.
HELD_OUT_NOISE_SEED = 7919
ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Cov_x(E[z|x]) > 0.01


def kl_weight(schedule: str, weight: float, steps_since_start: int, anneal_steps: int) -> float:
    if schedule == "linear":
        return weight * min(1.0, steps_since_start / anneal_steps)
    if schedule == "cyclical":
        position = (steps_since_start % anneal_steps) / anneal_steps
        return weight * min(1.0, 2 * position)  # ramp over the first half of each cycle
    return weight


class ConvVAE(nn.Module):
    def __init__(
        self, channels: int, size: int, latent: int, width: int, decoder_width: int
    ) -> None:
        super().__init__()
        self.shape = (channels, size, size)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
        )
        flat = width * 2 * (size // 4) ** 2
        self.to_stats = nn.Linear(flat, 2 * latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, decoder_width),
            nn.ReLU(),
            nn.Linear(decoder_width, decoder_width),
            nn.ReLU(),
            nn.Linear(decoder_width, channels * size * size),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.decoder(z).view(-1, *self.shape)
        return logits


class VAE(Family):
    name = "vae"
    has_held_out_loss = True

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config.hyperparameters)
        if not isinstance(dataset, ImageDataset):
            raise ModelConfigError(
                "model: the VAE family trains on images (data.name: digits or images)"
            )
        self.config, self.dataset, self.device = config, dataset, device
        channels, size, _ = dataset.shape
        self.latent = int(config.model.get("latent_dim", 16))
        torch.manual_seed(config.seed)
        self.model = ConvVAE(
            channels,
            size,
            self.latent,
            int(config.model.get("width", 32)),
            int(config.model.get("decoder_width", 256)),
        ).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.hp["lr"]))
        self.schedule_start = 0

    def _terms(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        target = (x + 1) / 2
        mu, logvar = self.model.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = self.model.decode(z)
        reconstruction = (
            F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
        )
        kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)  # (batch, latent)
        return reconstruction, kl_per_dim, mu, logits

    def current_kl_weight(self, step: int) -> float:
        return kl_weight(
            str(self.hp["kl_schedule"]),
            float(self.hp["kl_weight"]),
            step - self.schedule_start,
            int(self.hp["kl_anneal_steps"]),
        )

    def components(self) -> dict[str, torch.nn.Module]:
        return {"total": self.model}

    def train_step(self, next_batch: NextBatch, step: int) -> StepResult:
        x = next_batch().to(self.device).x
        reconstruction, kl_per_dim, _, _ = self._terms(x)
        kl_dims = kl_per_dim.mean(0)
        free_bits = float(self.hp["free_bits"])
        kl_term = kl_dims.clamp_min(free_bits).sum() if free_bits > 0 else kl_dims.sum()
        beta = self.current_kl_weight(step)
        loss = reconstruction.mean() + beta * kl_term
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm, clipped = clip_and_measure(self.model.parameters(), float(self.hp["grad_clip"]))
        self.optimizer.step()
        return StepResult(
            losses={
                "total": float(loss.detach()),
                "reconstruction": float(reconstruction.mean().detach()),
            },
            grad_norms={"total": norm},
            clipped={"total": clipped},
            learning_rates={"total": float(self.hp["lr"])},
            extras={"kl": float(kl_dims.sum().detach()), "kl_weight": beta},
        )

    def apply_hyperparameters(self, values: dict[str, Any], step: int) -> None:
        if values.get("kl_schedule") != self.hp.get("kl_schedule"):
            self.schedule_start = step
        super().apply_hyperparameters(values, step)
        set_lr(self.optimizer, float(values["lr"]))

    def restart_optimizer(self) -> bool:
        self.optimizer.state.clear()  # Adam sets each parameter's moments up afresh
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule_start": self.schedule_start,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule_start = int(state["schedule_start"])

    @torch.no_grad()
    def posterior(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Held-out means, KL per dimension, reconstruction loss per example."""
        x = self.dataset.held_out.to(self.device)
        reconstruction, kl_per_dim, mu, _ = self._terms(x)
        return mu.cpu(), kl_per_dim.mean(0).cpu(), reconstruction.mean().cpu()

    @torch.no_grad()
    def held_out_loss(self, step: int) -> float | None:
        """The objective (reconstruction + weighted KL, free bits as in training) on the
        held-out images, with the same reparameterisation noise on every call."""
        self.model.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(HELD_OUT_NOISE_SEED)
                reconstruction, kl_per_dim, _, _ = self._terms(
                    self.dataset.held_out.to(self.device)
                )
        finally:
            self.model.train()
        kl_dims = kl_per_dim.mean(0)
        free_bits = float(self.hp["free_bits"])
        kl_term = kl_dims.clamp_min(free_bits).sum() if free_bits > 0 else kl_dims.sum()
        return float(reconstruction.mean() + self.current_kl_weight(step) * kl_term)

    @torch.no_grad()
    def reconstruction_baseline(self) -> float:
        """The held-out reconstruction loss of the best decoder that ignores its latent:
        every pixel at its training mean. A collapsed VAE's reconstruction sits there (a
        KL weight of 20: 27.3 against 27.2 on digits); one whose latent carries the
        images is well below, however many units it has pruned."""
        mean = ((self.dataset.train + 1) / 2).mean(0).clamp(1e-4, 1 - 1e-4)
        target = (self.dataset.held_out + 1) / 2
        logits = torch.log(mean / (1 - mean)).expand_as(target)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return float(loss.flatten(1).sum(1).mean())

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(4242)
        z = torch.randn(n, self.latent, generator=g).to(self.device)
        return (torch.sigmoid(self.model.decode(z)) * 2 - 1).cpu()

    def evaluate(self, step: int) -> dict[str, Any]:
        self.model.eval()
        try:
            mu, kl_dims, reconstruction = self.posterior()
            active = int((mu.var(0) > ACTIVE_THRESHOLD).sum())
            quality = image_quality.evaluate_images(
                self.samples(int(self.config.evaluation.get("samples", 1000))),
                self.dataset,
                self.config,
            )
        finally:
            self.model.train()
        return {
            "active_units": active,
            "latent_dims": self.latent,
            "reconstruction_loss": float(reconstruction),
            "reconstruction_baseline": self.reconstruction_baseline(),
            "kl": float(kl_dims.sum()),
            **quality,
        }

    def pictures(self, directory: Path, step: int) -> list[Path]:
        grid, latent = directory / "samples.png", directory / "latent-pca.png"
        pictures.image_grid(grid, self.samples(64))
        self.model.eval()
        mu, _, _ = self.posterior()
        self.model.train()
        centred = mu - mu.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        projected = centred @ v[:2].T
        labels = self.dataset.held_out_labels
        groups = (
            [
                (projected[labels == c], pictures.PALETTE[c % 10])
                for c in range(int(labels.max()) + 1)
            ]
            if labels is not None
            else [(projected, pictures.PALETTE[0])]
        )
        pictures.scatter(latent, groups)
        return [grid, latent]
