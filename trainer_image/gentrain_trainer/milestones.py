"""A milestone of the built-in trainer: the window's summary, evaluation and pictures, the
checkpoint, the configuration taken up, and the milestone published with the generation
the operator judges it under."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gentrain_sdk import exporter

from . import final_milestone, live_metrics, run_state

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("gentrain.trainer")


def publish(trainer: Trainer) -> None:
    """The milestone at the trainer's step: evaluated, checkpointed, the configuration
    taken up, then published (see below for the generation it carries)."""
    evaluation: dict[str, Any] = {}
    evaluation_seconds = 0.0
    summary = trainer.window.summary()
    trainer.since_start.add(summary)
    for component, growth in trainer.weight_growth.growth.items():
        summary["components"].setdefault(component, {})["weight_growth"] = growth
    directory = trainer.options.checkpoint_dir / f".pictures-{trainer.step}"
    pictures: list[Path] = []
    if trainer.world.main:  # evaluation, pictures and the checkpoint: rank 0's alone
        directory.mkdir(parents=True, exist_ok=True)
        if trainer.options.evaluate:
            started = time.perf_counter()
            evaluation = trainer.family.evaluate(trainer.step)
            pictures = trainer.family.pictures(directory, trainer.step)
            evaluation_seconds = time.perf_counter() - started
            trainer.history.pictures(trainer.step, pictures)
    step, finished, origin = trainer.step, time.time(), trainer.origin

    # The final checkpoint holds the final milestone from the moment it exists: a pod
    # killed after it, while taking up the configuration below (a rate probe there
    # trains for seconds), was replaced by one that resumed at the end with nothing
    # to publish. Kept again, complete, once the configuration is taken up.
    trained_under = (trainer.generation, trainer.generation_step)

    def series(generation: tuple[int, int]) -> final_milestone.Series:
        """The milestone, with the commands' results so far."""
        return exporter.milestone_series(
            step,
            finished,
            summary,
            evaluation,
            trainer.since_start,
            origin,
            trainer.searched,
            trainer.refused,
            generation,
        )

    run_state.save(trainer, pictures, series(trained_under) if step >= trainer.max_steps else None)
    if trainer.world.main:
        for leftover in directory.iterdir():
            leftover.unlink()
        directory.rmdir()
    _log(trainer, summary, evaluation, evaluation_seconds)
    trainer.window.reset()
    # The new configuration is taken up before the milestone is published, with the
    # generation in force from here on: the operator knows at which milestone its
    # change arrived, and judges it on the next window, the first one trained entirely
    # under it. Not a rollback taken up here: the run goes on from an earlier step, on
    # another timeline, and the milestone at the end of its first window there
    # announces it (as for one taken up between milestones). Announced here, the
    # rollback was judged on the window before it — trained to NaN — and a second one
    # followed (fresh clone s60).
    trainer.apply_config()
    trainer.collector.live = {
        **trainer.collector.live,
        **live_metrics.configuration(trainer),
        **trainer.counters,
    }
    rolled_back = trainer.step < step
    trainer.collector.milestone = series(
        trained_under if rolled_back else (trainer.generation, trainer.generation_step)
    )
    trainer.searched = None
    trainer.history.milestone(step, trainer.collector.milestone)
    if trainer.world.main and step >= trainer.max_steps:
        final_milestone.keep(trainer.store.path(step), trainer.collector.milestone)


def _log(
    trainer: Trainer, summary: dict[str, Any], evaluation: dict[str, Any], seconds: float
) -> None:
    """One line per milestone in the pod's log: what `kubectl logs` shows of the run."""
    log.info(
        "milestone %s",
        json.dumps(
            {
                "step": trainer.step,
                "generation": trainer.generation,
                "loss": {
                    k: round(v["loss_mean"], 5)
                    for k, v in summary["components"].items()
                    if "loss_mean" in v
                },
                "nonfinite": summary["nonfinite_losses"],
                "evaluation": {
                    k: (round(v, 4) if isinstance(v, float) else v) for k, v in evaluation.items()
                },
                "evaluation_seconds": round(seconds, 2),
            }
        ),
    )
