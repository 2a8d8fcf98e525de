"""How the operator reads a trainer: its /metrics endpoint, or the series Prometheus
scraped from it (`monitoring.prometheusURL`). Both are the user's: every read is bounded,
and every way it can fail is one error type, ScrapeError."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from . import names
from .snapshot import Snapshot, from_prometheus, parse

log = logging.getLogger("gentrain.monitor")
PROMETHEUS_MAX_BYTES = 4 << 20  # one job's series: a few hundred, a few hundred KB


class ScrapeError(RuntimeError):
    pass


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it passes `max_bytes` (the rest is never read)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


async def scrape_pod(
    session: aiohttp.ClientSession, url: str, timeout: float, max_bytes: int = 1 << 20
) -> Snapshot:
    """One scrape: at most `max_bytes` read (a trainer's pod is the user's code, and one
    pod's 30 MB must not stall every other job's monitor), parsed in a worker thread."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise ScrapeError(f"HTTP {response.status}")
            body = await read_bounded(response, max_bytes)
    except aiohttp.ClientConnectorError as error:
        # What a user sees in the MetricsAvailable condition: their own program may simply
        # serve nothing (yet), and the message says where the operator looked.
        raise ScrapeError(
            f"{type(error).__name__}: nothing answers on port {urlsplit(url).port} of the pod "
            "(a program reports with gentrain-sdk's Reporter, which serves "
            "$GENTRAIN_METRICS_PORT)"
        ) from error
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ScrapeError(type(error).__name__) from error
    if body is None:
        raise ScrapeError(
            f"exposition larger than {max_bytes} bytes: refused "
            "(GENTRAIN_MAX_SCRAPE_BYTES sets the limit)"
        )
    text = body.decode("utf-8", errors="replace")
    try:
        return await asyncio.to_thread(parse, text, time.time())
    except ValueError as error:  # the parser's word for an exposition it cannot read
        raise ScrapeError(f"unparsable exposition: {str(error)[:200]}") from error


async def _prometheus(
    session: aiohttp.ClientSession,
    base: str,
    query: str,
    timeout: float,
    at: float | None = None,
) -> list[dict[str, Any]]:
    """An instant query's result (at `at`, or now). The URL is the job owner's: the operator
    must not become their probe of the cluster's network. No redirects, a bounded answer,
    and one message whatever went wrong (which error it was would tell an open port from a
    closed one); the detail goes to the log."""
    params = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
    try:
        async with session.get(
            f"{base.rstrip('/')}/api/v1/query",
            params=params,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            raw = await read_bounded(response, PROMETHEUS_MAX_BYTES)
            if raw is None:
                raise ValueError(f"answer larger than {PROMETHEUS_MAX_BYTES} bytes")
            body = json.loads(raw)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ValueError("not a successful query result")
        result = body["data"]["result"]
        if not isinstance(result, list):
            raise ValueError("not a vector or matrix")
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
        log.info("Prometheus query %r failed: %r", query, error)
        raise ScrapeError("the Prometheus query failed") from error
    return result


def _trainer_selector(namespace: str, pod: str) -> str:
    return f'namespace="{namespace}", pod="{pod}"'


async def query_prometheus(
    session: aiohttp.ClientSession,
    base: str,
    namespace: str,
    pod: str,
    timeout: float,
    at: float | None = None,
) -> Snapshot:
    """The trainer's series as Prometheus holds them now (or at `at`)."""
    selector = _trainer_selector(namespace, pod)
    result = await _prometheus(
        session, base, f'{{__name__=~"gentrain_.+", {selector}}}', timeout, at
    )
    if not result:
        raise ScrapeError("Prometheus has no series for the trainer yet")
    try:
        return from_prometheus(result, time.time())
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ScrapeError("the Prometheus query failed") from error


# How far back the last scrape of a trainer that has exited is looked for.
FINAL_SCRAPE_LOOKBACK = "10m"


async def final_from_prometheus(
    session: aiohttp.ClientSession, base: str, namespace: str, pod: str, timeout: float
) -> Snapshot:
    """The series of a trainer that has exited, as Prometheus last scraped it. Read "now"
    they are gone: Prometheus marks a target's series stale once it stops answering (or
    drops out of discovery), and the trainer exits right after the scrape that carried its
    final milestone. So: the time of that last scrape, then everything at that time."""
    selector = _trainer_selector(namespace, pod)
    samples = await _prometheus(
        session, base, f"gentrain_step{{{selector}}}[{FINAL_SCRAPE_LOOKBACK}]", timeout
    )
    try:
        last = max(float(t) for series in samples for t, _ in series["values"])
    except (KeyError, TypeError, ValueError) as error:  # max() of nothing: no sample
        raise ScrapeError("Prometheus holds no scrape of the finished trainer") from error
    return await query_prometheus(session, base, namespace, pod, timeout, at=last)


def client_session() -> aiohttp.ClientSession:
    """The monitor's HTTP client. Its User-Agent tells a trainer that this scrape, and not
    a Prometheus's, is the operator's (see names.MONITOR_USER_AGENT)."""
    return aiohttp.ClientSession(headers={"User-Agent": names.MONITOR_USER_AGENT})
