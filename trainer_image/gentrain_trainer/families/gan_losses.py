"""GAN objectives as pure functions of the discriminator's raw outputs (logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind in ("non_saturating", "minimax"):
        return (F.softplus(-real) + F.softplus(fake)).mean()
    if kind == "hinge":
        return (F.relu(1 - real) + F.relu(1 + fake)).mean()
    if kind == "least_squares":
        return 0.5 * ((real - 1) ** 2 + fake**2).mean()
    if kind == "wgan_gp":
        return (fake - real).mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "non_saturating":
        return F.softplus(-fake).mean()
    if kind == "minimax":
        # Goodfellow et al.'s original: minimise log(1 - D(G(z))) = -softplus(logit).
        return -F.softplus(fake).mean()
    if kind == "least_squares":
        return 0.5 * ((fake - 1) ** 2).mean()
    if kind in ("hinge", "wgan_gp"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def gradient_penalty(
    critic: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): (||grad D(x_hat)|| - 1)^2 on interpolates."""
    norms = _interpolate_gradient_norms(critic, real, fake, generator, create_graph=True)
    penalty: torch.Tensor = ((norms - 1) ** 2).mean()
    return penalty


def _interpolate_gradient_norms(
    critic: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None,
    create_graph: bool,
) -> torch.Tensor:
    """The norm of the critic's input gradient at each interpolate of real and fake (the
    same number of each), mixed at weights drawn from `generator`."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=generator).to(real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=create_graph)
    norms: torch.Tensor = grad.flatten(1).norm(dim=1)
    return norms


def critic_gradient_norm(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The mean norm of the critic's gradient with respect to its input, on the points
    WGAN-GP's penalty is taken at (interpolates of real and generated samples, at fixed
    mixing weights so that two milestones are compared on the same draw). A Wasserstein
    critic must be 1-Lipschitz: the penalty holds this near 1; a critic without a working
    constraint lets it grow without bound. `real` and `fake` carry no graph (data and
    samples drawn without gradients) and are as many."""
    mixing = torch.Generator().manual_seed(2017)
    return float(_interpolate_gradient_norms(critic, real, fake, mixing, False).mean())


def r1_penalty(critic: torch.nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): squared gradient norm on real data."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    penalty: torch.Tensor = grad.flatten(1).pow(2).sum(dim=1).mean()
    return penalty
