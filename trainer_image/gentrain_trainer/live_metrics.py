"""The trainer's live series, exported after every step (the milestone's series are
gentrain_sdk.exporter's): the step, throughput, smoothed losses, gradient norms and rates,
and the configuration in force."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gentrain_contract import metrics
from gentrain_sdk.smoothing import smoothed

from . import resources
from .final_milestone import Series

if TYPE_CHECKING:
    from .loop import Trainer


def publish(
    trainer: Trainer, norms: dict[str, float], lrs: dict[str, float], total: float, data: float
) -> None:
    """Replaces the live series with this step's: `total` and `data` its seconds in all
    and waiting for data, `norms` and `lrs` its gradient norms and rates by component."""
    previous = trainer.collector.live.get(metrics.STEP_SECONDS.name, {}).get(())
    live: Series = {
        metrics.STEP.name: {(): float(trainer.step)},
        metrics.SAMPLES_TOTAL.name: {(): float(trainer.samples)},
        metrics.STEP_SECONDS.name: {(): smoothed(previous, total)},
        metrics.STEP_DATA_SECONDS.name: {(): data},
        metrics.STEP_COMPUTE_SECONDS.name: {(): total - data},
        metrics.LOSS.name: {(k,): v for k, v in trainer.smoothed.values.items()},
        metrics.GRAD_NORM.name: {(k,): v for k, v in norms.items()},
        metrics.LEARNING_RATE.name: {(k,): v for k, v in lrs.items()},
        **configuration(trainer),
        metrics.CHECKPOINTS_DAMAGED_TOTAL.name: {(): float(trainer.store.damaged)},
        metrics.DEVICE_INFO.name: {
            (trainer.device.type, resources.device_name(trainer.device)): 1.0
        },
        metrics.TORCH_THREADS.name: {(): float(trainer.threads)},
        metrics.MAX_STEPS.name: {(): float(trainer.max_steps)},
        **(
            {metrics.BASELINE_LOSS.name: {(): trainer.baseline}}
            if trainer.baseline is not None
            else {}
        ),
        **trainer.counters,
    }
    trainer.collector.live = live


def configuration(trainer: Trainer) -> Series:
    """The configuration in force: its generation and every hyperparameter, always
    exported together (a scrape once read a new generation with the old rates)."""
    return {
        metrics.HYPERPARAMETER.name: {
            (k,): float(v) for k, v in trainer.effective_hp().items() if not isinstance(v, str)
        },
        metrics.HYPERPARAMETER_INFO.name: {
            (k, v): 1.0 for k, v in trainer.hp.items() if isinstance(v, str)
        },
        metrics.CONFIG_GENERATION.name: {(): float(trainer.generation)},
        metrics.CONFIG_GENERATION_STEP.name: {(): float(trainer.generation_step)},
    }
