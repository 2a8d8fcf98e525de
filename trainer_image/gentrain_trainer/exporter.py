"""The trainer's Prometheus endpoint.

The training loop only swaps plain dictionaries (a reference assignment per step, a new
dictionary per milestone); metric families are built when Prometheus scrapes. So
monitoring costs the loop almost nothing, and a scrape sees a milestone's summary whole
or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from .gpu import NVML
from .metric_names import BY_NAME
from .window import SinceStart

if TYPE_CHECKING:
    from .learning_rate_search import SearchResult

GPU_FIELDS = {
    "gentrain_gpu_utilization_ratio": "utilization",
    "gentrain_gpu_memory_used_bytes": "memory_used",
    "gentrain_gpu_memory_total_bytes": "memory_total",
    "gentrain_gpu_temperature_celsius": "temperature",
    "gentrain_gpu_power_watts": "power",
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
        self.scrapes = 0  # collections so far: a scrape, or a registry's own look

    def wait_for_scrape(self, timeout: float) -> None:
        """Returns at the next collection after this call, or after `timeout` seconds."""
        seen, deadline = self.scrapes, time.monotonic() + timeout
        while self.scrapes == seen and time.monotonic() < deadline:
            time.sleep(0.05)

    def collect(self) -> Iterator[Metric]:
        self.scrapes += 1
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
    searched: SearchResult | None = None,
    refused: Mapping[str, str] | None = None,
) -> dict[str, dict[tuple[str, ...], float]]:
    """The milestone metrics, from the window summary and the family's evaluation."""
    series: dict[str, dict[tuple[str, ...], float]] = {
        "gentrain_milestone_weights_origin_step": {(): float(origin)},
        "gentrain_milestone_nonfinite_losses_since_start": {(): float(since_start.nonfinite)},
        "gentrain_milestone_loss_spikes_since_start": {
            (component,): count for component, count in since_start.spikes.items()
        },
        "gentrain_checkpoint_step": {(): float(step)},
        "gentrain_milestone_timestamp_seconds": {(): timestamp},
        "gentrain_milestone_steps": {(): float(summary["steps"])},
        "gentrain_milestone_nonfinite_losses": {(): float(summary["nonfinite_losses"])},
        "gentrain_milestone_data_wait_ratio": {(): float(summary["data_wait_ratio"])},
        "gentrain_milestone_steps_per_second": {(): float(summary["steps_per_second"])},
    }
    if refused:
        series["gentrain_milestone_command_refused"] = {
            (command, reason): 1.0 for command, reason in refused.items()
        }
    if searched is not None:
        series["gentrain_milestone_learning_rate_search_loss"] = {
            (f"{factor:g}",): loss for factor, loss in searched.losses.items()
        }
        series["gentrain_milestone_learning_rate_factor"] = {(): searched.factor}
        series["gentrain_milestone_learning_rate_search_steps"] = {
            (): float(searched.trained_steps)
        }
    for component, figures in summary["components"].items():
        for key, value in figures.items():
            series.setdefault(f"gentrain_milestone_{key}", {})[(component,)] = float(value)
    extras = summary["extras"]
    if "d_real" in extras:
        series["gentrain_milestone_discriminator_output"] = {
            ("real",): extras["d_real"],
            ("fake",): extras["d_fake"],
        }
        series["gentrain_milestone_discriminator_accuracy_ratio"] = {(): extras["d_accuracy"]}
    for key in ("kl", "kl_weight"):
        if key in extras:
            series[f"gentrain_milestone_{key}"] = {(): extras[key]}
    extractor = str(evaluation.get("extractor", ""))
    for key, value in evaluation.items():
        if key == "extractor" or not isinstance(value, int | float):
            continue
        name = f"gentrain_milestone_{key}"
        if name not in BY_NAME:
            continue
        labels = (extractor,) if BY_NAME[name].labels == ("extractor",) else ()
        series[name] = {labels: float(value)}
    return series


def start(port: int, collector: TrainerCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(ProcessCollector(registry=None))
    if port > 0:
        start_http_server(port, registry=registry)
    return registry
