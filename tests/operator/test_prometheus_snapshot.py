"""A trainer's series read through Prometheus are the trainer's series: whatever labels the
scrape adds (the target's, the chart PodMonitor's `gtj`, the server's external labels), the
operator reads the same milestone as from the trainer itself. (It read none: `gtj` was kept,
every figure was looked up under the wrong labels, and a job whose operator read it through
a kube-prometheus-stack Prometheus ran to the end without one milestone judged.)"""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_contract.metrics import BY_NAME
from gentrain_operator.snapshot import TRAINER_LABELS, from_prometheus, milestone, parse
from tests.support.expositions import gan_first_milestone

# What a PodMonitor's target and a Prometheus's external labels add to every series.
SCRAPE_LABELS = {
    "container": "trainer",
    "endpoint": "metrics",
    "gtj": "broken",
    "instance": "10.244.1.2:9090",
    "job": "gentrain-system/gentrain-trainers",
    "namespace": "ml",
    "pod": "broken-trainer-1",
    "cluster": "eu-1",
    "prometheus_replica": "prometheus-kube-prometheus-stack-0",
}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    return gan_first_milestone(tmp_path_factory.mktemp("gan"))


def as_prometheus_vector(text: str) -> list[dict[str, Any]]:
    """The instant-query answer a Prometheus that scraped this exposition gives."""
    direct = parse(text, 0.0)
    return [
        {"metric": {"__name__": name, **dict(labels), **SCRAPE_LABELS}, "value": [0.0, repr(v)]}
        for name, series in direct.values.items()
        for labels, v in series.items()
    ]


def test_a_milestone_read_through_prometheus_is_the_trainers(exposition: str) -> None:
    direct = milestone(parse(exposition, 0.0))
    assert direct is not None
    through = milestone(from_prometheus(as_prometheus_vector(exposition), 0.0))
    assert through == direct


def test_the_labels_kept_are_the_trainers_own() -> None:
    exported = {label for metric in BY_NAME.values() for label in metric.labels}
    assert exported == TRAINER_LABELS
    assert not TRAINER_LABELS & set(SCRAPE_LABELS)
