"""Status conditions per Kubernetes API conventions, and their times (pure)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def since(timestamp: str | None) -> float:
    """Seconds since an RFC 3339 time (infinite for none)."""
    if not timestamp:
        return math.inf
    return time.time() - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    kind: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The list with `kind` set; lastTransitionTime moves only when the status changes."""
    text = "True" if status else "False"
    result, found = [], False
    for condition in conditions or []:
        if condition.get("type") != kind:
            result.append(dict(condition))
            continue
        found = True
        changed = condition.get("status") != text
        result.append(
            {
                "type": kind,
                "status": text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now()
                if changed
                else condition.get("lastTransitionTime", now()),
                "observedGeneration": generation,
            }
        )
    if not found:
        result.append(
            {
                "type": kind,
                "status": text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now(),
                "observedGeneration": generation,
            }
        )
    return result


def get(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def changed(
    before: Sequence[Mapping[str, Any]] | None, after: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The entries of `after` that differ from `before`'s entry of the same type: what a
    writer set, and so all it may write. Writing the whole list it read would put back
    another writer's older entries (the lifecycle's Ready, the monitor's Healthy)."""
    return [dict(c) for c in after if dict(get(before, str(c.get("type"))) or {}) != dict(c)]


def replaced(
    conditions: Sequence[Mapping[str, Any]] | None, entries: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`conditions` with each of `entries` in place of the entry of its type (appended when
    there is none): the other entries as they are."""
    by_type = {str(entry["type"]): dict(entry) for entry in entries}
    result = [by_type.pop(str(c.get("type")), dict(c)) for c in conditions or []]
    return result + list(by_type.values())
