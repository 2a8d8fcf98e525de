"""What one finished closed-loop run says, for a row of the efficacy study: its final
quality, when it recovered, its actions as the rows write them, and the compute and
figures it spent (pure: reads a bench.closed_loop.LoopResult)."""

from __future__ import annotations

import statistics
from itertools import pairwise
from typing import Any

from bench.closed_loop import LoopResult


def final(result: LoopResult, metric: str, over_last: int = 1) -> float | None:
    """The run's final quality: its last milestone's, or the median of its last
    `over_last` (a case sets this where quality swings from milestone to milestone even
    in healthy runs, as a GAN's modes do)."""
    values = [float(m[metric]) for m in result.milestones if metric in m]
    return statistics.median(values[-over_last:]) if values else None


def recovered_at(result: LoopResult) -> int | None:
    """The first milestone after the first action from which no serious finding showed
    again: when the run was healthy for good (None if it never was)."""
    if not result.remediations:
        return None
    first = result.remediations[0]["step"]
    steps = [m["step"] for m in result.milestones]
    healthy_from = None
    for step, findings in zip(steps, result.findings, strict=True):
        if step <= first:
            continue
        if findings:
            healthy_from = None
        elif healthy_from is None:
            healthy_from = step
    return healthy_from


def describe(record: dict[str, Any]) -> str:
    actions = [
        f"{a}(x{record['search']['factor']:g})"
        if a in ("search_learning_rate", "probe_learning_rate") and "search" in record
        else a
        for a in record["actions"]
    ]
    return f"{record['finding']}:{'+'.join(actions)}@{record['step']}"


def changed_something(record: dict[str, Any]) -> bool:
    """Whether a remediation record acted: a rate check whose probe kept the rate changed
    nothing (its compute is counted as search steps)."""
    if record["finding"] != "LearningRateCheck":
        return True
    return float((record.get("search") or {}).get("factor", 1.0)) != 1.0


def discarded_steps(result: LoopResult, interval: int) -> int:
    """Compute thrown away: the steps trained before the last fresh start, and every
    rollback's, from its target to the milestone where the trainer took it up (the first
    milestone after one is its target's next: a step count that goes back)."""
    fresh = max((int(m.get("origin_step", 0)) for m in result.milestones), default=0)
    steps = [int(m["step"]) for m in result.milestones]
    rolled_back = sum(
        before - (after - interval) for before, after in pairwise(steps) if after <= before
    )
    return fresh + rolled_back


def search_steps(result: LoopResult) -> int:
    """Steps trained outside the run's own: learning-rate searches and probes."""
    return sum(int((r.get("search") or {}).get("stepsTrained", 0)) for r in result.remediations)


def probes(result: LoopResult) -> list[dict[str, Any]]:
    """Every rate check's held-out loss per candidate factor, for fitting its margin."""
    return [
        {"step": r["step"], "losses": r["search"]["losses"], "factor": r["search"]["factor"]}
        for r in result.remediations
        if "probe_learning_rate" in r["actions"] and "search" in r
    ]


def most_spikes(result: LoopResult) -> int:
    """The most loss spikes one window of the run had (any component): what the
    LossSpike rule's burst threshold is fitted against on healthy runs."""
    return max(
        (int(n) for m in result.milestones for n in (m.get("spikes") or {}).values()), default=0
    )


def first_growth(result: LoopResult) -> float | None:
    """The run's weight growth in its first 100 steps at the full rate (the largest over
    its components), as first exported: what the WeightGrowth threshold is fitted on."""
    for m in result.milestones:
        growth = m.get("weight_growth") or {}
        if growth:
            return round(max(growth.values()), 4)
    return None
