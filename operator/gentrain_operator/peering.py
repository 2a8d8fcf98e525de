"""This replica's entry in kopf's peering object, written before kopf starts watching.

kopf elects the acting replica from the entries in the peering object, as its watch
delivers them. Two replicas that started together on a real node (a fresh release: the
peering CRD a few seconds old, its watch cache still initialising) each saw only itself
and both acted for 50 s, until their next keep-alive: both monitored and decided on the
same job. So each replica writes its entry first, then waits a few seconds before kopf
lists the object: every replica started in the same moment is in that first list, and
all but the highest priority pause before touching any job. A replica started later finds
the earlier ones in its own first list; for an earlier one to see it, kopf's watch (or
the next keep-alive, every LIFETIME_SECONDS at most) has to deliver it.

The chart creates the peering object in the same release as the Deployment, and Helm
creates custom resources last: a replica can start before its peering object exists
(seen in CI: both replicas' first write was refused Not Found a second before the object
appeared, and both acted). So a missing object is waited for, up to OBJECT_WAIT_SECONDS.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import kube

log = logging.getLogger(__name__)
GROUP, VERSION = "kopf.dev", "v1"
# How long a replica's entry counts without a keep-alive (kopf's default: 60 s); kopf
# renews it 5-10 s before it lapses, so a peer whose event was lost is seen within this.
LIFETIME_SECONDS = 20
SETTLE_SECONDS = 5.0  # between writing our entry and kopf's first list of the object
# How long a replica waits for its release to create the peering object (Helm creates it
# just after the Deployment); past this, kopf reports the object missing in its own words.
OBJECT_WAIT_SECONDS = 60.0
RETRY_SECONDS = 0.5


def entry(priority: int, now: datetime.datetime) -> dict[str, Any]:
    """Our entry, as kopf writes it (kopf._core.engines.peering.Peer.as_dict)."""
    return {"priority": priority, "lifetime": LIFETIME_SECONDS, "lastseen": now.isoformat()}


def announce(
    name: str,
    identity: str,
    priority: int,
    namespaces: Sequence[str],
    wait_seconds: float = OBJECT_WAIT_SECONDS,
) -> list[str]:
    """Writes our entry into the peering object `name`: the cluster's, or each named
    namespace's, waiting up to `wait_seconds` for an object not created yet. Returns where
    it was written (an object still missing is kopf's to report)."""
    body = {"status": {identity: entry(priority, datetime.datetime.now(datetime.UTC))}}
    custom = kube.custom()
    deadline = time.monotonic() + wait_seconds
    written = []
    for namespace in namespaces or [""]:
        patch = (
            functools.partial(
                custom.patch_namespaced_custom_object,
                GROUP, VERSION, namespace, "kopfpeerings", name, body,
            )
            if namespace
            else functools.partial(
                custom.patch_cluster_custom_object,
                GROUP, VERSION, "clusterkopfpeerings", name, body,
            )
        )  # fmt: skip
        where = namespace or "the cluster"
        if write_when_present(patch, deadline, where):
            written.append(namespace or "(cluster)")
    return written


def write_when_present(patch: Callable[[], object], deadline: float, where: str) -> bool:
    """Runs `patch`, retrying while the object is Not Found and the deadline allows."""
    waited = False
    while True:
        try:
            patch()
            return True
        except ApiException as error:
            if error.status != 404 or time.monotonic() >= deadline:
                log.warning("peering: could not announce in %s: %s", where, error.reason)
                return False
            if not waited:
                log.info("peering: waiting for the peering object in %s to be created", where)
                waited = True
            time.sleep(RETRY_SECONDS)


async def announce_and_settle(name: str, priority: int, namespaces: Sequence[str]) -> None:
    identity = os.environ.get("POD_ID")
    if not identity:  # kopf names a replica outside a pod at random: nothing to write
        return
    literal = [n for n in namespaces if not any(mark in n for mark in "*?[!")]
    if namespaces and not literal:
        return
    written = await asyncio.to_thread(announce, name, identity, priority, literal)
    if written:
        log.info(
            "peering: announced %s in %s; watching in %.0f s",
            identity,
            ", ".join(written),
            SETTLE_SECONDS,
        )
        await asyncio.sleep(SETTLE_SECONDS)
