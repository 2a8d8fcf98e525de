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
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from collections.abc import Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import kube

log = logging.getLogger(__name__)
GROUP, VERSION = "kopf.dev", "v1"
# How long a replica's entry counts without a keep-alive (kopf's default: 60 s); kopf
# renews it 5-10 s before it lapses, so a peer whose event was lost is seen within this.
LIFETIME_SECONDS = 20
SETTLE_SECONDS = 5.0  # between writing our entry and kopf's first list of the object


def entry(priority: int, now: datetime.datetime) -> dict[str, Any]:
    """Our entry, as kopf writes it (kopf._core.engines.peering.Peer.as_dict)."""
    return {"priority": priority, "lifetime": LIFETIME_SECONDS, "lastseen": now.isoformat()}


def announce(name: str, identity: str, priority: int, namespaces: Sequence[str]) -> list[str]:
    """Writes our entry into the peering object `name`: the cluster's, or each named
    namespace's. Returns where it was written (a missing object is kopf's to report)."""
    body = {"status": {identity: entry(priority, datetime.datetime.now(datetime.UTC))}}
    custom = kube.custom()
    written = []
    for namespace in namespaces or [""]:
        try:
            if namespace:
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, "kopfpeerings", name, body
                )
            else:
                custom.patch_cluster_custom_object(
                    GROUP, VERSION, "clusterkopfpeerings", name, body
                )
            written.append(namespace or "(cluster)")
        except ApiException as error:
            log.warning(
                "peering: could not announce in %s: %s", namespace or "the cluster", error.reason
            )
    return written


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
