"""The one-shot commands the operator (or a user) puts in the job: roll back to a
checkpoint, re-initialise a GAN's discriminator or the whole model, search the learning
rate. Each is applied once, by id, when the trainer takes the configuration up (at a
milestone, or as soon as the file changes between two)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gentrain_contract import metrics
from gentrain_contract.commands import CommandSpec

from . import distributed, learning_rate_search, run_state
from .datasets import Batch

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("gentrain.trainer")


def run(trainer: Trainer, command: CommandSpec, generation: int) -> None:
    """Applies one command, then marks it applied (once per id; the ids applied are kept
    beside the checkpoints). Marked after its effect, not before: a crash in between
    repeats the command (each is safe to repeat), never loses it."""
    apply(trainer, command, generation)
    mark_applied(trainer, command.id)
    trainer.history.command(
        trainer.step, command.id, command.action, trainer.refused.get(command.id)
    )


def mark_applied(trainer: Trainer, command_id: str) -> None:
    # Rank 0 speaks for the pod: the other ranks keep the ids, and write no files.
    trainer.applied.record(command_id, write=trainer.world.main)


def apply(trainer: Trainer, command: CommandSpec, generation: int) -> None:
    if command.action in ("search_learning_rate", "probe_learning_rate"):
        search_learning_rate(trainer, command, generation)
        return
    if command.action == "reinitialize":
        trainer.origin, trainer.family = trainer.step, trainer.build_family(trainer.step)
        trainer.family.apply_hyperparameters(trainer.effective_hp(), 0)
        trainer.window.forget()
        trainer.smoothed.clear()
        # The checkpoint at this step now holds the fresh weights: a restart before the
        # next milestone resumes them, not the ones this command threw away.
        run_state.save(trainer)
        log.info(
            "command %s: model re-initialised at step %d; %d steps remain",
            command.id,
            trainer.step,
            trainer.max_steps - trainer.step,
        )
        trainer.count(metrics.COMMANDS_APPLIED_TOTAL.name, command.action)
        return
    if command.action == "reset_discriminator":
        if trainer.family.reset_discriminator(trainer.step):
            trainer.weight_growth.begin(
                trainer.family.components(), trainer.step, only={"discriminator"}
            )
            log.info(
                "command %s: discriminator re-initialised at step %d", command.id, trainer.step
            )
            trainer.count(metrics.COMMANDS_APPLIED_TOTAL.name, command.action)
        else:
            refuse(
                trainer, command, "no_discriminator", f"the {trainer.config.family} family has none"
            )
        return
    assert command.step is not None
    found = run_state.latest(trainer, at_most=command.step)
    if found is None:
        refuse(
            trainer,
            command,
            "no_checkpoint",
            f"no loadable checkpoint at or before step {command.step}",
        )
        return
    step, state = found
    read = trainer.data_index  # every batch read so far
    run_state.restore(trainer, step, state)
    if command.skip_batches:
        # Past a bad stretch (PaLM's remedy): no batch read since the checkpoint is read
        # again. The operator counts the steps up to the milestone it decided at; the
        # command may arrive later (a program on the SDK takes it up a window later), and
        # after an earlier rollback that skipped the data has moved further than the steps.
        trainer.data_index = max(trainer.data_index + command.skip_batches, read)
    trainer.window.forget()
    trainer.smoothed.clear()
    # Loaded: now the later timeline goes aside, so that a restart from here on resumes
    # at or after `step`, never on the checkpoints this rollback left behind.
    abandoned = trainer.store.abandon_after(step, command.id) if trainer.world.main else []
    log.info(
        "command %s: rolled back to step %d, skipping %d batches%s",
        command.id,
        step,
        command.skip_batches,
        f"; later checkpoints {abandoned} moved aside (abandoned-*)" if abandoned else "",
    )
    trainer.count(metrics.COMMANDS_APPLIED_TOTAL.name, command.action)


def refuse(trainer: Trainer, command: CommandSpec, reason: str, why: str) -> None:
    """A command that cannot be carried out: logged, counted, and exported by id with its
    reason at every milestone from now on, so the operator learns that its remediation did
    not happen (it judged a refused rollback as a rollback that did not help)."""
    log.warning("command %s refused: %s", command.id, why)
    trainer.count(metrics.CONFIG_REJECTED_TOTAL.name, "commands")
    trainer.refused[command.id] = reason


def search_learning_rate(trainer: Trainer, command: CommandSpec, generation: int) -> None:
    """`search_learning_rate` (a range test, usually from fresh weights) or
    `probe_learning_rate` (the rate check from the run's weights, both ways)."""

    # Each rank its own batches, as in training; rank 0's choice holds for all.
    def batch_at(i: int) -> Batch:
        return trainer.dataset.batch(
            (trainer.data_index + i) * trainer.world.size + trainer.world.rank,
            trainer.config.batch_size,
        )

    def seed_at(i: int) -> int:
        return trainer.seed_at(trainer.step + i)

    try:
        if command.action == "probe_learning_rate":
            result = learning_rate_search.probe(
                trainer.family,
                trainer.effective_hp(),
                batch_at,
                seed_at,
                command.search_steps,
                trainer.step - trainer.origin,
            )
            # The probe scales the rates in force, which may carry an earlier choice.
            if trainer.rate_factor is not None:
                result.factor *= trainer.rate_factor[0]
        else:
            result = learning_rate_search.search(
                trainer.family,
                trainer.config.family,
                trainer.hp,
                batch_at,
                seed_at,
                command.search_steps,
                command.max_factor,
            )
    except learning_rate_search.SearchRefusedError as refused:
        refuse(trainer, command, "search_refused", str(refused))
        return
    factor = distributed.from_main(result.factor if trainer.world.main else None)
    assert factor is not None
    result.factor = factor
    # How far a probe moved the rate in force (a search comes with a fresh start, whose
    # optimizer is fresh).
    in_force = trainer.rate_factor[0] if trainer.rate_factor is not None else 1.0
    moved = factor / in_force if command.action == "probe_learning_rate" else 1.0
    trainer.rate_factor = (factor, generation) if factor != 1.0 else None
    trainer.searched = result
    trainer.family.apply_hyperparameters(trainer.effective_hp(), trainer.step - trainer.origin)
    restarted = (
        moved >= learning_rate_search.RESTART_MOMENTS_FROM and trainer.family.restart_optimizer()
    )
    run_state.save(trainer)  # a restart before the operator writes the choice keeps it
    log.info(
        "command %s: learning-rate search at step %d, %d steps per candidate: %s; chose x%g%s",
        command.id,
        trainer.step,
        result.steps,
        ", ".join(f"x{f:g} {loss:.4g}" for f, loss in result.losses.items()),
        factor,
        "; the optimizer's moments restarted" if restarted else "",
    )
    trainer.count(metrics.COMMANDS_APPLIED_TOTAL.name, command.action)
