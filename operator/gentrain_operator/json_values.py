"""Values bound for the API server as JSON (pure)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("gentrain.json")


def json_safe(value: Any, path: str = "") -> Any:
    """`value` with any NaN or Infinity replaced by null. JSON has neither: the client
    would send `Infinity`, the API server refuses the body, and whatever wrote it would
    retry for ever. The snapshot boundary already takes them out; this is the last guard."""
    if isinstance(value, float) and not math.isfinite(value):
        log.warning("non-finite %s at %s written as null", value, path or "(root)")
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
