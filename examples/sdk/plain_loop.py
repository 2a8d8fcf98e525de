"""A plain PyTorch training loop that reports to gentrain: the lines marked `# gentrain`
are all it adds (an import and four calls).

    python examples/sdk/plain_loop.py --learning-rate 0.003   # healthy
    python examples/sdk/plain_loop.py --learning-rate 3       # far too high

It serves gentrain's metrics on :9090 (or --port); the operator, or Prometheus, scrapes
them, and the operator diagnoses each milestone as it does the built-in trainer's.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own convention)

from gentrain_sdk import Reporter, follow  # gentrain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--interval", type=int, default=100, help="steps between milestones")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds to sleep per step (a bigger model's pace)"
    )
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    inputs = torch.randn(4096, 8)
    targets = torch.sin(inputs @ torch.randn(8, 1) / 2) + 0.1 * torch.randn(4096, 1)
    train, held_out = slice(0, 3584), slice(3584, None)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    baseline = float(targets[train].var())  # the loss of predicting the mean: learned nothing
    reporter = Reporter(args.port, max_steps=args.steps, baseline_loss=baseline)  # gentrain
    follow(reporter, optimizer, model)  # gentrain: the operator's changes reach these two

    for step in range(1, args.steps + 1):
        batch = torch.randint(0, 3584, (64,))
        loss = F.mse_loss(model(inputs[train][batch]), targets[train][batch])
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        optimizer.step()
        time.sleep(args.pause)
        lr = optimizer.param_groups[0]["lr"]
        reporter.step(step, loss, grad_norms=norm, learning_rates=lr)  # gentrain
        if step % args.interval == 0:
            with torch.no_grad():
                held_out_loss = F.mse_loss(model(inputs[held_out]), targets[held_out]).item()
            reporter.milestone(step, {"validation_loss": held_out_loss})  # gentrain


if __name__ == "__main__":
    main()
