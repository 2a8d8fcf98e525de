"""The run's history in MLflow, when MLFLOW_TRACKING_URI is set (MLflow's own variable; so
are MLFLOW_EXPERIMENT_NAME, MLFLOW_TRACKING_TOKEN and the rest, which its client reads):
- the configuration the run started with as params (MLflow keeps a param's first value);
- every milestone's figures as metrics at their step (`loss_mean/generator`, `fid`, ...),
  and every numeric hyperparameter as `hyperparameter/<name>` from each step it changes;
- the milestone's pictures (the built-in trainer's samples) as images at their step;
- each configuration change (a remediation, or your own edit of the job) and each
  one-shot command as a tag, `gentrain.generation.<N>` and `gentrain.command.<id>`,
  whose text says what changed at which step.
One MLflow run per job: its id is kept beside the checkpoints, so an attempt that resumes
(a pod replaced, a node lost) continues the same run. The run is FINISHED when training
completes; KILLED when an attempt stops before (a SIGTERM), RUNNING again when the next
one resumes it.

The tracking server is written to from a thread of its own, through a bounded queue: a
slow or unreachable server never holds up a training step (what does not fit is dropped,
and counted in the log), and after a few failures in a row the run stops trying.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from gentrain_contract import program

from .tensorboard import Series, changes, numeric, tag

log = logging.getLogger("gentrain_sdk")
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "gentrain"
RUN_ID_FILE = "mlflow-run-id"  # beside the checkpoints
# MLflow's log-batch limits: 1,000 metrics, 100 params and 100 tags per request.
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100
QUEUED_WRITES = 256
FAILURES_BEFORE_GIVING_UP = 3
CLOSE_WAIT_SECONDS = 30.0
# Where the user has not set them: MLflow's client retries a failed request 7 times with
# backoff (minutes) and waits 120 s for an answer; a tracker needs far less patience.
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def key(text: str) -> str:
    """An MLflow metric, param or tag key (letters, digits, `_-. /`; 250 characters)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)[:250]


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowRun:
    """Writes to one MLflow run (see the module's docstring)."""

    def __init__(self, client: Any, run_id: str, resumed: bool) -> None:
        self.client = client
        self.run_id = run_id
        self.resumed = resumed  # params were logged by the attempt that created the run
        self.hyperparameters: dict[str, Any] = {}
        self.writes: queue.Queue[Callable[[], None] | None] = queue.Queue(QUEUED_WRITES)
        self.dropped = 0
        self.failures = 0
        self.given_up = False
        self.worker = threading.Thread(target=self._write, name="gentrain-mlflow", daemon=True)
        self.worker.start()

    @classmethod
    def open(cls, run_name: str | None, checkpoints: Path | None) -> MlflowRun | None:
        """The run, when MLFLOW_TRACKING_URI is set: the one whose id is kept in
        `checkpoints`, else a new one named `run_name` in $MLFLOW_EXPERIMENT_NAME (default
        "gentrain"). None, with a warning, where mlflow is not installed or the server
        cannot be reached."""
        uri = os.environ.get(TRACKING_URI_VARIABLE)
        if not uri:
            return None
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            log.warning(
                "%s is set, but mlflow is not installed: no MLflow history "
                "(pip install 'gentrain-sdk[mlflow]')",
                TRACKING_URI_VARIABLE,
            )
            return None
        for name, value in CLIENT_DEFAULTS.items():
            os.environ.setdefault(name, value)
        kept = checkpoints / RUN_ID_FILE if checkpoints is not None else None
        try:
            client = MlflowClient(uri)
            run_id = _kept_run(client, kept)
            if run_id is not None:
                client.update_run(run_id, status="RUNNING")
                log.info("MLflow: continuing run %s at %s", run_id, uri)
                return cls(client, run_id, resumed=True)
            experiment = os.environ.get(EXPERIMENT_VARIABLE) or DEFAULT_EXPERIMENT
            found = client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id if found is not None else client.create_experiment(experiment)
            )
            run = client.create_run(experiment_id, run_name=run_name, tags=_origin_tags())
        except Exception as error:  # whatever fails in a tracker leaves training alone
            log.warning("no MLflow history: %s could not be written to: %s", uri, error)
            return None
        run_id = run.info.run_id
        if kept is not None:
            try:
                kept.write_text(run_id)
            except OSError as error:
                log.warning(
                    "MLflow run id not kept in %s (a resumed run starts another): %s", kept, error
                )
        log.info("MLflow: run %s in experiment %s at %s", run_id, experiment, uri)
        return cls(client, run_id, resumed=False)

    def milestone(self, step: int, series: Series) -> None:
        now = int(time.time() * 1000)
        figures = [
            (key(tag(name, labels)), value)
            for name, by_labels in series.items()
            for labels, value in by_labels.items()
            if math.isfinite(value)
        ]
        self._metrics(figures, now, step)

    def pictures(self, step: int, images: Mapping[str, Any]) -> None:
        """A milestone's pictures as MLflow images with their step (key `samples/<name>`),
        which MLflow's UI shows step by step."""
        for name, image in images.items():
            self._send(
                partial(
                    self.client.log_image, self.run_id, image, key=key(f"samples/{name}"), step=step
                )
            )

    def configuration(self, step: int, generation: int, hyperparameters: Mapping[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        now = int(time.time() * 1000)
        first = not self.hyperparameters
        changed = changes(self.hyperparameters, hyperparameters)
        self.hyperparameters = dict(hyperparameters)
        if first and not self.resumed:
            params = [Param(key(n), str(v)[:6000]) for n, v in sorted(hyperparameters.items())]
            for batch in chunks(params, PARAMS_PER_BATCH):
                self._send(partial(self.client.log_batch, self.run_id, params=batch))
        if changed:
            text = f"step {step}: {'; '.join(changed)}"
            tags = [RunTag(f"gentrain.generation.{generation}", text[:8000]),
                    RunTag("gentrain.generation", str(generation))]  # fmt: skip
            self._send(partial(self.client.log_batch, self.run_id, tags=tags))
        self._metrics(
            [(key(f"hyperparameter/{n}"), v) for n, v in numeric(hyperparameters).items()],
            now,
            step,
        )

    def command(self, step: int, command_id: str, action: str, refused: str | None) -> None:
        outcome = "applied" if refused is None else f"refused: {refused}"
        name, text = key(f"gentrain.command.{command_id}"), f"{action} at step {step}: {outcome}"
        self._send(partial(self.client.set_tag, self.run_id, name, text))

    def close(self, finished: bool) -> None:
        """Writes what is queued (waiting at most CLOSE_WAIT_SECONDS), and ends the run:
        FINISHED, or KILLED when training stopped before its end."""
        status = "FINISHED" if finished else "KILLED"
        self._send(partial(self.client.set_terminated, self.run_id, status))
        self._put(None)
        self.worker.join(CLOSE_WAIT_SECONDS)
        if self.worker.is_alive():
            log.warning("MLflow: writes still pending after %g s, left", CLOSE_WAIT_SECONDS)
        if self.dropped:
            log.warning("MLflow: %d writes dropped (the server was too slow)", self.dropped)

    def _metrics(self, figures: list[tuple[str, float]], timestamp: int, step: int) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(name, value, timestamp, step) for name, value in figures]
        for batch in chunks(metrics, METRICS_PER_BATCH):
            self._send(partial(self.client.log_batch, self.run_id, metrics=batch))

    def _send(self, write: Callable[[], None]) -> None:
        if not self.given_up:
            self._put(write)

    def _put(self, item: Callable[[], None] | None) -> None:
        try:
            self.writes.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while (write := self.writes.get()) is not None:
            if self.given_up:
                continue
            try:
                write()
                self.failures = 0
            except Exception as error:  # logged and counted, never raised into training
                self.failures += 1
                log.warning("MLflow: a write to run %s failed: %s", self.run_id, error)
                if self.failures >= FAILURES_BEFORE_GIVING_UP:
                    self.given_up = True
                    log.warning(
                        "MLflow: %d failures in a row; no more history is sent to it", self.failures
                    )


def _kept_run(client: Any, kept: Path | None) -> str | None:
    """The id kept by an earlier attempt, if the server still has that run."""
    if kept is None or not kept.is_file():
        return None
    run_id = kept.read_text().strip()
    try:
        client.get_run(run_id)
    except Exception as error:  # deleted, or another server: a new run starts
        log.warning(
            "MLflow run %s (kept in %s) not found, a new run starts: %s", run_id, kept, error
        )
        return None
    return run_id


def _origin_tags() -> dict[str, str]:
    """What the run is, for filtering in MLflow's UI."""
    tags: dict[str, str] = {}
    if job := os.environ.get(program.JOB_VARIABLE):
        tags["gentrain.job"] = job
    return tags
