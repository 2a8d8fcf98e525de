"""The one training loop for every family: steps, milestones, live config, commands."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gentrain_contract import metrics, program
from gentrain_contract.commands import CommandSpec
from gentrain_sdk import exporter
from gentrain_sdk.applied import AppliedCommands
from gentrain_sdk.gpu import NVML
from gentrain_sdk.history import History
from gentrain_sdk.rate_search import SearchResult
from gentrain_sdk.smoothing import Smoothed
from gentrain_sdk.window import SinceStart, Window

from . import (
    commands,
    distributed,
    final_milestone,
    learning_rate_search,
    live_config,
    live_metrics,
    milestones,
    resources,
    run_state,
    update_ratio,
)
from .checkpoints import CheckpointStore
from .config import Config, load
from .datasets import Batch, make_dataset
from .families import Family, make_family
from .weight_growth import WeightGrowth

log = logging.getLogger("gentrain.trainer")


@dataclass
class Options:
    config_path: Path
    checkpoint_dir: Path
    metrics_port: int = program.DEFAULT_METRICS_PORT
    resume: str = "auto"  # auto | none | a step number
    device: str = "auto"
    max_steps: int | None = None
    evaluate: bool = True
    # Off only for the overhead benchmark: no window statistics, no exported metrics.
    monitoring: bool = True
    # At the end, wait up to this long for one more scrape, so the final milestone is read.
    final_scrape_wait: float = 0.0
    # Only scrapes whose User-Agent starts with this end that wait (empty: any scrape). A
    # Prometheus scraping the pod too (the chart's PodMonitor) must not end it: the trainer
    # would exit before the operator, the one that acts on it, read the final milestone.
    final_scrape_by: str = ""
    # bf16 autocast on CUDA (always, in a pod); off only to measure what it buys
    # (scripts/gpu_check.py).
    autocast: bool = True


def step_seed(seed: int, step: int) -> int:
    return (seed * 2_654_435_761 + step * 40_503) % (2**62)


class Trainer:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.config: Config = load(options.config_path)
        self.max_steps = options.max_steps or self.config.max_steps
        self.world = distributed.current()
        self.threads = resources.configure_threads(self.world.size)
        self.device = resources.choose_device(options.device, self.world.local_rank)
        self.dataset = make_dataset(self.config.data, self.config.seed)
        # The step at which the current weights were initialised: 0, or where a
        # `reinitialize` command started afresh. Families see steps counted from here, so
        # warm-up, LR decay, EMA warm-up and KL annealing restart with the weights.
        self.origin = 0
        self.weight_growth = WeightGrowth()  # measured from each initialisation on
        self.family: Family = self.build_family(0)
        self.hp: dict[str, Any] = dict(self.config.hyperparameters)
        self.generation = self.config.generation
        # The step from which that generation applies (exported with it): the operator
        # judges a change on the first window trained wholly under it — the one ending at
        # the milestone that shows it, when it was taken up at that window's start.
        self.generation_step = 0
        # The configuration file as last taken up (rank 0 only): the loop takes it up again
        # as soon as it changes, not at the next milestone — a remedy that waited for the
        # milestone lost a whole window (see docs/diagnosis-calibration.md, session 25).
        self.config_stamp: live_config.Stamp | None = None
        # A learning-rate search's choice: (factor, the configuration generation it was
        # made under). It scales the configured rates until that generation changes — the
        # operator writes the chosen rates into the job, which makes the next generation.
        self.rate_factor: tuple[float, int] | None = None
        self.searched: SearchResult | None = None
        self.retention = self.config.retention
        self.store = CheckpointStore(options.checkpoint_dir, self.config.checkpoint_keep)
        self.applied = AppliedCommands(
            options.checkpoint_dir / program.APPLIED_COMMANDS_FILE,
            (command.id for command in self.config.commands),
        )
        # Rank 0's, on every rank: the other pods of a job have no checkpoint volume.
        self.applied.ids = distributed.from_main(self.applied.ids)
        self.refused: dict[str, str] = {}  # command id -> reason, exported at milestones
        self.step = 0
        self.data_index = 0
        self.window = Window()
        self.since_start = SinceStart()
        self.update_probe = update_ratio.UpdateProbe()
        self.baseline = self.family.baseline_loss()
        self.smoothed = Smoothed()  # the live loss, by component
        self.counters: dict[str, dict[tuple[str, ...], float]] = {
            metrics.CONFIG_REJECTED_TOTAL.name: {},
            metrics.COMMANDS_APPLIED_TOTAL.name: {},
        }
        self.samples = 0
        self.stop_requested = False
        self.collector = exporter.TrainerCollector(NVML() if self.device.type == "cuda" else None)
        # Rank 0 speaks for the pod: the other ranks serve no metrics and write no files.
        self.registry = exporter.start(
            options.metrics_port if self.world.main else 0,
            self.collector,
            counted_agent=options.final_scrape_by,
        )
        # The run's history (rank 0's): TensorBoard events beside its checkpoints, and an
        # MLflow run when MLFLOW_TRACKING_URI is set.
        self.history = (
            History.beside(options.checkpoint_dir, os.environ.get(program.JOB_VARIABLE))
            if self.world.main and options.monitoring
            else History([])
        )
        self.last_saved_step = -1
        self.outcome = ""

    def close(self) -> None:
        """Closes the run's history (event files held open, writer threads): ended as
        finished when the run reached its last step."""
        self.history.close(finished=self.step >= self.max_steps)

    def build_family(self, origin: int) -> Family:
        """The family with fresh weights; from `origin` on, over the steps that remain
        (a different seed from the first initialisation, the same on every replay)."""
        config = self.config
        if origin:
            config = replace(
                config,
                seed=config.seed + origin,
                max_steps=max(1, self.max_steps - origin),
                hyperparameters=self.effective_hp(),
            )
        family = make_family(config, self.dataset, self.device)
        self.weight_growth.begin(family.components(), origin)
        return family

    def effective_hp(self) -> dict[str, Any]:
        """The hyperparameters in force: the configured ones, with a searched rate factor."""
        if self.rate_factor is None:
            return dict(self.hp)
        return learning_rate_search.scaled(self.hp, self.rate_factor[0])

    def resume(self) -> None:
        """Continues from a checkpoint as the options say (see run_state.resume)."""
        run_state.resume(self)

    # -- one step -------------------------------------------------------------------
    def _next_batch(self) -> Batch:
        started = time.perf_counter()
        # Under torchrun, rank r of n draws batches r, n + r, 2n + r, ...: each its own.
        index = self.data_index * self.world.size + self.world.rank
        batch = self.dataset.batch(index, self.config.batch_size)
        self.data_index += 1
        self.samples += len(batch.x)
        self._data_seconds += time.perf_counter() - started
        return batch

    def seed_at(self, step: int) -> int:
        """The noise seed of a step: the same on every replay, each rank its own."""
        return step_seed(self.config.seed, step) + self.world.rank

    def train_one(self) -> None:
        self._data_seconds = 0.0
        started = time.perf_counter()
        torch.manual_seed(self.seed_at(self.step))
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and self.options.autocast
            else contextlib.nullcontext()
        )
        probing = self.options.monitoring and self.step % update_ratio.EVERY == 0
        if probing:
            self.update_probe.start(self.family.components())
        with autocast:
            result = self.family.train_step(self._next_batch, self.step - self.origin)
        ratios = self.update_probe.finish() if probing else {}
        self.step += 1
        total = time.perf_counter() - started
        if not self.options.monitoring:
            return
        warmup = int(self.hp.get("warmup_steps", 0) or 0)
        self.weight_growth.observe(
            self.family.components(), self.step, warmup, self.family.updates_per_step()
        )
        self.window.add(
            result.losses,
            result.grad_norms,
            result.clipped,
            result.extras,
            self._data_seconds,
            total,
            ratios,
        )
        self.smoothed.add(result.losses)
        live_metrics.publish(
            self, result.grad_norms, result.learning_rates, total, self._data_seconds
        )

    # -- milestones -----------------------------------------------------------------
    def milestone(self) -> None:
        """Evaluates, checkpoints, takes the configuration up and publishes the milestone
        (see milestones.publish)."""
        milestones.publish(self)

    def count(self, counter: str, label: str) -> None:
        series = dict(self.counters[counter])
        series[(label,)] = series.get((label,), 0.0) + 1
        self.counters[counter] = series

    def apply_config(self) -> None:
        """Takes up the configuration file as it is now (see live_config.take_up)."""
        live_config.take_up(self)

    def take_up_between_milestones(self) -> None:
        """The file changed since the last milestone: its changes take effect from this
        step, exported (from the next scrape) with the step they apply from. The operator
        reads the generation with each milestone, so it sees the change arrive at the next
        one; it judges the change on that window when the change held for nearly all of it
        (policy.judge)."""
        before = self.generation
        self.apply_config()
        if self.generation != before:
            log.info(
                "configuration generation %d taken up at step %d, between milestones",
                self.generation,
                self.step,
            )

    def run_command(self, command: CommandSpec, generation: int) -> None:
        commands.run(self, command, generation)

    # -- the run --------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_requested = True

    def run(self) -> None:
        """Trains to max_steps. Call `resume()` first to continue from a checkpoint. A
        SIGTERM meanwhile stops it at the next step, with a checkpoint; the process's own
        handler is put back after (a trainer run inside another program, a test, must
        not leave it deaf to SIGTERM)."""
        previous = signal.signal(signal.SIGTERM, self.request_stop)
        try:
            self._run()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _run(self) -> None:
        self.apply_config()
        if self.step >= self.max_steps and self.world.main:
            kept = final_milestone.read(self.store.path(self.step))
            if kept is not None:
                self.collector.milestone = kept
                log.info("resumed at the end: the final milestone of step %d again", self.step)
        live_metrics.publish(self, {}, {}, 0.0, 0.0)
        log.info(
            "training %s on %s (%d threads) from step %d to %d",
            self.config.family,
            self.device,
            self.threads,
            self.step,
            self.max_steps,
        )
        while self.step < self.max_steps:
            changed = self.world.main and (
                live_config.stamp(self.options.config_path) != self.config_stamp
            )
            if self.world.size > 1:  # one collective for both: every rank acts at this step
                self.stop_requested, changed = distributed.any_rank_each(
                    self.stop_requested, changed
                )
            if self.stop_requested:
                break
            if changed:
                self.take_up_between_milestones()
            self.train_one()
            if self.step % self.config.checkpoint_interval == 0 or self.step == self.max_steps:
                self.milestone()
        if self.stop_requested:
            if self.step != self.last_saved_step:
                log.info("SIGTERM: saving step %d before exiting", self.step)
                run_state.save(self)
            self.outcome = (
                f"stopped by SIGTERM at step {self.step} of {self.max_steps}; checkpoint saved"
            )
        else:
            self.outcome = f"completed {self.step} steps"
            if not self.wait_for_final_scrape():
                # The operator then does not wait for a final milestone it never read.
                self.outcome += (
                    f"; the final milestone was not scraped within "
                    f"{self.options.final_scrape_wait:g} s"
                )
        log.info("%s", self.outcome)
        if self.world.size > 1:  # ranks that stayed in step hold the same weights
            log.info(
                "rank %d of %d: weights fingerprint %.10e",
                self.world.rank,
                self.world.size,
                distributed.fingerprint(self.family.components().values()),
            )

    def wait_for_final_scrape(self) -> bool:
        """Keeps the exporter up until it is scraped once more (or the wait runs out): a
        trainer that exits at once takes its final milestone — the run's end state, what
        the report calls "after" — with it whenever it ends between two scrapes. False
        when the wait ran out."""
        wait = self.options.final_scrape_wait
        if self.world.main and self.options.metrics_port > 0 and wait > 0:
            log.info("final milestone published; waiting up to %g s for a scrape", wait)
            return self.collector.wait_for_scrape(wait)
        return True
