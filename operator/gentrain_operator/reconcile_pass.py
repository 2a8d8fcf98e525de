"""One pass of a job's reconcile: the job as read at its start, the status changes and
events it makes, and the two things every step of it may end in — starting the next
attempt, or failing the job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import launching, queueing
from .conditions import get as get_condition
from .conditions import set_condition
from .launching import PodReader
from .settings import Settings


@dataclass
class Pass:
    job: Mapping[str, Any]
    settings: Settings
    events: list[tuple[str, str, str]]
    changes: dict[str, Any]
    read_pod: PodReader
    starter: launching.Launcher
    attempts: int
    failures: int
    # Running on CPU for want of GPUs (the GPUFallback condition), or decided so this pass.
    fallback: bool

    @property
    def status(self) -> Mapping[str, Any]:
        return self.job.get("status") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        spec: Mapping[str, Any] = self.job["spec"]
        return spec

    @property
    def namespace(self) -> str:
        return str(self.job["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.job["metadata"]["name"])

    @property
    def generation(self) -> int:
        return int(self.job["metadata"].get("generation", 1))

    @property
    def conditions(self) -> Sequence[Mapping[str, Any]] | None:
        """The conditions as read: each change below is made to these, not to another's."""
        return self.status.get("conditions")

    @property
    def ready(self) -> Mapping[str, Any]:
        return get_condition(self.conditions, "Ready") or {}

    @property
    def resources(self) -> Mapping[str, Any]:
        return self.spec.get("resources") or {}

    @property
    def wants_gpus(self) -> bool:
        return int(self.resources.get("gpus", 0)) > 0

    @property
    def queued(self) -> bool:
        return queueing.queue_name(self.job) is not None

    @property
    def backoff_limit(self) -> int:
        return int(self.spec.get("backoffLimit", self.settings.backoff_limit))

    @property
    def with_gpus(self) -> bool:
        """Whether this attempt's pods ask for GPUs: wanted, and not fallen back to CPU."""
        return self.wants_gpus and not self.fallback

    def launch(self, reason: str) -> None:
        self.attempts = self.starter.start(reason, self.attempts, with_gpus=self.with_gpus)

    def not_ready(self, reason: str, message: str) -> None:
        self.changes["conditions"] = set_condition(
            self.conditions, "Ready", False, reason, message, self.generation
        )

    def fail(self, reason: str, message: str) -> None:
        self.changes.update({"phase": "Failed", "message": message})
        self.not_ready(reason, message)
