"""A plain PyTorch GAN on a ring of eight Gaussians that reports to gentrain: the lines
marked `# gentrain` are all it adds. Its losses are named by role (generator,
discriminator), so the operator reads them as a game's, and its milestones carry what a
GAN's diagnosis reads: the discriminator's accuracy and the modes its samples cover.

    python examples/sdk/gan_loop.py                                   # healthy
    python examples/sdk/gan_loop.py --loss minimax --discriminator-rate 0.001 \\
        --generator-rate 0.0001                                       # D overpowers G

It serves gentrain's metrics on :9090 (or --port).
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own convention)

from gentrain_sdk import Reporter  # gentrain

MODES, RADIUS, SIGMA = 8, 2.0, 0.02


def ring(n: int, generator: torch.Generator) -> torch.Tensor:
    angles = torch.randint(MODES, (n,), generator=generator) * (2 * math.pi / MODES)
    centres = RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)
    return centres + SIGMA * torch.randn(n, 2, generator=generator)


def mlp(inputs: int, outputs: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, outputs),
    )  # fmt: skip


def coverage(samples: torch.Tensor) -> tuple[int, float]:
    """The modes with at least 1% of the samples within 3 sigma, and the share of the
    samples within 3 sigma of any mode."""
    angles = torch.arange(MODES) * (2 * math.pi / MODES)
    centres = RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)
    distance, nearest = torch.cdist(samples, centres).min(dim=1)
    near = distance < 3 * SIGMA
    counts = torch.bincount(nearest[near], minlength=MODES)
    return int((counts >= 0.01 * len(samples)).sum()), float(near.float().mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=("non_saturating", "minimax"), default="non_saturating")
    parser.add_argument("--generator-rate", type=float, default=1e-3)
    parser.add_argument("--discriminator-rate", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--interval", type=int, default=500, help="steps between milestones")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    data = torch.Generator().manual_seed(args.seed)
    generator, discriminator = mlp(2, 2), mlp(2, 1)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.generator_rate, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(
        discriminator.parameters(), lr=args.discriminator_rate, betas=(0.5, 0.999)
    )
    reporter = Reporter(args.port, max_steps=args.steps)  # gentrain
    right: list[float] = []  # the discriminator's accuracy on the window's batches

    for step in range(1, args.steps + 1):
        real, fake = ring(256, data), generator(torch.randn(256, 2))
        real_out, fake_out = discriminator(real), discriminator(fake.detach())
        d_loss = F.softplus(-real_out).mean() + F.softplus(fake_out).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        right.append(0.5 * float((real_out > 0).float().mean() + (fake_out < 0).float().mean()))
        out = discriminator(fake)
        # minimax: the generator minimises log(1 - D(G(z))), which saturates once D wins
        g_loss = -F.softplus(out).mean() if args.loss == "minimax" else F.softplus(-out).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        reporter.step(step, {"generator": g_loss, "discriminator": d_loss})  # gentrain
        if step % args.interval == 0:
            with torch.no_grad():
                covered, near = coverage(generator(torch.randn(2000, 2)))
            figures = {  # gentrain: what a GAN's diagnosis reads
                "discriminator_accuracy_ratio": sum(right) / len(right),
                "modes": MODES,
                "modes_covered": covered,
                "high_quality_ratio": near,
            }
            reporter.milestone(step, figures)  # gentrain
            right.clear()


if __name__ == "__main__":
    main()
