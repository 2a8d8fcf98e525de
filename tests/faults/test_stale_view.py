"""Fault: the monitor's view of its job lags behind the API server.

kopf hands the monitor a body it updates from the watch. That view can be older than the
job: the watch has not delivered the operator's own last write yet, or (seen in fresh-clone
runs of the operator-restart test) a monitor daemon started while the operator stopped
kept a view frozen at the event of its spec PATCH, before the status PATCH that recorded
the same milestone. Deciding a new milestone on that view wrote `milestones: [300, 900]`
over `[300, 600]`: a milestone lost, and an applied remediation's record written again
from the intent annotation the stale view still showed as unrecorded. A milestone is
decided on the job as the API server has it, and recorded only if nothing changed since."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gentrain_operator import job_object, kube, monitor
from gentrain_operator.settings import Settings
from gentrain_operator.snapshot import Snapshot, parse
from tests.operator.test_operator_cluster import gtj, status
from tests.support.expositions import gan_first_milestone
from tests.support.kube import Cluster, point_clients_at

pytestmark = [pytest.mark.cluster, pytest.mark.faults]


def restamped(exposition: str, step: int, time: float) -> Snapshot:
    """A real trainer's milestone exposition, moved to another step and time."""
    text = re.sub(r"(?m)^(gentrain_checkpoint_step|gentrain_step) \S+$", rf"\1 {step}", exposition)
    stamp = "gentrain_milestone_timestamp_seconds"
    text = re.sub(rf"(?m)^{stamp} \S+$", f"{stamp} {time}", text)
    return parse(text, 0.0)


def handle(
    namespace: str,
    view: Callable[[], Mapping[str, Any]],
    snapshot: Snapshot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One scrape of `snapshot` by a monitor that sees the job as `view` returns it."""
    running = {"status": {"phase": "Running", "podIP": "127.0.0.1"}}
    watcher = monitor.JobMonitor(
        namespace, "stale", Settings(), lambda *_: None, view, lambda *_: running
    )

    async def scrape(*_: Any, **__: Any) -> Snapshot:
        return snapshot

    async def once() -> None:
        async with aiohttp.ClientSession() as session:
            await watcher.once(session)

    monkeypatch.setattr(monitor, "scrape_pod", scrape)
    asyncio.run(once())


def test_a_milestone_decided_on_a_stale_view_loses_no_earlier_milestone(
    cluster: Cluster,
    namespace: str,
    gtj_crd: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_clients_at(cluster, monkeypatch)
    monkeypatch.setattr(kube, "write_retention", lambda *_: None)  # no trainer to tell
    # Recommendations only: what is under test is the record, not a decision.
    cluster.apply(
        gtj("stale", max_steps=100_000, interval=300, remediation={"mode": "off"}), namespace
    )
    job_object.patch_job_status(
        namespace, "stale", {"phase": "Running", "podName": "stale-trainer-1"}
    )
    exposition = gan_first_milestone(tmp_path)

    def live() -> Mapping[str, Any]:
        job = job_object.read_job(namespace, "stale")
        assert job is not None
        return job

    handle(namespace, live, restamped(exposition, 300, 1000.0), monkeypatch)
    frozen = live()  # the view a lagging watch keeps from here on
    handle(namespace, live, restamped(exposition, 600, 1060.0), monkeypatch)
    assert [m["step"] for m in status(cluster, namespace, "stale")["milestones"]] == [300, 600]

    handle(namespace, lambda: frozen, restamped(exposition, 900, 1120.0), monkeypatch)
    recorded = status(cluster, namespace, "stale")
    assert [m["step"] for m in recorded["milestones"]] == [300, 600, 900]
    assert recorded["checkpointStep"] == 900
