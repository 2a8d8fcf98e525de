"""Per job: scrape the trainer (or query Prometheus), notice milestones, act on them.

Runs as a kopf daemon: async scraping with aiohttp (timeouts, exponential back-off),
blocking Kubernetes calls in threads. Never acts on missing or stale data: a milestone
is processed once, from a scrape that succeeded, and MetricsAvailable turns False when
the newest good scrape is older than a few intervals.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from gentrain_contract import metrics as trainer_metrics

from . import job_object, metrics
from .announce import announce, count_remediation
from .availability import CONDITION as AVAILABILITY_CONDITION
from .availability import already_says, availability
from .conditions import set_condition
from .decision_writes import record_lost_intent, write_decision
from .lifecycle import PodReader
from .milestones import process, replayed_event, unrecorded_intent
from .progress import progress
from .scraping import (
    ScrapeError,
    client_session,
    final_from_prometheus,
    query_prometheus,
    scrape_pod,
)
from .settings import Settings
from .snapshot import Snapshot, milestone

log = logging.getLogger("gentrain.monitor")
# The live step in status is a progress display: refreshed this often, or at a milestone,
# rather than at every scrape (at 500 jobs that is 33 status patches a second saved).
STEP_REFRESH_SECONDS = 60.0


def retry_delay(failures: int, interval: float) -> float:
    """Seconds until the next scrape after `failures` failed ones in a row. A new pod
    opens its port a few seconds after it starts: retry soon, then back off — but never
    past the job's own interval: a trainer does not wait, and a milestone published while
    the monitor backs off is a milestone missed (it once backed off to 128 s)."""
    return min(interval, 0.5 * 2.0 ** min(failures - 1, 8))


def _already_recorded(record: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the status's newest milestone is this one (same step and time)."""
    latest = (status.get("milestones") or [{}])[-1]
    return bool(latest) and (latest.get("step"), latest.get("time")) == (
        record["step"],
        record["time"],
    )


class JobMonitor:
    def __init__(
        self,
        namespace: str,
        name: str,
        settings: Settings,
        post_event: Callable[[str, str, str], None],
        live_job: Callable[[], Mapping[str, Any]],
        read_pod: PodReader,
    ) -> None:
        self.namespace, self.name, self.settings = namespace, name, settings
        self.post_event, self.live_job, self.read_pod = post_event, live_job, read_pod
        self.step_patched = 0.0  # when status.step was last written
        # The milestone step last written to status: a live body that does not show it
        # yet lags behind the watch, and is not decided on.
        self.written_step: int | None = None
        # (step, time) of the milestone this monitor last recorded: not decided again
        # while the watch has not shown that write yet.
        self.recorded: tuple[int, float] | None = None
        self.failures = 0  # failed scrapes in a row
        self.errors = 0  # failed monitoring steps in a row (an API error, a bug)
        self.last_good: float | None = None
        # When the first scrape of a trainer never read before failed: a trainer that no
        # scrape ever reached (a NetworkPolicy in the way) has metrics as old as that.
        self.unread_since: float | None = None
        self.metrics_available: tuple[bool, str] | None = None  # (fresh, message) last written
        self.pod: tuple[str, str] | None = None  # (name, IP) of the pod being scraped
        # The latest scrape whose handling failed (an API error writing status): handled
        # again even when the trainer cannot be scraped any more. A trainer waits for one
        # scrape of its final milestone, not for its status write, then exits.
        self.unwritten: Snapshot | None = None
        # The trainer pod whose final milestone was read through Prometheus (or, unread,
        # said so in the log).
        self.final_read: str | None = None
        self.final_unread: str | None = None

    async def once(self, session: aiohttp.ClientSession) -> float:
        """One scrape; returns seconds until the next."""
        job = copy.deepcopy(dict(self.live_job()))
        spec, status = job["spec"], job.get("status") or {}
        monitoring = spec.get("monitoring") or {}
        interval = float(monitoring.get("scrapeIntervalSeconds", 15))
        if status.get("phase") in ("Succeeded", "Failed", "Suspended"):
            # Nothing to scrape; look again now and then (a suspended job may resume). A
            # milestone scraped but not written, or a remediation applied just before the
            # end whose record was lost, is written.
            if await self._handle_unwritten(job) or (
                self.written_step is not None and status.get("checkpointStep") != self.written_step
            ):
                return 1.0  # look again once the watch shows what was just written
            if unrecorded_intent(job) is not None:
                await self._record_lost_intent()
            return max(interval, 10.0)
        pod_ip = await self._pod_ip(status.get("podName"), status.get("phase"))
        if pod_ip is None:
            if not await self._handle_unwritten(job) and monitoring.get("prometheusURL"):
                await self._final_through_prometheus(session, job, monitoring["prometheusURL"])
            return min(interval, 1.0)
        started = time.monotonic()
        try:
            with metrics.SCRAPE_SECONDS.time():
                if monitoring.get("prometheusURL"):
                    snapshot = await query_prometheus(
                        session,
                        monitoring["prometheusURL"],
                        self.namespace,
                        status.get("podName", ""),
                        self.settings.scrape_timeout_seconds,
                    )
                else:
                    url = f"http://{pod_ip}:{self.settings.trainer_metrics_port}/metrics"
                    snapshot = await scrape_pod(
                        session,
                        url,
                        self.settings.scrape_timeout_seconds,
                        self.settings.max_scrape_bytes,
                    )
        except ScrapeError as error:
            self.failures += 1
            self.pod = None  # the pod may have gone: look it up again
            metrics.SCRAPE_ERRORS.labels(reason=str(error).split(":")[0][:40]).inc()
            if self.unread_since is None:
                self.unread_since = time.time()
            await self._availability(job, interval, f"scrape failed: {error}")
            await self._handle_unwritten(job)
            return retry_delay(self.failures, interval)
        self.failures = 0
        self.last_good = time.time()
        # Kept before any API call: if one fails, this scrape is still handled later.
        self.unwritten = snapshot
        metrics.METRICS_AGE.labels(self.namespace, self.name).set(0)
        await self._availability(job, interval, "")
        if not await self._handle(job, snapshot):
            return min(interval, 1.0)  # the job changed meanwhile: decided again on it soon
        self.unwritten = None
        return max(0.0, interval - (time.monotonic() - started))

    async def _handle_unwritten(self, job: dict[str, Any]) -> bool:
        """Handles the scrape whose handling failed, if any; whether there was one."""
        if self.unwritten is None:
            return False
        if await self._handle(job, self.unwritten):  # idempotent: see _already_recorded
            self.unwritten = None
        return True

    async def _final_through_prometheus(
        self, session: aiohttp.ClientSession, job: dict[str, Any], base: str
    ) -> None:
        """Read through Prometheus, the final milestone of a trainer that completed: it
        exited at the scrape that carried it, before any query of ours could see it (the
        job waits for it: pod_status.FINAL_MILESTONE_WAIT_SECONDS). Read once per pod."""
        pod_name = (job.get("status") or {}).get("podName")
        if not pod_name or pod_name == self.final_read:
            return
        pod = await asyncio.to_thread(self.read_pod, self.namespace, pod_name)
        if ((pod or {}).get("status") or {}).get("phase") != "Succeeded":
            return
        try:
            snapshot = await final_from_prometheus(
                session, base, self.namespace, pod_name, self.settings.scrape_timeout_seconds
            )
        except ScrapeError as error:
            if self.final_unread != pod_name:  # tried again each second: said once
                log.info("%s/%s: final milestone not read: %s", self.namespace, self.name, error)
                self.final_unread = pod_name
            return
        self.final_read = pod_name
        read_step = snapshot.get(trainer_metrics.CHECKPOINT_STEP.name)
        recorded = (job.get("status") or {}).get("checkpointStep")
        if read_step is not None and recorded is not None and read_step <= recorded:
            # The trainer waits for one scrape, any scraper's: one Prometheus dropped (a
            # timeout) ends that wait all the same. Said, so that a job that ends short of
            # its final milestone shows where it was lost.
            log.info(
                "%s/%s: Prometheus's last scrape of %s holds step %d's milestone, none newer",
                self.namespace, self.name, pod_name, int(read_step),
            )  # fmt: skip
        self.unwritten = snapshot
        if await self._handle(job, snapshot):
            self.unwritten = None

    async def _pod_ip(self, pod_name: str | None, phase: str | None) -> str | None:
        """The trainer pod's address, looked up once per pod rather than once per scrape."""
        if not pod_name or phase in ("Suspended", "Succeeded", "Failed"):
            return None
        if self.pod is None or self.pod[0] != pod_name:
            pod = await asyncio.to_thread(self.read_pod, self.namespace, pod_name)
            ip = ((pod or {}).get("status") or {}).get("podIP")
            if not ip or (pod or {}).get("status", {}).get("phase") != "Running":
                return None
            self.pod = (pod_name, ip)
        return self.pod[1]

    async def _availability(self, job: dict[str, Any], interval: float, problem: str) -> None:
        state = availability(
            time.time(),
            self.last_good,
            self.unread_since,
            interval * self.settings.stale_after_intervals,
            problem,
        )
        if state.age is not None:
            metrics.METRICS_AGE.labels(self.namespace, self.name).set(state.age)
        read = job.get("status") or {}
        if (state.fresh, state.message) == self.metrics_available:
            return
        if not already_says(read.get("conditions"), state):
            conditions = set_condition(
                read.get("conditions"),
                AVAILABILITY_CONDITION,
                state.fresh,
                state.reason,
                state.message,
                int(job["metadata"].get("generation", 1)),
            )
            await self._patch_status({"conditions": conditions}, read)
            # The milestone step that follows patches conditions too: it must start from these.
            job.setdefault("status", {})["conditions"] = conditions
        self.metrics_available = (state.fresh, state.message)

    @staticmethod
    def _progress(job: Mapping[str, Any], step: int, snapshot: Snapshot) -> dict[str, Any]:
        max_steps = int(job["spec"]["training"]["maxSteps"])
        return progress(step, max_steps, snapshot.get(trainer_metrics.STEP_SECONDS.name))

    async def _handle(self, job: Mapping[str, Any], snapshot: Snapshot) -> bool:
        """Handles one scrape; False when its milestone was not recorded because the job
        changed while it was decided (to be decided again on the job as it is then)."""
        status = job.get("status") or {}
        live_step = snapshot.get(trainer_metrics.STEP.name)
        device = next(iter(snapshot.by(trainer_metrics.DEVICE_INFO.name, "device")), None)
        updates: dict[str, Any] = {}
        if (
            live_step is not None
            and live_step != status.get("step")
            and time.monotonic() - self.step_patched >= STEP_REFRESH_SECONDS
        ):
            updates["step"] = int(live_step)
        if "step" in updates:
            updates.update(self._progress(job, updates["step"], snapshot))
        if device and device != status.get("device"):
            updates["device"] = device
        record = milestone(snapshot)
        if record is not None:
            metrics.CHECKPOINT_AGE.labels(self.namespace, self.name).set(
                max(0.0, time.time() - record["time"])
            )
        if (
            record is None
            or _already_recorded(record, status)
            or self.recorded == (record["step"], record["time"])
        ):
            if updates:
                await self._patch_status(updates, status)
            return True
        # A new milestone is decided on the job as the API server has it, not on the view
        # kopf keeps from the watch: that view lags (the operator's own last write not seen
        # yet) and, in a daemon started while the operator stopped, stayed frozen at the
        # event of a spec PATCH before the status PATCH of the same milestone. Decided on
        # it, a milestone wrote `[300, 900]` over `[300, 600]`. One read per milestone.
        fresh = await asyncio.to_thread(job_object.read_job, self.namespace, self.name)
        if fresh is None:
            return True  # deleted
        if _already_recorded(record, fresh.get("status") or {}):
            self.recorded = (record["step"], record["time"])
            return True
        job = fresh
        if live_step is not None:
            updates["step"] = int(live_step)
            updates.update(self._progress(job, updates["step"], snapshot))
        if device and device != (job.get("status") or {}).get("device"):
            updates["device"] = device
        outcome = process(record, job, history_limit=self.settings.status_history)
        version = job["metadata"]["resourceVersion"]
        if not await write_decision(self.namespace, self.name, record, outcome, updates, version):
            return False
        if "step" in updates:
            self.step_patched = time.monotonic()
        self.written_step = record["step"]
        self.recorded = (record["step"], record["time"])
        await announce(self.namespace, self.name, record, outcome, job, self.post_event)
        return True

    async def _record_lost_intent(self) -> None:
        applied = await record_lost_intent(self.namespace, self.name)
        if applied is not None:  # told and counted as its decision would have been
            count_remediation(self.namespace, self.name, applied)
            self.post_event(*replayed_event(applied))

    async def _patch_status(
        self, updates: Mapping[str, Any], read: Mapping[str, Any] | None
    ) -> None:
        """`read`: the status these updates were computed from (see job_object.write_job_status)."""
        await asyncio.to_thread(
            job_object.write_job_status, self.namespace, self.name, updates, read
        )
        if "step" in updates:
            self.step_patched = time.monotonic()

    async def run(self, stopped: Any) -> None:
        async with client_session() as session:
            due = time.monotonic()
            while not stopped:
                # How late this scrape starts against its schedule: the loop's lag.
                metrics.SCRAPE_LAG.labels(self.namespace, self.name).set(
                    max(0.0, time.monotonic() - due)
                )
                try:
                    delay = await self.once(session)
                    self.errors = 0
                except Exception:
                    log.exception("%s/%s: monitoring step failed", self.namespace, self.name)
                    # Soon, then backing off: a trainer does not wait, and a milestone (or
                    # its final scrape) passed during a long pause is a milestone missed.
                    self.errors += 1
                    delay = min(30.0, 1.0 * 2 ** min(self.errors - 1, 5))
                due = time.monotonic() + delay
                await stopped.wait(delay)
