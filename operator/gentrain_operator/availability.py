"""The MetricsAvailable condition: whether a job's trainer metrics are fresh, decided from
when the last good scrape was (pure; the monitor writes what it says)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .conditions import get as get_condition

CONDITION = "MetricsAvailable"


@dataclass(frozen=True)
class Availability:
    fresh: bool
    reason: str
    message: str
    # Seconds since the newest read of the trainer's metrics — or, for a trainer no
    # scrape ever reached, since the first failed one (None before any scrape).
    age: float | None


def availability(
    now: float,
    last_good: float | None,
    unread_since: float | None,
    stale_after: float,
    problem: str,
) -> Availability:
    """Fresh while the last good scrape is at most `stale_after` seconds old; else stale,
    with `problem` (the failed scrape's error) or how long none succeeded as its message."""
    fresh = last_good is not None and now - last_good <= stale_after
    newest = last_good if last_good is not None else unread_since
    if fresh:
        reason, message = "Scraped", "the trainer's metrics are fresh"
    else:
        reason, message = "Stale", problem or f"no successful scrape for {stale_after:.0f} s"
    return Availability(fresh, reason, message, None if newest is None else now - newest)


def already_says(conditions: Sequence[Mapping[str, Any]] | None, state: Availability) -> bool:
    """Whether the job's MetricsAvailable condition already holds this status and message
    (written when either changes: a pod that was not up yet, then answers with an
    exposition over the limit, must say the second)."""
    current = get_condition(conditions, CONDITION)
    return current is not None and (current.get("status"), current.get("message")) == (
        "True" if state.fresh else "False",
        state.message,
    )
