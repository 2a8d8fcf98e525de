"""A queued job's Workload through Kueue's API (thin I/O around `queueing`'s decisions;
blocking, as `kube`). Each call reads the Workload afresh: Kueue writes it too."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import kube, names, queueing
from .queueing import GROUP, PLURAL, VERSION, Admission, Placement

log = logging.getLogger("gentrain.kueue")
# On the Workload: the operator deactivated it for spec.suspend, and activates it again on
# resume. A Workload someone else deactivated (Kueue's way to stop a job) stays so.
SUSPENDED_ANNOTATION = "gentrain.io/deactivated-for-suspend"


def _name(job: Mapping[str, Any]) -> tuple[str, str]:
    meta = job["metadata"]
    return meta["namespace"], names.workload_name(meta["name"], meta["uid"])


def read(job: Mapping[str, Any]) -> dict[str, Any] | None:
    namespace, name = _name(job)
    return kube.read_custom(GROUP, VERSION, PLURAL, namespace, name)


def _create(namespace: str, body: Mapping[str, Any]) -> None:
    """Makes the Workload (made already: fine, the name is the job's). Raises
    `kube.RejectedError` when the API server refuses it (no Kueue installed: 404)."""
    try:
        kube.custom().create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, field_manager=names.FIELD_MANAGER
        )
    except ApiException as error:
        if error.status == 409:
            return
        if error.status == 404:
            raise kube.RejectedError(
                f"the job is labelled {names.QUEUE_LABEL}, but this cluster serves no "
                f"Kueue Workloads ({GROUP}/{VERSION}): install Kueue, or remove the label"
            ) from error
        if error.status in (400, 403, 422):
            raise kube.RejectedError(kube.server_message(error)) from error
        raise


def _patch(workload: Mapping[str, Any], body: dict[str, Any], status: bool) -> None:
    """A merge patch with the resourceVersion read (of the status subresource, or the
    object): a Workload Kueue changed meanwhile is refused (409), and decided on again at
    the next check."""
    meta = workload["metadata"]
    body = {
        **body,
        "metadata": {**body.get("metadata", {}), "resourceVersion": meta["resourceVersion"]},
    }
    patch = (
        kube.custom().patch_namespaced_custom_object_status
        if status
        else kube.custom().patch_namespaced_custom_object
    )
    try:
        patch(
            GROUP,
            VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            body,
            field_manager=names.FIELD_MANAGER,
        )
    except ApiException as error:
        if error.status != 409:
            raise
        log.info("%s/%s changed meanwhile: decided again", meta["namespace"], meta["name"])


def _delete(workload: Mapping[str, Any]) -> bool:
    """Deletes the Workload as read (a Workload Kueue changed meanwhile is kept: 409);
    whether it is gone."""
    meta = workload["metadata"]
    try:
        kube.custom().delete_namespaced_custom_object(
            GROUP,
            VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            body={
                "preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
            },
        )
    except ApiException as error:
        if error.status == 409:
            return False
        if error.status != 404:
            raise
    return True


def _write_status(workload: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    _patch(workload, {"status": dict(status)}, status=True)


def _set_active(workload: Mapping[str, Any], active: bool) -> None:
    annotations = {SUSPENDED_ANNOTATION: None if active else "true"}
    _patch(workload, {"metadata": {"annotations": annotations}, "spec": {"active": active}}, False)


def _flavor(name: str) -> dict[str, Any]:
    try:
        found = kube.custom().get_cluster_custom_object(GROUP, VERSION, "resourceflavors", name)
    except ApiException as error:
        if error.status == 404:
            return {}
        if error.status == 403:  # a namespace-scoped install: flavours are cluster-scoped
            raise kube.RejectedError(
                f"the operator may not read ResourceFlavor {name}, whose node labels and "
                "tolerations place the trainer: grant it get on resourceflavors.kueue.x-k8s.io "
                "(a ClusterRole; the chart's cluster scope has it)"
            ) from error
        raise
    return dict(found.get("spec") or {})


def admit(job: Mapping[str, Any], pod: Mapping[str, Any]) -> Placement | str:
    """Where the trainer runs once Kueue admitted the job, or why it waits. Makes the
    Workload the first time; gives back the reservation of one evicted meanwhile (its
    trainer has stopped: this is called only to start one); activates again one the
    operator deactivated for spec.suspend."""
    namespace, name = _name(job)
    queue = queueing.queue_name(job)
    found = read(job)
    if found is None:
        _create(namespace, queueing.workload(job, pod))
        return f"queued: waiting for Kueue to admit Workload {name} (LocalQueue {queue})"
    annotations = found["metadata"].get("annotations") or {}
    if (found.get("spec") or {}).get("active") is False and annotations.get(SUSPENDED_ANNOTATION):
        _set_active(found, True)
        return f"queued again after spec.suspend: Workload {name} (LocalQueue {queue})"
    state = queueing.state(found)
    wanted = queueing.workload(job, pod)
    if state in (Admission.WAITING, Admission.ADMITTED) and queueing.outdated(found, wanted):
        # As Kueue does for its own jobs: a Workload is made anew when the job asks for
        # something else (the next check makes it). Admitted too: this is called only to
        # start a trainer, and one started with what the job asks now under the admission
        # of what it asked before would hold other resources than Kueue counts.
        _delete(found)
        return f"queued: the job's queue or resources changed: Workload {name} is made anew"
    if state is Admission.ADMITTED:
        flavors = {flavor: _flavor(flavor) for flavor in queueing.assigned_flavors(found)}
        return queueing.placement(found, flavors)
    if state is Admission.EVICTED:
        _write_status(found, queueing.unreserved_status(found))
        reason, message = queueing.eviction(found)
        return f"evicted by Kueue ({reason}: {message}); queued again in LocalQueue {queue}"
    if state is Admission.FINISHED:
        return (
            f"its Workload {name} is Finished while the job is not: delete the Workload "
            "(kubectl delete workload) to queue the job again"
        )
    return (
        f"queued: waiting for Kueue to admit Workload {name} (LocalQueue {queue}): "
        f"{queueing.waiting_reason(found)}"
    )


def release(job: Mapping[str, Any]) -> bool:
    """A job no longer queued (its queue label removed): its Workload deleted, so that
    Kueue frees what it reserved at once, or never admits it. Whether it is gone (a
    Workload Kueue changed meanwhile is deleted at the next check)."""
    found = read(job)
    return found is None or _delete(found)


def evicted(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when Kueue evicted the running job (its trainer must stop)."""
    found = read(job)
    if found is None or queueing.state(found) is not Admission.EVICTED:
        return None
    return queueing.eviction(found)


def finish(job: Mapping[str, Any], succeeded: bool, message: str) -> None:
    """Marks the Workload Finished: Kueue releases its quota for the next in the queue."""
    found = read(job)
    if found is not None and queueing.state(found) is not Admission.FINISHED:
        _write_status(found, queueing.finished_status(found, succeeded, message))


def suspend(job: Mapping[str, Any], trainer_stopped: bool) -> None:
    """spec.suspend on a queued job: its Workload deactivated (Kueue evicts it), and its
    reservation given back once the trainer has stopped, so the quota serves others."""
    found = read(job)
    if found is None:
        return
    if (found.get("spec") or {}).get("active", True):
        _set_active(found, False)
    elif trainer_stopped and queueing.state(found) is Admission.EVICTED:
        _write_status(found, queueing.unreserved_status(found))
