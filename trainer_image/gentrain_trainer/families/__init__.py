"""The four generative families. Each is a small module whose `train_step` returns its
losses; one training loop (`gentrain_trainer.loop`) serves them all."""

from __future__ import annotations

from typing import Any

import torch

from ..config import Config
from ..datasets import Dataset
from .base import Family, StepResult


def make_family(config: Config, dataset: Dataset, device: torch.device) -> Family:
    from .diffusion import Diffusion
    from .gan import GAN
    from .transformer import Transformer
    from .vae import VAE

    classes: dict[str, Any] = {
        "gan": GAN,
        "vae": VAE,
        "transformer": Transformer,
        "diffusion": Diffusion,
    }
    family: Family = classes[config.family](config, dataset, device)
    return family


__all__ = ["Family", "StepResult", "make_family"]
