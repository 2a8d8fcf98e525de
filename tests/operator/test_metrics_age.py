"""The age of a job's trainer metrics, which TrainerMetricsStale alerts on, grows for a
trainer no scrape ever reached (a NetworkPolicy in the operator's way, a trainer that hangs
before it serves): the gauge was set only from the last good scrape, so a job whose
metrics were never read had no age and never alerted."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gentrain_operator import job_object, metrics, monitor
from tests.operator.test_unwritten_milestone import running_gan_monitor


def test_a_trainer_never_read_has_metrics_as_old_as_the_first_failed_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]

    async def unreachable(*_: Any, **__: Any) -> None:
        raise monitor.ScrapeError("connection timed out")

    monkeypatch.setattr(monitor, "scrape_pod", unreachable)
    monkeypatch.setattr(monitor.time, "time", lambda: now[0])
    monkeypatch.setattr(job_object, "apply_conditions", lambda *_: None)
    watcher = running_gan_monitor("never-read")

    async def scrapes() -> None:
        async with aiohttp.ClientSession() as session:
            await watcher.once(session)
            now[0] += 90.0
            await watcher.once(session)

    asyncio.run(scrapes())
    age = metrics.METRICS_AGE.labels("n", "never-read")._value.get()
    assert age == pytest.approx(90.0)
