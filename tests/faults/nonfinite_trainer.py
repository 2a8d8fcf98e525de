"""The real trainer, whose weights turn to NaN once, at a given step: a fault on demand.

`python tests/faults/nonfinite_trainer.py STEP [trainer arguments]`, as a trainer pod's
command. At STEP every parameter of the model becomes NaN (as an overflow would leave
them), so the losses, gradients and every later step are NaN until a checkpoint is loaded.
It happens once per checkpoint volume (a marker file there): the attempts started after a
rollback or a deleted pod must train as the real trainer does. Only the tests use this;
the trainer image has no fault hooks."""

from __future__ import annotations

import math
import sys

import torch

from gentrain_trainer import __main__ as trainer_main
from gentrain_trainer.loop import Trainer

MARKER = ".nonfinite-injected"


def poison_at(step: int) -> None:
    train_one = Trainer.train_one

    def poisoned(self: Trainer) -> None:
        marker = self.options.checkpoint_dir / MARKER
        if self.step == step and not marker.exists():
            marker.write_text(str(step))
            with torch.no_grad():
                for module in self.family.components().values():
                    for parameter in module.parameters():
                        parameter.fill_(math.nan)
            print(f"fault injected: every weight NaN at step {step}", file=sys.stderr)
        train_one(self)

    Trainer.train_one = poisoned  # type: ignore[method-assign]


if __name__ == "__main__":
    poison_at(int(sys.argv[1]))
    sys.exit(trainer_main.main(sys.argv[2:]))
