"""Reads and writes of the GenerativeTrainingJob object itself: its status (fields,
conditions one by one, a milestone's record in one write) and the remediator's spec
patches. Blocking, as kube.py: call from sync handlers or `asyncio.to_thread`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client.rest import ApiException

from . import names
from .batch import BATCH_CONDITIONS
from .conditions import changed, replaced
from .json_values import json_safe
from .kube import custom


def read_job(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        job: dict[str, Any] = custom().get_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return job


def _patch_status_subresource(namespace: str, name: str, body: Any, **options: Any) -> None:
    custom().patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, body, **options
    )


def patch_job_status(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    _patch_status_subresource(
        namespace, name, {"status": json_safe(status, "status")}, field_manager=names.FIELD_MANAGER
    )


def apply_conditions(namespace: str, name: str, entries: Sequence[Mapping[str, Any]]) -> None:
    """Writes each condition by server-side apply, under a field manager of its own type
    (`conditions` is a list map keyed by type): the entry is replaced, every other
    condition stays as its writer left it. The lifecycle handler and the monitor read the
    job at different moments; a merge patch of the whole list from either one undid the
    other's latest condition."""
    for entry in entries:
        kind = str(entry["type"])
        body = {
            "apiVersion": f"{names.GROUP}/{names.VERSION}",
            "kind": names.KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": {"conditions": [{k: v for k, v in entry.items() if v is not None}]},
        }
        _patch_status_subresource(
            namespace,
            name,
            json_safe(body, "status"),
            field_manager=f"{names.FIELD_MANAGER}-{kind.lower()}"[:128],
            force=True,
            _content_type="application/apply-patch+yaml",
        )


def apply_changed_conditions(
    namespace: str,
    name: str,
    read: Sequence[Mapping[str, Any]] | None,
    conditions: Sequence[Mapping[str, Any]],
) -> None:
    """Applies the entries of `conditions` that differ from `read` (the list the writer
    saw): what it set, and so all it may write (see apply_conditions)."""
    apply_conditions(namespace, name, changed(read, conditions))


def write_job_status(
    namespace: str,
    name: str,
    updates: Mapping[str, Any],
    read: Mapping[str, Any] | None,
) -> None:
    """A status update computed from `read` (the status the writer saw): the conditions
    that describe the state (Ready: why it failed) applied one by one, then the other
    fields (the phase) with the batch conditions that say the same in one write. A reader
    that waits for phase Failed and reads the Failed condition, or waits for the condition
    and reads the phase, finds both (with the phase and the batch condition in two writes,
    phase Failed was seen without its condition: CI's run of 693be40)."""
    rest = {k: v for k, v in updates.items() if k != "conditions"}
    conditions = updates.get("conditions")
    read_conditions = (read or {}).get("conditions")
    batch: list[dict[str, Any]] = []
    if conditions is not None:
        describing = [c for c in conditions if c.get("type") not in BATCH_CONDITIONS]
        apply_changed_conditions(namespace, name, read_conditions, describing)
        batch = changed(
            read_conditions, [c for c in conditions if c.get("type") in BATCH_CONDITIONS]
        )
    if batch:
        _patch_fields_and_conditions(namespace, name, rest, batch)
    elif rest:
        patch_job_status(namespace, name, rest)


def _patch_fields_and_conditions(
    namespace: str,
    name: str,
    fields: Mapping[str, Any],
    entries: Sequence[Mapping[str, Any]],
    tries: int = 5,
) -> None:
    """`fields` and the condition `entries` in one merge patch of the list as the API
    server has it now, refused (409) if the job changed since it was read: a merge patch
    replaces the whole list, so it may only carry other writers' latest entries. Read
    again and retried on a conflict (the monitor writes between)."""
    for _ in range(tries):
        job = read_job(namespace, name)
        if job is None:
            return  # deleted: nothing to say
        current = (job.get("status") or {}).get("conditions")
        body = {
            "metadata": {"resourceVersion": job["metadata"]["resourceVersion"]},
            "status": json_safe({**fields, "conditions": replaced(current, entries)}, "status"),
        }
        try:
            _patch_status_subresource(namespace, name, body, field_manager=names.FIELD_MANAGER)
            return
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(
        f"{namespace}/{name}: status not written, the job changed under each of {tries} tries"
    )


def record_milestone(
    namespace: str, name: str, status: Mapping[str, Any], resource_version: str
) -> None:
    """A milestone's status fields, conditions included, in one merge patch refused (409)
    if the job changed since `resource_version`: they were decided on the job as it was
    then, and a write over a newer status would drop what it holds (an earlier milestone,
    another writer's condition). One write, so a reader never sees half a milestone."""
    body = {
        "metadata": {"resourceVersion": resource_version},
        "status": json_safe(status, "status"),
    }
    _patch_status_subresource(namespace, name, body, field_manager=names.FIELD_MANAGER)


def patch_job_spec(
    namespace: str,
    name: str,
    spec_patch: Mapping[str, Any],
    resource_version: str,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A merge patch of the spec (and annotations, in the same write) by the remediator,
    refused if the job changed meanwhile."""
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if annotations:
        metadata["annotations"] = dict(annotations)
    body = {"metadata": metadata, "spec": json_safe(spec_patch, "spec")}
    result: dict[str, Any] = custom().patch_namespaced_custom_object(
        names.GROUP,
        names.VERSION,
        namespace,
        names.PLURAL,
        name,
        body,
        field_manager=names.REMEDIATOR,
    )
    return result
