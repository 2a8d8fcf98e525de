"""`python -m gentrain_operator`: runs the operator (all settings from GENTRAIN_* env)."""

from __future__ import annotations

import logging
import os
import secrets
import socket

import kopf
from prometheus_client import start_http_server

from . import handlers  # noqa: F401 - importing registers the handlers
from .settings import SETTINGS


def _not_a_routine_check(record: logging.LogRecord) -> bool:
    # kopf logs every timer run; the pod check runs every few seconds for every job, which
    # would bury the lines that matter. Its failures are still logged.
    return not record.getMessage().startswith("Timer 'check_pod' succeeded")


def ensure_peering_identity() -> str:
    """Who this replica is among its peers, in POD_ID where kopf reads it: the pod's name
    where the chart sets it, else the host name and a random suffix. Never the process's
    user name, kopf's default, which it asks passwd for: a uid with no passwd entry (the
    chart's 65532 in any image, an OpenShift-assigned uid) crashed the operator at start,
    before it served a probe."""
    if not os.environ.get("POD_ID", "").strip():
        os.environ["POD_ID"] = f"{socket.gethostname()}/{secrets.token_hex(3)}"
    return os.environ["POD_ID"]


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").addFilter(_not_a_routine_check)
    # The kubelet probes /healthz every few seconds: one access line each would bury the
    # operator's own lines (seen on the real node). Errors still reach the log.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    start_http_server(SETTINGS.metrics_port)
    ensure_peering_identity()
    kopf.run(
        clusterwide=not SETTINGS.namespaces,
        namespaces=list(SETTINGS.namespaces),
        standalone=not SETTINGS.peering,
        liveness_endpoint=f"http://0.0.0.0:{SETTINGS.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
