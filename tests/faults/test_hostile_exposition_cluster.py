"""One trainer pod answers every scrape with 30 MB and 200,000 series, beside a healthy
job, on the real cluster with the real operator. Before the scrape bound, the operator
read such a body whole and parsed it on its event loop (23 s for 10 MB): every other
job's monitor, the watches and the health endpoint stalled with it.

Prints the figures the issue asks for: the healthy job's scrape lag (p50, p99, max: how
late each scrape started against its 1 s schedule), the health endpoint's slowest answer,
and the peak memory the operator's process added while it ran."""

from __future__ import annotations

import itertools
import statistics
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gentrain_operator import builders, monitor
from tests.operator.test_families_cluster import zoo
from tests.operator.test_operator_cluster import gtj, status
from tests.support.kube import REPO, Cluster, point_clients_at
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.slow]
HEALTH_PORT = 18097


def resident_peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class Scrapes:
    """When each successful scrape of each pod (by URL) started, wrapping the operator's
    own scrape (a pod that is not up yet is retried with back-off: no lag of the loop)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: dict[str, list[float]] = defaultdict(list)
        real = monitor.scrape_pod

        async def scrape(session: Any, url: str, *args: Any) -> Any:
            started = time.monotonic()
            result = await real(session, url, *args)
            self.started[url].append(started)
            return result

        monkeypatch.setattr(monitor, "scrape_pod", scrape)


def hostile_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job named `hostile` runs tests/faults/hostile_exposition.py instead of the
    trainer: a user's image gone wrong, behind the same pod spec."""
    real = builders.trainer_pod

    def trainer_pod(job: Any, attempt: int, **kwargs: Any) -> dict[str, Any]:
        pod = real(job, attempt, **kwargs)
        if job["metadata"]["name"] == "hostile":
            container = pod["spec"]["containers"][0]
            container["command"] = [
                *container["command"][:-2],
                "-m",
                "tests.faults.hostile_exposition",
            ]
            container["env"].append({"name": "PYTHONPATH", "value": str(REPO)})
        return pod

    monkeypatch.setattr(builders, "trainer_pod", trainer_pod)


@pytest.fixture
def operator_with_health(
    cluster: Cluster, gtj_crd: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    from kopf.testing import KopfRunner

    point_clients_at(cluster, monkeypatch)
    with KopfRunner(
        [
            "run",
            "--all-namespaces",
            "--standalone",
            f"--liveness=http://127.0.0.1:{HEALTH_PORT}/healthz",
            "-m",
            "gentrain_operator.handlers",
        ]
    ) as runner:
        yield
    assert runner.exception is None or isinstance(runner.exception, SystemExit), runner.exception


def test_a_hostile_exposition_stalls_no_other_job(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch, operator_with_health: None
) -> None:
    scrapes = Scrapes(monkeypatch)
    hostile_pod(monkeypatch)
    health: list[float] = []
    done = threading.Event()

    def probe_health() -> None:
        while not done.wait(0.5):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/healthz", timeout=30):
                    pass
                health.append(time.monotonic() - started)
            except OSError:
                health.append(float("inf"))

    resident = resident_kib()
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    prober = threading.Thread(target=probe_health, daemon=True)
    prober.start()
    cluster.apply(gtj("hostile", max_steps=1_000_000), namespace)
    # The zoo's healthy GAN reference, milestones 500 steps apart (seconds, not scrapes).
    healthy = gtj("healthy")
    healthy["spec"] = {
        **zoo("gan-minimax-strong-discriminator", "healthy", training={"maxSteps": 3000}),
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": {"cpu": "1", "memory": "1Gi"},
    }
    cluster.apply(healthy, namespace)
    refused = wait_for(
        lambda: status(cluster, namespace, "hostile"),
        lambda s: any(
            c["type"] == "MetricsAvailable" and c["status"] == "False" and "bytes" in c["message"]
            for c in s.get("conditions") or []
        ),
        "the hostile job's MetricsAvailable=False naming the limit",
        timeout=120,
    )
    final = wait_for(
        lambda: status(cluster, namespace, "healthy"),
        lambda s: s.get("phase") == "Failed" or s.get("checkpointStep") == 3000,
        "the healthy job's last milestone in status",
        timeout=300,
    )
    done.set()
    prober.join()
    peak_added = resident_peak_kib() - resident

    assert final["phase"] != "Failed", final.get("message")
    assert [m["step"] for m in final["milestones"]] == list(range(500, 3001, 500))
    assert final["remediationCount"] == 0
    message = next(c for c in refused["conditions"] if c["type"] == "MetricsAvailable")["message"]
    [healthy_url] = [u for u in scrapes.started if u.startswith(f"http://{final['podIP']}:")]
    starts = scrapes.started[healthy_url]
    # Each scrape is due 1 s (the job's interval) after the previous one started.
    lags = sorted(max(0.0, b - a - 1.0) for a, b in itertools.pairwise(starts))
    p99 = lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]
    print(  # past KopfRunner, which captures sys.stdout while the operator runs
        f"\nhostile job: {message!r}"
        f"\nhealthy job: {len(starts)} scrapes; lag p50 {statistics.median(lags):.3f} s, "
        f"p99 {p99:.3f} s, max {lags[-1]:.3f} s"
        f"\nhealth endpoint: {len(health)} probes, slowest {max(health):.3f} s"
        f"\noperator process: peak resident +{peak_added / 1024:.0f} MiB over {resident / 1024:.0f} MiB",
        file=sys.__stdout__,
    )
    assert max(health) < 5.0, health  # a liveness probe's usual timeout is 1-5 s
    assert p99 < 2.0, lags  # two intervals: nothing stalled the healthy job's monitor
