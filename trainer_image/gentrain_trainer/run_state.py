"""A run's state in a checkpoint: what is saved at a milestone (weights and optimizer,
step, data position, the configuration and a searched rate in force), and how a run is
put back from it — on a restart (`resume`), or by a rollback command (`restore`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import distributed, final_milestone, live_config

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("gentrain.trainer")


def state(trainer: Trainer) -> dict[str, Any]:
    return {
        "family": trainer.family.state_dict(),
        "origin": trainer.origin,
        "step": trainer.step,
        "data_index": trainer.data_index,
        "samples": trainer.samples,
        "generation": trainer.generation,
        "hyperparameters": trainer.hp,
        "rate_factor": list(trainer.rate_factor) if trainer.rate_factor else None,
        "weight_growth": trainer.weight_growth.state(),
    }


def restore(trainer: Trainer, step: int, saved: dict[str, Any]) -> None:
    origin = int(saved.get("origin", 0))
    if origin != trainer.origin:  # the checkpoint's weights began at another step
        trainer.origin, trainer.family = origin, trainer.build_family(origin)
    trainer.family.load_state_dict(saved["family"])
    trainer.weight_growth.load(saved.get("weight_growth"))
    trainer.step, trainer.data_index = int(saved["step"]), int(saved["data_index"])
    trainer.samples = int(saved.get("samples", 0))
    saved_factor = saved.get("rate_factor")
    if saved_factor and int(saved_factor[1]) == trainer.generation:
        # A search made under the configuration still in force (a restart before the
        # operator wrote its choice into the job) still holds.
        trainer.rate_factor = (float(saved_factor[0]), int(saved_factor[1]))
    # The configuration in force now wins over the one saved: a rollback usually comes
    # together with new hyperparameters, and a restart must honour edits.
    trainer.family.apply_hyperparameters(trainer.effective_hp(), trainer.step - trainer.origin)
    # Every step from here trains under the configuration in force.
    trainer.generation_step = trainer.step
    # The generation it was saved under: which timeline it is on, even once the rotation
    # has removed the checkpoint itself.
    log.info(
        "resumed from checkpoint step %d (data index %d, saved under generation %d)",
        step,
        trainer.data_index,
        int(saved.get("generation", 0)),
    )


def latest(trainer: Trainer, at_most: int | None = None) -> tuple[int, dict[str, Any]] | None:
    """The newest loadable checkpoint (at or before `at_most`), as rank 0 reads it, on
    every rank: with several pods, rank 0's alone holds the checkpoints (the others have
    no volume of their own to read, and need none)."""
    return distributed.from_main(trainer.store.latest(at_most) if trainer.world.main else None)


def resume(trainer: Trainer) -> None:
    """Puts the run back as its options say: from the newest checkpoint (`auto`), from
    the newest at or before a step, or not at all (`none`)."""
    wanted = trainer.options.resume
    if wanted == "none":
        return
    if wanted == "auto":
        found = latest(trainer)
        if found is not None:
            restore(trainer, *found)
        return
    step = int(wanted)
    found = latest(trainer, at_most=step)
    if found is None:
        raise ValueError(f"--resume {step}: no loadable checkpoint at or before step {step}")
    restore(trainer, *found)


def save(
    trainer: Trainer,
    pictures: list[Path] | None = None,
    final: final_milestone.Series | None = None,
) -> None:
    """A checkpoint of this step; `final`: the final milestone's series, kept inside it
    (written before the checkpoint appears, so no checkpoint of the last step lacks it:
    see final_milestone)."""
    if trainer.world.main:  # one writer per pod; the other ranks hold the same state
        store = trainer.store
        if final is None and trainer.step >= trainer.max_steps:
            # The final step saved again (a rate probe's choice, a command): its final
            # milestone goes with it, or a pod lost before publishing it is replaced by
            # one with nothing to publish (s34).
            final = final_milestone.read(store.path(trainer.step))
        store.save(
            trainer.step,
            state(trainer),
            {
                "generation": trainer.generation,
                "family": trainer.config.family,
                "data_index": trainer.data_index,
            },
            pictures or [],
            {final_milestone.FILE: final_milestone.text(final)} if final else {},
        )
        trainer.retention = live_config.retention(trainer.options.config_path) or trainer.retention
        store.rotate(trainer.retention)
    trainer.last_saved_step = trainer.step
