"""A Lightning `Trainer` under gentrain: a small network fitting a noisy function, its
LightningModule written as Lightning's documentation writes one. The gentrain part is the
import and `callbacks=[GentrainCallback(...)]`.

    python examples/sdk/lightning_regression.py --learning-rate 0.003   # healthy
    python examples/sdk/lightning_regression.py --learning-rate 3       # far too high
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import lightning
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own convention)
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from gentrain_sdk.lightning import GentrainCallback  # gentrain


class Regression(lightning.LightningModule):
    def __init__(self, learning_rate: float, pause: float) -> None:
        super().__init__()
        self.learning_rate, self.pause = learning_rate, pause
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 1),
        )

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        loss = F.mse_loss(self.net(inputs), targets)
        self.log("train_loss", loss)
        time.sleep(self.pause)  # a bigger model's pace
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        self.log("val_loss", F.mse_loss(self.net(inputs), targets))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--interval", type=int, default=100, help="steps between milestones")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to sleep per step")
    args = parser.parse_args(argv)

    lightning.seed_everything(0, verbose=False)
    inputs = torch.randn(4096, 8)
    targets = torch.sin(inputs @ torch.randn(8, 1) / 2) + 0.1 * torch.randn(4096, 1)
    train = TensorDataset(inputs[:3584], targets[:3584])
    held_out = TensorDataset(inputs[3584:], targets[3584:])
    baseline = float(targets[:3584].var())  # predicting the mean: learned nothing
    # On the job's checkpoint volume, the checkpoints are what a rollback loads.
    scratch = tempfile.TemporaryDirectory()
    checkpoints = ModelCheckpoint(
        dirpath=os.environ.get("GENTRAIN_CHECKPOINT_DIR") or scratch.name,
        filename="{step}",
        every_n_train_steps=args.interval,
        save_top_k=-1,
    )
    trainer = lightning.Trainer(
        max_steps=args.steps,
        val_check_interval=args.interval,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoints, GentrainCallback(port=args.port, baseline_loss=baseline)],  # gentrain
    )
    trainer.fit(
        Regression(args.learning_rate, args.pause),
        DataLoader(train, batch_size=64, shuffle=True),
        DataLoader(held_out, batch_size=512),
    )
    scratch.cleanup()


if __name__ == "__main__":
    main()
