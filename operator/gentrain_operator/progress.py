"""How far a job is and when it should end, for `kubectl get gtj` (pure). Printer columns
can only show a status field, so the operator writes both as text whenever it writes the
step (at a milestone, or once a minute)."""

from __future__ import annotations

import math
from typing import Any


def human_duration(seconds: float) -> str:
    """Like kubectl's ages: 45s, 12m, 3h5m, 2d3h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def progress(step: int, max_steps: int, step_seconds: float | None) -> dict[str, Any]:
    """status.progress ("45%") and status.eta (the time left at the current pace, or None
    when the pace is unknown). Evaluation at milestones is not in the pace: an estimate."""
    fields: dict[str, Any] = {"progress": f"{min(100, 100 * step // max(1, max_steps))}%"}
    if step_seconds is not None and math.isfinite(step_seconds) and step_seconds > 0:
        fields["eta"] = human_duration(max(0, max_steps - step) * step_seconds)
    else:
        fields["eta"] = None
    return fields
