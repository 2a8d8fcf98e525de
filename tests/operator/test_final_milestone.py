"""A run's final milestone — what the report calls "after" — reaches status before the
job says Succeeded. Two ways it did not, seen on the real node (CI, stop 22: a
transformer ended Succeeded with checkpointStep 60 of 120):
- the trainer exits once its final milestone was scraped; the pod's phase then reached
  status (the periodic check) before the monitor had written the milestone it scraped,
  so a reader of a Succeeded job saw the milestone before the last;
- any scrape ended the trainer's wait, so a Prometheus scraping the pod (the chart's
  PodMonitor) let it exit before the operator had read its final milestone at all."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_operator import builders, kube, lifecycle, monitor, names, pod_status
from gentrain_operator.settings import Settings
from gentrain_sdk import exporter

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving_final_milestone() -> tuple[exporter.TrainerCollector, str]:
    collector = exporter.TrainerCollector()
    collector.milestone = {"gentrain_checkpoint_step": {(): 120.0}}
    port = free_port()
    exporter.start(port, collector, counted_agent=names.MONITOR_USER_AGENT)
    return collector, f"http://127.0.0.1:{port}/metrics"


def test_a_prometheus_scrape_does_not_end_the_wait_and_the_operators_does() -> None:
    collector, url = serving_final_milestone()

    def prometheus() -> None:
        time.sleep(0.2)
        request = urllib.request.Request(url, headers={"User-Agent": "Prometheus/3.16.0"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a local URL
            assert b"gentrain_checkpoint_step 120.0" in response.read()  # served all the same

    scraper = threading.Thread(target=prometheus)
    scraper.start()
    assert collector.wait_for_scrape(timeout=1.5) is False
    scraper.join()

    async def operator() -> None:
        await asyncio.sleep(0.3)
        async with monitor.client_session() as session:
            snapshot = await monitor.scrape_pod(session, url, timeout=10)
        assert snapshot.get("gentrain_checkpoint_step") == 120

    scraper = threading.Thread(target=asyncio.run, args=(operator(),))
    scraper.start()
    started = time.monotonic()
    assert collector.wait_for_scrape(timeout=30) is True
    assert time.monotonic() - started < 20
    scraper.join()


def test_the_trainer_pod_waits_for_the_operators_scrape_unless_read_through_prometheus() -> None:
    manifest = yaml.safe_load((ROOT / "examples" / "gan-ring.yaml").read_text())
    manifest["metadata"].update({"namespace": "ns", "uid": "u", "generation": 1})

    def args(job: dict[str, Any]) -> list[str]:
        pod = builders.trainer_pod(job, 1, with_gpus=False, settings=Settings())
        return list(pod["spec"]["containers"][0]["args"])

    direct = args(manifest)
    assert direct[direct.index("--final-scrape-by") + 1] == names.MONITOR_USER_AGENT
    manifest["spec"]["monitoring"] = {"prometheusURL": "http://prometheus.monitoring:9090"}
    assert "--final-scrape-by" not in args(manifest)


def completed_pod(message: str, finished_ago: float) -> dict[str, Any]:
    finished = datetime.now(UTC) - timedelta(seconds=finished_ago)
    terminated = {
        "exitCode": 0,
        "reason": "Completed",
        "message": message,
        "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {
        "metadata": {"name": "j-trainer-2", "creationTimestamp": "2026-12-02T00:00:00Z"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"state": {"terminated": terminated}}],
        },
    }


def job(checkpoint_step: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "n", "uid": "u", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "text"},
            "training": {"maxSteps": 120},
        },
        "status": {
            "phase": "Running",
            "attempts": 2,
            "failures": 1,
            "observedGeneration": 1,
            "checkpointStep": checkpoint_step,
        },
    }


def check(checkpoint_step: int, pod: dict[str, Any]) -> dict[str, Any]:
    return lifecycle.reconcile(
        job(checkpoint_step), Settings(), [], lambda namespace, name: pod, spec_changed=False
    )


def test_succeeded_waits_until_the_final_milestone_scraped_is_in_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "create", lambda *a: pytest.fail("no new attempt"))
    just_now = completed_pod("completed 120 steps", finished_ago=1)
    assert "phase" not in check(60, just_now)  # the monitor is writing milestone 120
    assert check(120, just_now)["phase"] == "Succeeded"
    # Never written (an operator that died with it): the job ends all the same.
    waited = completed_pod("completed 120 steps", pod_status.FINAL_MILESTONE_WAIT_SECONDS + 5)
    assert check(60, waited)["phase"] == "Succeeded"
    # Never scraped (the trainer says so): nothing to wait for.
    unread = completed_pod(
        "completed 120 steps; the final milestone was not scraped within 120 s", 1
    )
    assert check(60, unread)["phase"] == "Succeeded"


def test_a_job_that_ends_without_its_final_milestone_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen once in CI, read through Prometheus: Succeeded with checkpointStep 1000 of
    1500 and "training finished", as if all were in status. It now says what is missing."""
    monkeypatch.setattr(kube, "create", lambda *a: pytest.fail("no new attempt"))
    for message in (
        "completed 120 steps",  # scraped, never written in time
        "completed 120 steps; the final milestone was not scraped within 120 s",
    ):
        events: list[tuple[str, str, str]] = []
        pod = completed_pod(message, pod_status.FINAL_MILESTONE_WAIT_SECONDS + 5)
        changes = lifecycle.reconcile(
            job(60), Settings(), events, lambda namespace, name, pod=pod: pod, spec_changed=False
        )
        assert changes["phase"] == "Succeeded"
        assert "final milestone was never read: status shows step 60's" in changes["message"]
        assert "checkpoint of step 120 is on the volume" in changes["message"]
        assert [e[1] for e in events] == ["FinalMilestoneUnread", "Completed"]
    events = []
    pod = completed_pod("completed 120 steps", 1)
    changes = lifecycle.reconcile(
        job(120), Settings(), events, lambda namespace, name: pod, spec_changed=False
    )
    assert changes["message"] == "training finished"
    assert [e[1] for e in events] == ["Completed"]
