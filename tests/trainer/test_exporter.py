"""The trainer's last act: its final milestone must reach the operator before it exits.
`wait_for_scrape` once returned when a collection *began*; on a real node, with the
trainer's CPU throttled by its limit, the process exited while the response was still
being written and the operator lost the run's final milestone (a diffusion job ended
Succeeded with its last milestone at step 60 of 120)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest

from gentrain_sdk import exporter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_wait_ends_only_once_the_exposition_is_written_out_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = exporter.TrainerCollector()
    collector.milestone = {
        "gentrain_milestone_steps": {(): 60.0},
        "gentrain_milestone_fid": {(): 199.0},
    }
    building = exporter._family

    def slow_family(name: str) -> exporter.GaugeMetricFamily | exporter.CounterMetricFamily:
        time.sleep(0.4)  # a throttled CPU: the exposition takes a while to build
        return building(name)

    monkeypatch.setattr(exporter, "_family", slow_family)
    port = free_port()
    exporter.start(port, collector)
    received: list[bytes] = []

    def scrape() -> None:
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            received.append(r.read())

    scraper = threading.Thread(target=scrape)
    scraper.start()
    collector.wait_for_scrape(timeout=30)
    # The trainer exits here: whatever the scraper has not been sent by now is lost.
    scraper.join(timeout=0.3)
    assert not scraper.is_alive(), "the wait ended before the exposition was written"
    assert b"gentrain_milestone_fid 199.0" in received[0]


def test_the_wait_gives_up_without_a_scraper() -> None:
    collector = exporter.TrainerCollector()
    started = time.monotonic()
    collector.wait_for_scrape(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5


def test_a_scrape_already_under_way_does_not_end_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Collected before the final milestone was published, it does not carry it: on the
    node agent (a scrape every second) the trainer exited after such a scrape and a
    healthy diffusion run's milestone 600 was never judged."""
    collector = exporter.TrainerCollector()
    collector.milestone = {"gentrain_milestone_steps": {(): 450.0}}
    building = exporter._family

    def slow_family(name: str) -> exporter.GaugeMetricFamily | exporter.CounterMetricFamily:
        time.sleep(0.3)
        return building(name)

    monkeypatch.setattr(exporter, "_family", slow_family)
    port = free_port()
    exporter.start(port, collector)
    bodies: dict[str, bytes] = {}

    def scrape(name: str, delay: float) -> None:
        time.sleep(delay)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            bodies[name] = r.read()

    under_way = threading.Thread(target=scrape, args=("under way", 0.0))
    under_way.start()
    time.sleep(0.15)  # the first scrape is being collected: the final milestone comes now
    collector.milestone = {"gentrain_milestone_steps": {(): 600.0}}
    later = threading.Thread(target=scrape, args=("later", 0.6))
    later.start()
    collector.wait_for_scrape(timeout=30)
    later.join(timeout=0.3)
    under_way.join(timeout=5)
    assert not later.is_alive(), "the wait ended on the scrape that was already under way"
    assert b"gentrain_milestone_steps 600.0" in bodies["later"]
