"""Report any training loop to gentrain: the same series, windowed milestone summary and
exporter the built-in trainer uses, behind three calls.

    reporter = Reporter(max_steps=1000)                    # serves :9090/metrics
    ...
        reporter.step(step, {"total": loss.item()}, learning_rates={"total": lr})
        if step % 200 == 0:
            reporter.milestone(step, {"validation_loss": val})

What a program sends is checked here, and a bad value is refused with a ValueError naming
the field (the operator would otherwise see garbage or nothing): a loss that is not a
number, a component name that cannot be a label, more components than a status can hold.
A NaN or infinite loss is not bad input: it is the fault gentrain is there to see, counted
in the milestone's non-finite losses.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from gentrain_contract import metrics, program
from gentrain_contract.hyperparameters import Value
from gentrain_contract.vocabulary import Action, Command

from . import configuration, exporter, tensorboard
from .commands import CommandRunner, Handler
from .history import History
from .smoothing import Smoothed, smoothed
from .window import SinceStart, Window

# Commands after which the losses before say nothing about the next ones.
NEW_WEIGHTS = frozenset({Command.ROLLBACK, Command.REINITIALIZE})

# What the operator keeps of one series per milestone (its parser's bounds): more would be
# dropped there, so it is refused here, where the program can be told.
MAX_COMPONENTS = 64
MAX_NAME_LENGTH = 63
NAME = re.compile(r"[A-Za-z0-9_.:-]+")
# The `extractor` label of a program's FID, KID, precision or recall: its own feature
# space, not comparable with the built-in trainer's.
EXTRACTOR = "program"

Series = dict[tuple[str, ...], float]
log = logging.getLogger("gentrain_sdk")


Figures = float | Mapping[str, float]  # one number is component "total"
TOTAL = "total"


def _as_float(value: object) -> float:
    """A number, a 0-d tensor or a numpy scalar as a float (.item(): float() of a tensor
    that requires grad warns)."""
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)  # type: ignore[arg-type]


def _numbers(field: str, values: object, *, finite: bool) -> dict[str, float]:
    """`values` as floats by valid names, or ValueError naming the first bad entry. A bare
    number (a float, a 0-d tensor, a numpy scalar) is one component, `total`."""
    if isinstance(values, Mapping):
        entries: dict[object, object] = dict(values)
    elif isinstance(values, str | bytes):  # float("1e3") would take it
        raise ValueError(
            f"{field}: expected a number or a mapping of names to numbers, got {values!r}"
        )
    else:
        entries = {TOTAL: values}
    if len(entries) > MAX_COMPONENTS:
        raise ValueError(
            f"{field}: {len(entries)} entries; at most {MAX_COMPONENTS} "
            "(report a summary, not one entry per parameter)"
        )
    checked: dict[str, float] = {}
    for name, value in entries.items():
        if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"{field}: the name {name!r} must be 1-{MAX_NAME_LENGTH} characters of "
                "letters, digits, _ . : -"
            )
        shown = field if name == TOTAL and not isinstance(values, Mapping) else f"{field}[{name!r}]"
        try:
            if isinstance(value, bool | str | bytes):
                raise TypeError
            number = _as_float(value)  # a 0-d tensor or a numpy scalar too
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of many
            raise ValueError(f"{shown}: expected a number, got {value!r}") from None
        if finite and not math.isfinite(number):
            raise ValueError(f"{shown}: must be finite, got {value!r}")
        checked[name] = number
    return checked


class Reporter:
    """Publishes a training loop's health on gentrain's metric contract.

    `port`: where Prometheus and the operator scrape (default $GENTRAIN_METRICS_PORT or
    9090; 0 serves nothing, for tests that read `exposition()`). `max_steps`: the run's
    length, for the operator's progress and ETA. `baseline_loss`: the loss of a model that
    learned nothing (the unigram entropy for a language model, the data's variance for a
    regression), which lets the operator tell a run that learns nothing from a slow one.
    `supports`: the remediation actions the program carries out (lower_lr, cut_lr,
    enable_clipping, ...: those whose hyperparameters its `on_change` callbacks apply);
    the operator picks only among them. `config`: the configuration file the operator
    writes (default $GENTRAIN_CONFIG, or /etc/gentrain/config.yaml when it is mounted),
    re-read at each milestone. `events`: where the run's TensorBoard event files go
    (default: beside the job's checkpoints, $GENTRAIN_CHECKPOINT_DIR/tensorboard; none
    outside a job, or without the `[tensorboard]` extra). With MLFLOW_TRACKING_URI set
    (and the `[mlflow]` extra), the history goes to an MLflow run too (see `history`).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        max_steps: int | None = None,
        baseline_loss: float | None = None,
        supports: Iterable[str] = (),
        config: str | Path | None = None,
        events: str | Path | None = None,
    ) -> None:
        if port is None:
            port = int(os.environ.get(program.METRICS_PORT_VARIABLE, program.DEFAULT_METRICS_PORT))
        if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
            raise ValueError(f"max_steps: expected a positive number of steps, got {max_steps!r}")
        if baseline_loss is not None:
            _numbers("baseline_loss", {"baseline": baseline_loss}, finite=True)
        self.supports = sorted(_actions(supports))
        self.config_path = Path(config) if config is not None else configuration.default_path()
        self.configuration = configuration.Configuration()
        self.refusals: dict[str, float] = {}
        self._callbacks: list[Callable[[dict[str, Value]], None]] = []
        checkpoints = os.environ.get(program.CHECKPOINT_DIR_VARIABLE)
        # The run's history: TensorBoard events in `events`, else beside the job's
        # checkpoints (when the event writer is installed); an MLflow run when
        # MLFLOW_TRACKING_URI is set.
        if events is None and checkpoints:
            events = Path(checkpoints) / tensorboard.DIRECTORY
        self.history = History.open(
            Path(events) if events is not None else None,
            Path(checkpoints) if checkpoints else None,
            os.environ.get(program.JOB_VARIABLE),
        )
        atexit.register(self.close)  # after `finish` (registered below: atexit runs LIFO)
        # Read before the commands' record: a damaged one counts those configured as applied.
        self._reload()
        self.commands = CommandRunner(command.id for command in self.configuration.commands)
        self.max_steps = max_steps
        self.baseline_loss = baseline_loss
        self.collector = exporter.TrainerCollector()
        # Under gentrain only the operator's scrape ends the wait at exit (see finish).
        self.job = os.environ.get(program.JOB_VARIABLE)
        agent = metrics.OPERATOR_USER_AGENT if self.job else ""
        self.registry: CollectorRegistry = exporter.start(port, self.collector, agent)
        self.last_milestone: int | None = None
        if self.job:
            atexit.register(self.finish)
        self.window = Window()
        self.since_start = SinceStart()
        self.smoothed = Smoothed()  # the live loss, by component
        self.step_seconds: float | None = None
        self.last_step: int | None = None
        self._last_time: float | None = None
        self._finished = False

    def on_change(self, callback: Callable[[dict[str, Value]], None]) -> None:
        """`callback(hyperparameters)` is called with every hyperparameter in force (API
        names: learningRate, gradientClip, ...) now if a configuration is there, and again
        each time the job's spec changes them (yours or the operator's remediation)."""
        self._callbacks.append(callback)
        if self.configuration.hyperparameters:
            callback(dict(self.configuration.hyperparameters))

    def support(self, *actions: str) -> None:
        """Declares more remediation actions the program carries out (see `supports`)."""
        self.supports = sorted({*self.supports, *_actions(actions)})

    def on_command(self, action: str, handler: Handler) -> None:
        """`handler(command)` carries out a one-shot command of the job's spec (reinitialize:
        fresh weights and optimizer state; rollback: load the checkpoint at command.step;
        ...), once per command id, at the milestone after it appears. A command without a
        handler is refused, and the operator's ladder moves on. A search_learning_rate
        handler returns its `rate_search.SearchResult` (see `rate_search.search_torch`),
        applies the chosen factor to its rates, and keeps it until the job's rate changes:
        the operator writes the chosen rate into the job."""
        enabled = self.commands.register(action, handler)
        self.supports = sorted({*self.supports, *(str(a) for a in enabled)})

    def _reload(self, step: int = 0) -> bool:
        """Takes up the configuration file; whether its hyperparameters changed."""
        if self.config_path is None:
            return False
        read = configuration.read(self.config_path, self.configuration)
        for field in read.refused:
            self.refusals[field] = self.refusals.get(field, 0.0) + 1
        changed = (read.generation, read.hyperparameters) != (
            self.configuration.generation,
            self.configuration.hyperparameters,
        )
        self.configuration = read
        if changed:
            for callback in self._callbacks:
                callback(dict(read.hyperparameters))
            self.history.configuration(step, read.generation, read.hyperparameters)
        return changed

    def _configuration_series(self) -> dict[str, Series]:
        hp = self.configuration.hyperparameters
        series: dict[str, Series] = {
            metrics.CONFIG_GENERATION.name: {(): float(self.configuration.generation)},
            metrics.HYPERPARAMETER.name: {
                (k,): float(v) for k, v in hp.items() if not isinstance(v, str)
            },
            metrics.HYPERPARAMETER_INFO.name: {
                (k, v): 1.0 for k, v in hp.items() if isinstance(v, str)
            },
            metrics.CONFIG_REJECTED_TOTAL.name: {(k,): v for k, v in self.refusals.items()},
            metrics.COMMANDS_APPLIED_TOTAL.name: dict(self.commands.counters),
        }
        if self.supports:
            series[metrics.SUPPORTED_ACTION_INFO.name] = {(a,): 1.0 for a in self.supports}
        return series

    def step(
        self,
        step: int,
        losses: Figures,
        *,
        grad_norms: Figures | None = None,
        learning_rates: Figures | None = None,
        clipped: Mapping[str, bool] | None = None,
        data_seconds: float = 0.0,
    ) -> None:
        """One optimizer step: its loss (a number, or a mapping by component: a GAN's
        generator and discriminator, or critic, so named: the operator never reads a
        game's players' losses for spikes), and optionally the gradient norms before
        clipping, the learning rates in force, whether clipping acted, and the seconds the
        step waited for data. Tensors are taken as numbers (one .item() each)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step: expected a non-negative int, got {step!r}")
        checked = _numbers("losses", losses, finite=False)
        if not checked:
            raise ValueError("losses: at least one component, e.g. {'generator': g_loss}")
        norms = _numbers("grad_norms", {} if grad_norms is None else grad_norms, finite=False)
        rates = _numbers(
            "learning_rates", {} if learning_rates is None else learning_rates, finite=True
        )
        acted = {str(k): bool(v) for k, v in (clipped or {}).items()}
        seen = set(self.window.losses) | set(self.window.grad_norms)
        if len(seen | set(checked) | set(norms)) > MAX_COMPONENTS:
            raise ValueError(
                f"losses: more than {MAX_COMPONENTS} component names since the last "
                "milestone; name components by role (generator, discriminator), not by step"
            )
        now = time.monotonic()
        seconds = now - self._last_time if self._last_time is not None else 0.0
        self._last_time = now
        self.window.add(checked, norms, acted, {}, data_seconds, seconds)
        self.smoothed.add(checked)
        if seconds > 0:
            self.step_seconds = smoothed(self.step_seconds, seconds)
        self.last_step = step
        live: dict[str, Series] = {
            metrics.STEP.name: {(): float(step)},
            metrics.LOSS.name: {(k,): v for k, v in self.smoothed.values.items()},
            metrics.GRAD_NORM.name: {(k,): v for k, v in norms.items()},
            metrics.LEARNING_RATE.name: {(k,): v for k, v in rates.items()},
            **self._configuration_series(),
        }
        if self.step_seconds is not None:
            live[metrics.STEP_SECONDS.name] = {(): self.step_seconds}
        if self.max_steps is not None:
            live[metrics.MAX_STEPS.name] = {(): float(self.max_steps)}
        if self.baseline_loss is not None:
            live[metrics.BASELINE_LOSS.name] = {(): float(self.baseline_loss)}
        self.collector.live = live

    def milestone(
        self,
        step: int,
        figures: Mapping[str, float] | None = None,
        pictures: Iterable[str | Path] = (),
    ) -> None:
        """A checkpoint milestone: the summary of every step since the previous one, and
        the model's own quality figures (finite numbers; names the contract knows, such as
        validation_loss, perplexity or fid, keep their meaning; any other is reported
        under its own name). `pictures`: PNG files (samples, say) for the run's history
        (TensorBoard images, MLflow images), each under its file's stem."""
        if self.last_step is None:
            raise ValueError("milestone: report at least one step() before a milestone")
        if step != self.last_step:
            raise ValueError(
                f"step: a milestone closes the window at the last step reported "
                f"({self.last_step}), got {step!r}"
            )
        checked = _numbers("figures", figures or {}, finite=True)
        # As the built-in trainer: the configuration is taken up before the milestone is
        # published, so a scrape reads the milestone beside the generation now in force.
        origin = self.commands.origin_step  # of the weights that trained this window
        # New hyperparameters may put the loss at another level (a KL weight, free bits)
        # and new weights start it afresh: either way the losses before are no context.
        new_level = self._reload(step)
        for command, refused in self.commands.run(self.configuration.commands, step):
            self.history.command(step, command.id, command.action, refused)
            new_level |= refused is None and command.action in NEW_WEIGHTS
        self.collector.live = {**self.collector.live, **self._configuration_series()}
        known: dict[str, float | str] = {
            k: v for k, v in checked.items() if k in metrics.QUALITY_FIGURES
        }
        own = {k: v for k, v in checked.items() if k not in known}
        if known:
            known["extractor"] = EXTRACTOR
        summary = self.window.summary()
        self.since_start.add(summary)
        series = exporter.milestone_series(
            step,
            time.time(),
            summary,
            known,
            self.since_start,
            origin,
            self.commands.take_search(),
            self.commands.take_refusals(),
        )
        if own:
            series[metrics.MILESTONE_FIGURE.name] = {(k,): v for k, v in own.items()}
        self.collector.milestone = series
        self.history.milestone(step, series)
        self.history.pictures(step, [Path(p) for p in pictures])
        if new_level:
            self.window.forget()
        else:
            self.window.reset()
        self.last_milestone = step

    def finish(self, timeout: float = program.FINAL_SCRAPE_WAIT_SECONDS) -> bool:
        """Waits (at most `timeout` s) until the operator has read the final milestone, and
        says so in the pod's termination message, which the operator waits for before it
        marks the job Succeeded. Called at exit when the program runs as a gentrain job
        (GENTRAIN_JOB is set); whether the milestone was read."""
        if self.last_milestone is None or self._finished:
            return self._finished
        self._finished = self.collector.wait_for_scrape(timeout)
        message = f"completed {self.last_milestone} steps"
        if not self._finished:
            message += f"; the final milestone was not scraped within {timeout:g} s"
        with contextlib.suppress(OSError):  # not in a pod: nobody reads it
            Path(program.TERMINATION_LOG).write_text(message)
        return self._finished

    def close(self) -> None:
        """Flushes and closes the run's history (TensorBoard's files; the MLflow run,
        marked FINISHED when the milestone at max_steps was published, or when the run's
        length is unknown, else KILLED until an attempt that resumes it). Called at exit."""
        finished = self.max_steps is None or (
            self.last_milestone is not None and self.last_milestone >= self.max_steps
        )
        self.history.close(finished)

    def exposition(self) -> str:
        """What a scrape reads now (the Prometheus text format)."""
        return generate_latest(self.registry).decode()


def _actions(supports: Iterable[str]) -> set[str]:
    if isinstance(supports, str):
        raise ValueError(f"supports: expected a list of actions, got the string {supports!r}")
    known = {str(a) for a in Action}
    unknown = sorted({str(a) for a in supports} - known)
    if unknown:
        raise ValueError(
            f"supports: {', '.join(unknown)} is not an action gentrain knows "
            f"(known: {', '.join(sorted(known))})"
        )
    return {str(a) for a in supports}
