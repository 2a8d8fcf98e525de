"""GANs: an MLP pair for 2-D mixtures, a DCGAN-style pair for images.

Live hyperparameters: both learning rates, Adam betas, D steps per G step, the loss
(non-saturating, minimax, hinge, least-squares, WGAN-GP), GP weight, R1 gamma, clipping.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..datasets import Dataset, ImageDataset, Toy2D
from ..datasets.toy2d import mode_coverage
from ..evaluation import image_quality, pictures
from . import gan_losses
from .base import Family, ModelConfigError, NextBatch, StepResult, clip_and_measure, set_lr
from .gan_nets import (
    ConvDiscriminator,
    ConvGenerator,
    MLPDiscriminator,
    MLPGenerator,
    diff_augment,
)

EVAL_SEED = 987_654


class GAN(Family):
    name = "gan"

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config.hyperparameters)
        self.config, self.dataset, self.device = config, dataset, device
        model = config.model
        self.latent = int(model.get("latent_dim", 2 if isinstance(dataset, Toy2D) else 32))
        self.sn = bool(model.get("spectral_norm", False))
        self.mbstd = bool(model.get("minibatch_stddev", False))
        self.diffaugment = bool(model.get("diffaugment", False))
        torch.manual_seed(config.seed)
        if isinstance(dataset, Toy2D):
            hidden, layers = int(model.get("hidden", 128)), int(model.get("layers", 3))
            self.generator: torch.nn.Module = MLPGenerator(self.latent, hidden, layers)
            self._make_d: Callable[[], torch.nn.Module] = lambda: MLPDiscriminator(
                hidden, layers, self.sn, self.mbstd
            )
        elif isinstance(dataset, ImageDataset):
            channels, size, _ = dataset.shape
            width = int(model.get("width", 32))
            self.generator = ConvGenerator(self.latent, channels, size, width)
            self._make_d = lambda: ConvDiscriminator(channels, size, width, self.sn, self.mbstd)
        else:
            raise ModelConfigError("model: the GAN family trains on 2-D points or images, not text")
        self.generator.to(device)
        self.discriminator: torch.nn.Module = self._make_d().to(device)
        self.opt_g = self._adam(self.generator, float(self.hp["lr_g"]))
        self.opt_d = self._adam(self.discriminator, float(self.hp["lr_d"]))

    def _adam(self, module: torch.nn.Module, lr: float) -> torch.optim.Adam:
        betas = (float(self.hp["beta1"]), float(self.hp["beta2"]))
        return torch.optim.Adam(module.parameters(), lr=lr, betas=betas)

    def _noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent, generator=generator).to(self.device)

    def _critic(self, x: torch.Tensor) -> torch.Tensor:
        if self.diffaugment and x.dim() == 4:
            x = diff_augment(x)
        out: torch.Tensor = self.discriminator(x)
        return out

    def components(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def updates_per_step(self) -> dict[str, int]:
        return {"discriminator": int(self.hp["d_steps"])}

    def train_step(self, next_batch: NextBatch, step: int) -> StepResult:
        kind, clip = str(self.hp["loss"]), float(self.hp["grad_clip"])
        d_losses, d_norms, d_clipped, reals, fakes = [], [], [], [], []
        for _ in range(int(self.hp["d_steps"])):
            real = next_batch().to(self.device).x
            with torch.no_grad():
                fake = self.generator(self._noise(real.shape[0]))
            real_out, fake_out = self._critic(real), self._critic(fake)
            loss = gan_losses.discriminator_loss(kind, real_out, fake_out)
            if kind == "wgan_gp":
                loss = loss + float(self.hp["gp_weight"]) * gan_losses.gradient_penalty(
                    self.discriminator, real, fake, None
                )
            if float(self.hp["r1_gamma"]) > 0:
                loss = loss + 0.5 * float(self.hp["r1_gamma"]) * gan_losses.r1_penalty(
                    self.discriminator, real
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            norm, clipped = clip_and_measure(self.discriminator.parameters(), clip)
            self.opt_d.step()
            d_losses.append(float(loss.detach()))
            d_norms.append(norm)
            d_clipped.append(clipped)
            reals.append(real_out.detach())
            fakes.append(fake_out.detach())

        fake_out = self._critic(self.generator(self._noise(self.config.batch_size)))
        g_loss = gan_losses.generator_loss(kind, fake_out)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        g_norm, g_clipped = clip_and_measure(self.generator.parameters(), clip)
        self.opt_g.step()

        real_all, fake_all = torch.cat(reals), torch.cat(fakes)
        accuracy = 0.5 * (
            float((real_all > 0).float().mean()) + float((fake_all < 0).float().mean())
        )
        return StepResult(
            losses={
                "discriminator": sum(d_losses) / len(d_losses),
                "generator": float(g_loss.detach()),
            },
            grad_norms={"discriminator": max(d_norms), "generator": g_norm},
            clipped={"discriminator": any(d_clipped), "generator": g_clipped},
            learning_rates={
                "discriminator": float(self.hp["lr_d"]),
                "generator": float(self.hp["lr_g"]),
            },
            extras={
                "d_real": float(real_all.mean()),
                "d_fake": float(fake_all.mean()),
                "d_accuracy": accuracy,
            },
        )

    def apply_hyperparameters(self, values: dict[str, Any], step: int) -> None:
        super().apply_hyperparameters(values, step)
        betas = (float(values["beta1"]), float(values["beta2"]))
        for optimizer, lr in ((self.opt_g, values["lr_g"]), (self.opt_d, values["lr_d"])):
            set_lr(optimizer, float(lr))
            for group in optimizer.param_groups:
                group["betas"] = betas

    def reset_discriminator(self, step: int) -> bool:
        torch.manual_seed(self.config.seed * 7919 + step)
        self.discriminator = self._make_d().to(self.device)
        self.opt_d = self._adam(self.discriminator, float(self.hp["lr_d"]))
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        self.generator.eval()
        try:
            g = torch.Generator().manual_seed(EVAL_SEED)
            out: torch.Tensor = self.generator(self._noise(n, g)).cpu()
            return out
        finally:
            self.generator.train()

    def evaluate(self, step: int) -> dict[str, Any]:
        n = int(
            self.config.evaluation.get("samples", 2500 if isinstance(self.dataset, Toy2D) else 1000)
        )
        fake = self.samples(n)
        if isinstance(self.dataset, Toy2D):
            covered, ratio = mode_coverage(fake, self.dataset)
            return {
                "modes_covered": covered,
                "modes": len(self.dataset.centers),
                "high_quality_ratio": ratio,
                "critic_gradient_norm": self._critic_gradient_norm(self.dataset.reference(n), fake),
            }
        assert isinstance(self.dataset, ImageDataset)
        figures = image_quality.evaluate_images(fake, self.dataset, self.config)
        figures["critic_gradient_norm"] = self._critic_gradient_norm(self.dataset.held_out, fake)
        return figures

    def _critic_gradient_norm(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        # At most a training batch's worth: the figure is a mean, and an image critic's
        # backward pass over a thousand samples would cost more than the milestone's FID.
        n = min(len(real), len(fake), self.config.batch_size)
        self.discriminator.eval()
        try:
            return gan_losses.critic_gradient_norm(
                self.discriminator, real[:n].to(self.device), fake[:n].to(self.device)
            )
        finally:
            self.discriminator.train()

    def pictures(self, directory: Path, step: int) -> list[Path]:
        if isinstance(self.dataset, Toy2D):
            path = directory / "samples.png"
            real = self.dataset.reference(1000)
            pictures.scatter(path, [(real, (170, 170, 170)), (self.samples(1000), (200, 30, 30))])
            return [path]
        path = directory / "samples.png"
        pictures.image_grid(path, self.samples(64))
        return [path]
