"""kopf registrations, and nothing else: each handler is a thin call into the modules
that do the work (lifecycle, monitor)."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Mapping
from typing import Any

import kopf

from . import job_object, jobset, kube, lifecycle, metrics, names, peering
from .monitor import JobMonitor
from .settings import SETTINGS

RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "gentrain.io/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gentrain.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="gentrain.io", key="last-handled"
    )
    settings.posting.level = logging.INFO
    # A job's deletion waits for its pod check (a timer) and monitor (a daemon) to stop,
    # and kopf looks again only every minute by default: a TTL deletion, made by the pod
    # check itself, took 60 s; so did a `kubectl delete gtj` that arrived during a check.
    settings.background.cancellation_polling = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Watching named namespaces (the chart's namespace scope), the operator may not list
    # namespaces or CRDs cluster-wide: kopf would retry that for about a minute before
    # serving any job (seen on the real node). It serves exactly the namespaces named;
    # patterns (team-*) still need the scan, and its permissions.
    settings.scanning.disabled = bool(SETTINGS.namespaces) and not any(
        mark in namespace for namespace in SETTINGS.namespaces for mark in "*?[!"
    )
    if SETTINGS.peering:
        settings.peering.name = SETTINGS.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = not SETTINGS.namespaces
        # kopf pauses every replica when peers share a priority, so each replica draws its
        # own: the highest acts, the others stand by until it leaves or its record expires.
        settings.peering.priority = random.SystemRandom().randint(1, 2**31 - 1)
        settings.peering.lifetime = peering.LIFETIME_SECONDS
        await peering.announce_and_settle(
            SETTINGS.peering, settings.peering.priority, SETTINGS.namespaces
        )
    else:
        settings.peering.standalone = True


# What the lifecycle reads of a pod's labels: which attempt it stands for, and its JobSet.
KEPT_LABELS = (names.ATTEMPT_POD_LABEL, jobset.JOBSET_NAME_LABEL)


@kopf.index("pods", labels={"app.kubernetes.io/managed-by": "gentrain-operator"})
def trainer_pods(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """The operator's pods as the watch last saw them: what the periodic check and the
    monitor read, instead of a GET per job every few seconds. Only the fields they read
    are kept (managedFields alone would double the operator's memory at 500 jobs)."""
    meta, status = body["metadata"], body.get("status") or {}
    labels = meta.get("labels") or {}
    pod = {
        "metadata": {
            "name": name,
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {key: labels[key] for key in KEPT_LABELS if key in labels},
        },
        "spec": {"nodeName": (body.get("spec") or {}).get("nodeName")},
        "status": {
            key: copy.deepcopy(status[key])
            for key in ("phase", "podIP", "conditions", "containerStatuses")
            if key in status
        },
    }
    keys = [(namespace, name)]
    if names.ATTEMPT_POD_LABEL in labels:  # rank 0 of a JobSet, read under its attempt's name
        keys.append((namespace, labels[names.ATTEMPT_POD_LABEL]))
    return dict.fromkeys(keys, pod)


def pod_reader(index: kopf.Index[tuple[str | None, str], dict[str, Any]]) -> lifecycle.PodReader:
    def read(namespace: str, name: str) -> Mapping[str, Any] | None:
        for pod in index.get((namespace, name), []):
            return pod
        # Not seen by the watch (yet): a pod created a moment ago, or one really gone.
        # Ask the API server rather than relaunch on a lagging index.
        return kube.read_attempt_pod(namespace, name)

    return read


def _reconcile(body: kopf.Body, read_pod: lifecycle.PodReader, spec_changed: bool) -> None:
    events: list[tuple[str, str, str]] = []
    with metrics.RECONCILE_SECONDS.time():
        changes = lifecycle.reconcile(body, SETTINGS, events, read_pod, spec_changed)
    meta = body["metadata"]
    if changes:
        # Written now, the phase with the batch conditions that say the same (see
        # job_object.write_job_status), never as kopf's merge patch of the whole list as it
        # read it (see job_object.apply_conditions).
        job_object.write_job_status(meta["namespace"], meta["name"], changes, body.get("status"))
    metrics.record_phase(
        meta["namespace"], meta["name"], changes.get("phase") or body.get("status", {}).get("phase")
    )
    for kind, reason, message in events:
        kopf.event(body, type=kind, reason=reason, message=message)


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    _reconcile(body, kube.read_attempt_pod, spec_changed=True)


@kopf.timer(*RESOURCE, interval=SETTINGS.pod_check_seconds, sharp=False)
def check_pod(body: kopf.Body, **kwargs: Any) -> None:
    # kopf passes each index by its handler's name (kwargs, to match kopf's protocols).
    _reconcile(body, pod_reader(kwargs["trainer_pods"]), spec_changed=False)


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def monitor(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    assert namespace is not None  # the resource is namespaced

    def post(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message[:1000])

    # `body` is live: kopf updates it from the watch, so reading it costs no request.
    monitor = JobMonitor(
        namespace, name, SETTINGS, post, lambda: body, pod_reader(kwargs["trainer_pods"])
    )
    await monitor.run(stopped)


@kopf.on.delete(*RESOURCE, optional=True)
def forget(namespace: str | None, name: str, **_: Any) -> None:
    metrics.forget_job(namespace or "", name)


@kopf.on.probe(id="jobs")
def probe(**_: Any) -> str:
    return "ok"
