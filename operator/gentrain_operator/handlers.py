"""kopf registrations, and nothing else: each handler is a thin call into the modules
that do the work (lifecycle, monitor)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from . import lifecycle, metrics, names
from .monitor import JobMonitor
from .settings import SETTINGS

RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "gentrain.io/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gentrain.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="gentrain.io", key="last-handled"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if SETTINGS.peering:
        settings.peering.name = SETTINGS.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = not SETTINGS.namespace
    else:
        settings.peering.standalone = True


def _reconcile(body: kopf.Body, patch: kopf.Patch) -> None:
    events: list[tuple[str, str, str]] = []
    with metrics.RECONCILE_SECONDS.time():
        changes = lifecycle.reconcile(body, SETTINGS, events)
    for key, value in changes.items():
        patch.status[key] = value
    meta = body["metadata"]
    metrics.record_phase(
        meta["namespace"], meta["name"], changes.get("phase") or body.get("status", {}).get("phase")
    )
    for kind, reason, message in events:
        kopf.event(body, type=kind, reason=reason, message=message)


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _reconcile(body, patch)


@kopf.timer(*RESOURCE, interval=SETTINGS.pod_check_seconds, sharp=False)
def check_pod(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _reconcile(body, patch)


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def monitor(
    name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    assert namespace is not None  # the resource is namespaced

    def post(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message[:1000])

    await JobMonitor(namespace, name, SETTINGS, post).run(stopped)


@kopf.on.delete(*RESOURCE, optional=True)
def forget(namespace: str | None, name: str, **_: Any) -> None:
    metrics.forget_job(namespace or "", name)


@kopf.on.probe(id="jobs")
def probe(**_: Any) -> str:
    return "ok"
