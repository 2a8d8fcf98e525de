"""A rollback through a framework's own checkpoints: the model's weights and the
optimizer's state as they were saved at (or newest before) the command's step; the rates
in force stay as the job sets them now.

Why the rates stay: a rollback usually comes with a rate change in the same remediation
(roll back and lower the rate); the optimizer's saved state carries the rates of its
time, and loading it would undo the change the operator just made. The step count, the
schedule's position and the data stream go on (a framework's loop cannot be rewound from
a callback): the batches trained since the checkpoint are not replayed, which also does
what a rollback that skips batches asks. Duck-typed over torch objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The keys of an optimizer's parameter group that a rate change or a schedule sets.
RATE_KEYS = ("lr", "initial_lr")


class NoCheckpointError(LookupError):
    """No checkpoint at or before a rollback's step: the command is refused as
    `no_checkpoint`, and the operator's ladder moves on."""


def newest_at_or_before(saved: Mapping[int, Path], step: int | None) -> tuple[int, Path]:
    """The checkpoint (its step and path) a rollback to `step` loads."""
    if step is None:  # the configuration's parser gives every rollback one
        raise ValueError("a rollback without a step")
    eligible = [s for s in saved if s <= step]
    if not eligible:
        raise NoCheckpointError(f"no checkpoint at or before step {step} (saved: {sorted(saved)})")
    chosen = max(eligible)
    return chosen, saved[chosen]


def restore(
    model: Any,
    optimizers: Sequence[Any],
    model_state: Mapping[str, Any],
    optimizer_states: Sequence[Mapping[str, Any]],
    strict: bool = True,
) -> None:
    """Loads the saved weights and optimizer states, keeping each parameter group's rates
    as they are now. `strict=False` for a checkpoint that leaves out tied weights (a
    Hugging Face model's output embedding): any key it has that the model lacks is still
    an error."""
    if len(optimizer_states) != len(optimizers):
        raise ValueError(
            f"the checkpoint holds {len(optimizer_states)} optimizer states, "
            f"the program trains with {len(optimizers)} optimizers"
        )
    rates = [
        [{k: group[k] for k in RATE_KEYS if k in group} for group in optimizer.param_groups]
        for optimizer in optimizers
    ]
    loaded = model.load_state_dict(model_state, strict=strict)
    unexpected = list(getattr(loaded, "unexpected_keys", []) or [])
    if unexpected:
        raise ValueError(f"the checkpoint holds weights the model lacks: {unexpected[:5]}")
    for optimizer, state, kept in zip(optimizers, optimizer_states, rates, strict=True):
        optimizer.load_state_dict(state)
        for group, values in zip(optimizer.param_groups, kept, strict=True):
            group.update(values)
