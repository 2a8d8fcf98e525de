"""`python -m gentrain_operator`: runs the operator (all settings from GENTRAIN_* env)."""

from __future__ import annotations

import logging

import kopf
from prometheus_client import start_http_server

from . import handlers  # noqa: F401 - importing registers the handlers
from .settings import SETTINGS


def _not_a_routine_check(record: logging.LogRecord) -> bool:
    # kopf logs every timer run; the pod check runs every few seconds for every job, which
    # would bury the lines that matter. Its failures are still logged.
    return not record.getMessage().startswith("Timer 'check_pod' succeeded")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").addFilter(_not_a_routine_check)
    start_http_server(SETTINGS.metrics_port)
    kopf.run(
        clusterwide=not SETTINGS.namespaces,
        namespaces=list(SETTINGS.namespaces),
        standalone=not SETTINGS.peering,
        liveness_endpoint=f"http://0.0.0.0:{SETTINGS.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
