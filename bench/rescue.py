"""What "rescued" means in the efficacy study: ending within 10% of the healthy
reference (the issue's goal). The report, the study and the admission of cases share it."""

from __future__ import annotations

TOLERANCE = 0.10  # rescued: final quality within 10% of the healthy reference's


def within(value: float | None, reference: float | None, better: str) -> bool:
    if value is None or reference is None:
        return False
    return (
        value >= (1 - TOLERANCE) * reference
        if better == "higher"
        else value <= (1 + TOLERANCE) * reference
    )
