"""A milestone scraped but not written is written later, even once the trainer is gone.

A trainer waits for one scrape of its final milestone, not for the status write that
follows it. When that write failed (the API server frozen, a 503), the monitor retried by
scraping again — and found no trainer: the run's last milestone never reached status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes.client.rest import ApiException

from gentrain_operator import job_object, kube, monitor
from gentrain_operator.settings import Settings
from gentrain_operator.snapshot import Snapshot, parse
from tests.operator.test_nonfinite import gan_job
from tests.support.expositions import gan_first_milestone


def running_gan_monitor(name: str) -> monitor.JobMonitor:
    """The monitor of a GAN job in namespace n whose trainer pod runs at 127.0.0.1."""
    job = gan_job()
    job["status"] = {"phase": "Running", "podName": f"{name}-trainer-1"}
    running = {"status": {"phase": "Running", "podIP": "127.0.0.1"}}
    return monitor.JobMonitor(
        "n", name, Settings(), lambda *_: None, lambda: job, lambda *_: running
    )


def test_the_final_milestone_is_written_after_its_trainer_exited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrapes = [parse(gan_first_milestone(tmp_path), 0.0)]  # then the trainer has exited
    written: list[dict[str, Any]] = []
    failed: list[bool] = []

    async def scrape(*_: Any, **__: Any) -> Snapshot:
        if not scrapes:
            raise monitor.ScrapeError("connection refused")
        return scrapes.pop()

    def record(namespace: str, name: str, status: dict[str, Any], version: str) -> None:
        if not failed:
            failed.append(True)
            raise ApiException(status=503, reason="Service Unavailable (injected)")
        written.append(status)

    monkeypatch.setattr(monitor, "scrape_pod", scrape)
    monkeypatch.setattr(job_object, "record_milestone", record)
    monkeypatch.setattr(job_object, "patch_job_status", lambda *args: written.append(args[2]))
    monkeypatch.setattr(job_object, "apply_conditions", lambda *_: None)
    monkeypatch.setattr(kube, "write_retention", lambda *_: False)
    watcher = running_gan_monitor("g")
    monkeypatch.setattr(job_object, "read_job", lambda *_: watcher.live_job())

    async def two_steps() -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ApiException):
                await watcher.once(session)  # scraped; the status write fails
            await watcher.once(session)  # the trainer is gone

    asyncio.run(two_steps())
    milestones = [s for s in written if "milestones" in s]
    assert len(milestones) == 1, written
    assert milestones[0]["checkpointStep"] == 20


def test_a_failing_scrape_is_retried_at_least_as_often_as_the_interval() -> None:
    # A pod importing torch for 60 s, scraped every 15 s: the retries backed off to 128 s
    # between scrapes and missed the first milestones.
    for interval in (1.0, 15.0, 60.0):
        delays = [monitor.retry_delay(n, interval) for n in range(1, 30)]
        assert delays[0] <= 0.5 and max(delays) == interval
        assert delays == sorted(delays)
