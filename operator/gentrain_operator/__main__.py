"""`python -m gentrain_operator`: runs the operator (all settings from GENTRAIN_* env)."""

from __future__ import annotations

import logging

import kopf
from prometheus_client import start_http_server

from . import handlers  # noqa: F401 - importing registers the handlers
from .settings import SETTINGS


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    start_http_server(SETTINGS.metrics_port)
    kopf.run(
        clusterwide=not SETTINGS.namespace,
        namespaces=[SETTINGS.namespace] if SETTINGS.namespace else [],
        standalone=not SETTINGS.peering,
        liveness_endpoint=f"http://0.0.0.0:{SETTINGS.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
