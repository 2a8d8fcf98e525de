"""The operator's settings, each read once from the environment (GENTRAIN_*)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GENTRAIN_{name}", default)


@dataclass(frozen=True)
class Settings:
    # The trainer image, and the command that starts it (the image's entrypoint).
    trainer_image: str = field(
        default_factory=lambda: _env("TRAINER_IMAGE", "ghcr.io/gentrain/trainer:0.1.0")
    )
    trainer_command: tuple[str, ...] = field(
        default_factory=lambda: tuple(_env("TRAINER_COMMAND", "python -m gentrain_trainer").split())
    )
    trainer_metrics_port: int = field(
        default_factory=lambda: int(_env("TRAINER_METRICS_PORT", "9090"))
    )
    # The user id the trainer runs as (the trainer image's non-root user).
    trainer_uid: int = field(default_factory=lambda: int(_env("TRAINER_UID", "65532")))
    # Only these namespaces (comma-separated) when set; every namespace otherwise.
    namespaces: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            n.strip() for n in _env("NAMESPACE", "").split(",") if n.strip()
        )
    )
    # Trainer pods started per job before it is Failed (crashes, lost nodes).
    backoff_limit: int = field(default_factory=lambda: int(_env("BACKOFF_LIMIT", "3")))
    scrape_timeout_seconds: float = field(
        default_factory=lambda: float(_env("SCRAPE_TIMEOUT_SECONDS", "5"))
    )
    # The largest exposition read from a trainer. Ours is ~20 KB; a pod that sends more is
    # refused (MetricsAvailable=False says so) rather than parsed on the operator's time.
    max_scrape_bytes: int = field(
        default_factory=lambda: int(_env("MAX_SCRAPE_BYTES", str(1 << 20)))
    )
    # Metrics older than this many scrape intervals are stale: no decision is made on them.
    stale_after_intervals: int = field(
        default_factory=lambda: int(_env("STALE_AFTER_INTERVALS", "4"))
    )
    # Seconds between checks of each job's pod (level-triggered reconciliation).
    pod_check_seconds: float = field(default_factory=lambda: float(_env("POD_CHECK_SECONDS", "5")))
    metrics_port: int = field(default_factory=lambda: int(_env("METRICS_PORT", "8080")))
    health_port: int = field(default_factory=lambda: int(_env("HEALTH_PORT", "8081")))
    # A NetworkPolicy per job that lets only the operator's pods (in this namespace) and
    # the peers below reach the trainer's metrics port. Off when the operator runs outside
    # the cluster (development): its scrapes would come from no pod at all.
    network_policy: bool = field(
        default_factory=lambda: _env("NETWORK_POLICY", "false").lower() == "true"
    )
    operator_namespace: str = field(default_factory=lambda: _env("OPERATOR_NAMESPACE", ""))
    # Who else may scrape trainers (NetworkPolicyPeer objects, as JSON): Prometheus.
    metrics_from: tuple[dict[str, Any], ...] = field(
        default_factory=lambda: tuple(json.loads(_env("METRICS_FROM", "[]")))
    )
    # A peering name makes several replicas elect one active operator (kopf peering).
    peering: str = field(default_factory=lambda: _env("PEERING", ""))
    # How long a pod of a job of several pods may be unable to reach rank 0's rendezvous
    # (not Ready, see builders.rendezvous_probe) before the operator stops the attempt and
    # names it. Shorter than torchrun's own wait (600 s), which names no pod.
    rendezvous_seconds: float = field(
        default_factory=lambda: float(_env("RENDEZVOUS_SECONDS", "300"))
    )
    # Remediation records kept in a job's status, and milestone summaries kept for diagnosis.
    status_history: int = field(default_factory=lambda: int(_env("STATUS_HISTORY", "20")))


SETTINGS = Settings()
