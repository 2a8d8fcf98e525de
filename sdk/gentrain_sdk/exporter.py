"""The trainer's Prometheus endpoint.

The training loop only swaps plain dictionaries (a reference assignment per step, a new
dictionary per milestone); metric families are built when Prometheus scrapes. So
monitoring costs the loop almost nothing, and a scrape sees a milestone's summary whole
or not at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from gentrain_contract import metrics
from gentrain_contract.metrics import BY_NAME

from .gpu import NVML
from .window import SinceStart


class Searched(Protocol):
    """A learning-rate search's outcome, as a milestone reports it."""

    @property
    def losses(self) -> Mapping[float, float]: ...  # by candidate factor

    @property
    def factor(self) -> float: ...  # the factor chosen

    @property
    def trained_steps(self) -> int: ...


GPU_FIELDS = {
    metrics.GPU_UTILIZATION_RATIO.name: "utilization",
    metrics.GPU_MEMORY_USED_BYTES.name: "memory_used",
    metrics.GPU_MEMORY_TOTAL_BYTES.name: "memory_total",
    metrics.GPU_TEMPERATURE_CELSIUS.name: "temperature",
    metrics.GPU_POWER_WATTS.name: "power",
}


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    spec = BY_NAME[name]
    cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    return cls(name, spec.help, labels=list(spec.labels))


class TrainerCollector:
    def __init__(self, nvml: NVML | None = None) -> None:
        # {metric name: {label values tuple: value}}; replaced, never mutated in place.
        self.live: dict[str, dict[tuple[str, ...], float]] = {}
        self.milestone: dict[str, dict[tuple[str, ...], float]] = {}
        self.nvml = nvml
        # Scrapes numbered as they arrive, and the newest number written out whole.
        self.scrapes_begun = 0
        self.newest_delivered = 0
        self._numbering = threading.Lock()

    def wait_for_scrape(self, timeout: float) -> bool:
        """Returns once a scrape that arrived after this call has been written out whole,
        or after `timeout` seconds. Not when a collection merely starts: a trainer that
        exited then (its CPU throttled by its limit, its last response half sent) lost its
        final milestone on a real node. Nor when a scrape already under way ends: it was
        collected before the final milestone was published. Whether one was delivered."""
        after, deadline = self.scrapes_begun, time.monotonic() + timeout
        while self.newest_delivered <= after:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def scrape_begins(self) -> int:
        with self._numbering:
            self.scrapes_begun += 1
            return self.scrapes_begun

    def scrape_delivered(self, number: int) -> None:
        with self._numbering:
            self.newest_delivered = max(self.newest_delivered, number)

    def collect(self) -> Iterator[Metric]:
        live, milestone = self.live, self.milestone
        for values in (live, milestone):
            for name, series in values.items():
                family = _family(name)
                for labels, value in series.items():
                    family.add_metric(list(labels), value)
                yield family
        if self.nvml is not None and self.nvml.handles:
            readings = self.nvml.read()
            for name, field in GPU_FIELDS.items():
                family = _family(name)
                for reading in readings:
                    if field in reading:
                        family.add_metric([str(int(reading["gpu"]))], reading[field])
                yield family


def milestone_series(
    step: int,
    timestamp: float,
    summary: dict[str, Any],
    evaluation: dict[str, Any],
    since_start: SinceStart,
    origin: int = 0,
    searched: Searched | None = None,
    refused: Mapping[str, str] | None = None,
    generation: tuple[int, int] | None = None,
) -> dict[str, dict[tuple[str, ...], float]]:
    """The milestone metrics, from the window summary and the family's evaluation.
    `generation`: the configuration generation in force at publication and the step it
    applies from, for a trainer that takes changes up between milestones too."""
    series: dict[str, dict[tuple[str, ...], float]] = {
        metrics.MILESTONE_WEIGHTS_ORIGIN_STEP.name: {(): float(origin)},
        metrics.MILESTONE_NONFINITE_LOSSES_SINCE_START.name: {(): float(since_start.nonfinite)},
        metrics.MILESTONE_LOSS_SPIKES_SINCE_START.name: {
            (component,): count for component, count in since_start.spikes.items()
        },
        metrics.CHECKPOINT_STEP.name: {(): float(step)},
        metrics.MILESTONE_TIMESTAMP_SECONDS.name: {(): timestamp},
        metrics.MILESTONE_STEPS.name: {(): float(summary["steps"])},
        metrics.MILESTONE_NONFINITE_LOSSES.name: {(): float(summary["nonfinite_losses"])},
        metrics.MILESTONE_DATA_WAIT_RATIO.name: {(): float(summary["data_wait_ratio"])},
        metrics.MILESTONE_STEPS_PER_SECOND.name: {(): float(summary["steps_per_second"])},
    }
    if generation is not None:
        series[metrics.MILESTONE_CONFIG_GENERATION.name] = {(): float(generation[0])}
        series[metrics.MILESTONE_CONFIG_GENERATION_STEP.name] = {(): float(generation[1])}
    if refused:
        series[metrics.MILESTONE_COMMAND_REFUSED.name] = {
            (command, reason): 1.0 for command, reason in refused.items()
        }
    if searched is not None:
        series[metrics.MILESTONE_LEARNING_RATE_SEARCH_LOSS.name] = {
            (f"{factor:g}",): loss for factor, loss in searched.losses.items()
        }
        series[metrics.MILESTONE_LEARNING_RATE_FACTOR.name] = {(): searched.factor}
        series[metrics.MILESTONE_LEARNING_RATE_SEARCH_STEPS.name] = {
            (): float(searched.trained_steps)
        }
    for component, figures in summary["components"].items():
        for key, value in figures.items():
            series.setdefault(metrics.milestone_metric(key).name, {})[(component,)] = float(value)
    extras = summary["extras"]
    if "d_real" in extras:
        series[metrics.MILESTONE_DISCRIMINATOR_OUTPUT.name] = {
            ("real",): extras["d_real"],
            ("fake",): extras["d_fake"],
        }
        series[metrics.MILESTONE_DISCRIMINATOR_ACCURACY_RATIO.name] = {(): extras["d_accuracy"]}
    for key in ("kl", "kl_weight"):
        if key in extras:
            series[metrics.milestone_metric(key).name] = {(): extras[key]}
    extractor = str(evaluation.get("extractor", ""))
    for key, value in evaluation.items():
        if key == "extractor" or not isinstance(value, int | float):
            continue
        name = metrics.MILESTONE_PREFIX + key
        if name not in BY_NAME:
            continue
        labels = (extractor,) if BY_NAME[name].labels == ("extractor",) else ()
        series[name] = {labels: float(value)}
    return series


class _Body:
    """A response body whose close(), which a WSGI server calls once the body has been
    written (PEP 3333), tells the collector that a scrape was delivered."""

    def __init__(self, chunks: Iterable[bytes], delivered: Callable[[], None]) -> None:
        self.chunks, self.delivered = chunks, delivered

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.delivered()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def start(port: int, collector: TrainerCollector, counted_agent: str = "") -> CollectorRegistry:
    """Serves the collector on `port` (0: not at all). Only scrapes whose User-Agent starts
    with `counted_agent` count for `wait_for_scrape`; others are answered all the same."""
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(ProcessCollector(registry=None))
    if port > 0:
        app = make_wsgi_app(registry)

        def counted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if not str(environ.get("HTTP_USER_AGENT", "")).startswith(counted_agent):
                return app(environ, start_response)  # type: ignore[no-any-return]
            number = collector.scrape_begins()  # before the collection it makes
            return _Body(app(environ, start_response), lambda: collector.scrape_delivered(number))

        server = make_server("", port, counted, _Server, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return registry
