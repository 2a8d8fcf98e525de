"""How a milestone's decision reaches the API server: lost nowhere, applied once.

A remediation is two writes: the spec PATCH that changes the job, then the status write
that records the milestone and the remediation. The record rides in the first too (the
intent annotation, see milestones.intent), so when the second fails, or the operator
stops between them, the next handling records it instead of deciding again. Both writes
are conditional on the resourceVersion the decision was made on: a decision made on a
stale view of the job is never written (409: it is decided again on the job as it is).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from gentrain_contract.milestone import Milestone

from . import job_object, names
from .milestones import Outcome, intent_annotation, unrecorded_intent

log = logging.getLogger("gentrain.monitor")


async def write_decision(
    namespace: str,
    name: str,
    record: Milestone,
    outcome: Outcome,
    updates: Mapping[str, Any],
    version: str,
) -> bool:
    """Writes the `outcome` of milestone `record`, decided on the job at resourceVersion
    `version`, with the status `updates` that go with it; False when the job changed
    since (nothing lost: it is decided again)."""
    if outcome.spec is not None:
        patch = {
            "training": {"hyperparameters": outcome.spec["training"].get("hyperparameters", {})}
        }
        if "commands" in outcome.spec:
            patch["commands"] = outcome.spec["commands"]
        # The record rides along in the same write (replayed if its status is lost).
        annotations = (
            {names.INTENT_ANNOTATION: intent_annotation(record, outcome.record)}
            if outcome.record is not None
            else None
        )
        try:
            patched = await asyncio.to_thread(
                job_object.patch_job_spec, namespace, name, patch, version, annotations
            )
        except ApiException as error:
            if error.status != 409:
                raise
            # The job changed since it was read: decided again on the newer job, so
            # nothing is lost by dropping this decision.
            log.info(
                "%s/%s: job changed while remediating (409 Conflict); deciding again",
                namespace,
                name,
            )
            return False
        version = patched["metadata"]["resourceVersion"]
    try:
        await asyncio.to_thread(
            job_object.record_milestone, namespace, name, {**outcome.status, **updates}, version
        )
    except ApiException as error:
        if error.status != 409:
            raise
        # Another writer came between the read and this write. A remediation already
        # in the spec is not decided twice: its intent annotation makes it the decision.
        log.info(
            "%s/%s: job changed while recording milestone %d (409 Conflict); again",
            namespace,
            name,
            record["step"],
        )
        return False
    return True


async def record_lost_intent(namespace: str, name: str) -> dict[str, Any] | None:
    """Records the remediation applied just before the job ended whose record was lost,
    read from the job as the API server has it, only if it did not change since; returns
    that record once written (None: nothing to record, or looked at again next round)."""
    fresh = await asyncio.to_thread(job_object.read_job, namespace, name)
    lost = unrecorded_intent(fresh) if fresh is not None else None
    if fresh is None or lost is None:
        return None
    try:
        await asyncio.to_thread(
            job_object.record_milestone,
            namespace,
            name,
            lost,
            fresh["metadata"]["resourceVersion"],
        )
    except ApiException as error:
        if error.status != 409:
            raise  # on 409: looked at again on the next round
        return None
    applied: dict[str, Any] = lost["remediations"][-1]
    return applied
