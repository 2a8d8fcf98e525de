"""The real trainer, whose weights turn to NaN once, when the test says so: a fault on
demand.

`python tests/faults/nonfinite_trainer.py [trainer arguments]`, as a trainer pod's command.
At the first step after a file named `.nonfinite-now` appears in the checkpoint directory
(the test writes it once the operator has judged a milestone healthy), every parameter of
the model becomes NaN (as an overflow would leave them), so the losses, gradients and
every later step are NaN until a checkpoint is loaded. A fixed step did not work: on a
loaded machine the operator's first scrape came after it, so no healthy milestone had
been judged. It happens once per checkpoint volume (the step is written to a marker file
there): the attempts started after a rollback or a deleted pod train as the real trainer
does. Only the tests use this; the trainer image has no fault hooks."""

from __future__ import annotations

import math
import sys

import torch

from gentrain_trainer import __main__ as trainer_main
from gentrain_trainer.loop import Trainer

MARKER, TRIGGER = ".nonfinite-injected", ".nonfinite-now"


def poison_when_triggered() -> None:
    train_one = Trainer.train_one

    def poisoned(self: Trainer) -> None:
        marker = self.options.checkpoint_dir / MARKER
        if (self.options.checkpoint_dir / TRIGGER).exists() and not marker.exists():
            marker.write_text(str(self.step))
            with torch.no_grad():
                for module in self.family.components().values():
                    for parameter in module.parameters():
                        parameter.fill_(math.nan)
            print(f"fault injected: every weight NaN at step {self.step}", file=sys.stderr)
        train_one(self)

    Trainer.train_one = poisoned  # type: ignore[method-assign]


if __name__ == "__main__":
    poison_when_triggered()
    sys.exit(trainer_main.main(sys.argv[1:]))
