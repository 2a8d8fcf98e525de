"""Waiting for a condition with a failure message that says what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    pass


def wait_for(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    timeout: float = 60.0,
    interval: float = 0.5,
) -> T:
    """Polls `observe()` until `done(value)`; on timeout, fails showing the last value."""
    deadline = time.monotonic() + timeout
    last: object = "(nothing observed)"
    while True:
        try:
            value = observe()
            last = value
            if done(value):
                return value
        except Exception as error:  # an API error while waiting is a state worth showing
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}"
            )
        time.sleep(interval)
