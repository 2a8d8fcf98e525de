"""A trainer pod runs the user's code: what it serves on /metrics is untrusted, and so is
the Prometheus URL a job names. Before the bounds, a 10 MB exposition with 200,000 series
took 23 s to parse on the event loop (every other job's monitor, the watches and the
health endpoint stalled), and every label value it sent was copied into status (a 3 MB
patch; etcd stops at 1.5 MiB)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gentrain_operator.milestones import process
from gentrain_operator.scraping import ScrapeError, query_prometheus, scrape_pod
from gentrain_operator.snapshot import MAX_LABEL_VALUES, milestone, parse


def hostile(components: int) -> str:
    lines = [
        "gentrain_checkpoint_step 100",
        "gentrain_milestone_timestamp_seconds 1000",
        "gentrain_config_generation 1",
    ]
    for i in range(components):
        lines.append(f'gentrain_milestone_loss_mean{{component="c{i}"}} 1.0')
        lines.append(f'gentrain_hyperparameter_info{{name="h{i}",value="{"x" * 40}"}} 1')
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def serving(routes: dict[str, Any] | None) -> AsyncIterator[str]:
    """A server with these routes on the loopback address (its base URL), or, for None,
    the URL of a port where nothing listens."""
    if routes is None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        yield f"http://127.0.0.1:{port}"
        return
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def scrape_served(body: str, max_bytes: int) -> object:
    """Serves `body` and scrapes it as the monitor does."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=body)

    async with serving({"/metrics": metrics}) as url, aiohttp.ClientSession() as session:
        return await scrape_pod(session, f"{url}/metrics", 60.0, max_bytes)


def test_an_exposition_over_the_limit_is_refused_unparsed() -> None:
    body = hostile(200_000)  # ~20 MB
    with pytest.raises(ScrapeError, match="larger than 1048576 bytes"):
        asyncio.run(scrape_served(body, 1 << 20))


def test_an_exposition_the_parser_cannot_read_is_a_scrape_error() -> None:
    with pytest.raises(ScrapeError, match="unparsable exposition"):
        asyncio.run(scrape_served('gentrain_step{component="a} 1\n', 1 << 20))


def test_a_normal_exposition_is_read_whole() -> None:
    snapshot = asyncio.run(scrape_served(hostile(3), 1 << 20))
    assert snapshot.get("gentrain_checkpoint_step") == 100  # type: ignore[attr-defined]


def test_what_a_trainer_sends_is_bounded_in_status() -> None:
    record = milestone(parse(hostile(5_000), 0.0))
    assert record is not None
    assert len(record["loss_mean"]) == MAX_LABEL_VALUES
    assert len(record["hyperparameters"]) <= MAX_LABEL_VALUES
    job = {
        "metadata": {"name": "g", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {"maxSteps": 2000, "hyperparameters": {}},
            "checkpoints": {"interval": 100},
        },
        "status": {},
    }
    status = process(record, job, now=0.0).status
    assert len(json.dumps(status)) < 64_000


async def query_served(routes: dict[str, Any] | None) -> str:
    """The error a Prometheus query reports, from a server with these routes or from a
    port where nothing listens (None)."""
    async with serving(routes) as url, aiohttp.ClientSession() as session:
        try:
            await query_prometheus(session, url, "n", "p", 10.0)
        except ScrapeError as error:
            return str(error)
    raise AssertionError("the query succeeded")


def test_a_prometheus_url_cannot_probe_the_network_for_its_owner() -> None:
    followed: list[str] = []

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(_: web.Request) -> web.Response:
        followed.append("redirect followed")
        return web.json_response({"status": "success", "data": {"result": []}})

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(text="<html>not Prometheus</html>")

    messages = {
        asyncio.run(query_served({"/api/v1/query": redirect, "/elsewhere": elsewhere})),
        asyncio.run(query_served({"/api/v1/query": garbage})),
        asyncio.run(query_served(None)),  # nothing listening
    }
    # One message, whatever happened: it tells an open port from a closed one no more.
    assert messages == {"the Prometheus query failed"}
    assert followed == []


@pytest.mark.parametrize(
    ("sent", "read"), [("100", 100), ("0", 0), ("-5", None), ("250", None), ("NaN", None)]
)
def test_the_step_a_configuration_applies_from_is_read_only_when_it_can_be_true(
    sent: str, read: int | None
) -> None:
    # A step after the milestone, or before the run, would have a change judged on a
    # window it did not train (policy.judge): such a figure is as good as unsaid.
    record = milestone(parse(hostile(1) + f"gentrain_config_generation_step {sent}\n", 0.0))
    assert record is not None
    assert record.get("generation_step") == read
