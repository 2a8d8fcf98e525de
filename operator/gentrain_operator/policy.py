"""Policy: findings + history + spec -> at most one remediation per milestone (pure).

Each finding has a ladder of rungs; a rung is one or more primitive actions applied
together. The first action for a finding takes rung 0; when a later milestone still
shows the finding (outcome `persisting`), the next action climbs one rung. Guards: one
action in flight at a time (it is judged before anything else is tried), a cooldown in
milestones, a cap on actions, a learning-rate floor, and no change that sets a field back
to a value an earlier action moved it away from. A ladder run out (or the cap reached)
is `exhausted`: the operator reports Healthy=False, RemediationExhausted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gentrain_contract.milestone import Milestone
from gentrain_contract.vocabulary import Action, FindingKind, Severity

from . import weight_growth
from .actions import (
    RATE_CHECK_FAMILIES,
    RATE_CHECK_UNTIL,
    Change,
    apply_changes,
    hp,
    plan_actions,
    tilted_towards_discriminator,
)
from .diagnosis import Finding
from .ladders import LADDERS, PRIORITY, Ladder, ladder, ordered

__all__ = ["LADDERS", "PRIORITY", "Ladder", "apply_to_spec", "decide", "ladder"]

# The rate check: a probe from the run's weights (the trainer's `probe_learning_rate`:
# the rates in force and ten times them — a hundred times where ten times wins — each
# trained a few steps and judged on held-out data; a rate is adopted only if it wins
# clearly). A run whose rate is far too low learns, slowly, and shows in no loss rule, so
# every run of a family with a held-out objective is checked once a fifth of it is done
# (past its warm-up), and once more if the first check moved the rate. A run whose weights
# barely moved in their first updates (weight_growth.barely_moved) is checked at the first
# milestone that shows it: every step before the check is a step at a rate far too low
# (the evaluation zoo's DDPM at 1/100, moved x100 at a fifth of its run, ends at FID 52-55
# against 38.7-39.3; moved at its first milestone, 46-48). Checking every run that early
# does not pay: on healthy runs a short probe then comes close to choosing x10 (session
# 29). Measured on the
# calibration zoo: it finds rates far too low (a VAE at 1/50 of its rate and a DDPM at
# 1/30 rescued: FID 249 left alone, 34.0 with x100, 32.2 healthy). It does not look
# down: a short probe favours a lower rate on healthy runs too (the trainer's
# PROBE_FACTORS); a rate too high that still learns shows as AttentionCollapse on a
# transformer.
RATE_CHECK_FROM = 0.2  # of the run done
RATE_CHECKS = 2
RATE_CHECK = FindingKind.LEARNING_RATE_CHECK  # what a scheduled rate check is recorded under


@dataclass
class Plan:
    finding: Finding
    rung: int
    actions: list[str]
    changes: list[Change] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Decision:
    plan: Plan | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # record id -> resolved | persisting
    exhausted: str | None = None  # why no action is left
    waiting: str | None = None  # why nothing was done now


# A change that set the weights the next window trains from (a fresh start, a rollback),
# in force for at least this share of the window that ends at the milestone showing it,
# is judged on that window: the built-in trainer takes a change up as soon as its file
# changes, so the window is the change's own; only a late arrival (a slow ConfigMap sync)
# leaves it too few steps to judge by. A change made in place is not: the weights carry
# the old setting into that window (a discriminator trained five steps to one still wins
# through it; judged there, the ring GAN's ladder climbed a rung every window and ended
# worse than left alone: docs/diagnosis-calibration.md, session 27).
JUDGED_ON_ITS_FIRST_WINDOW = 0.9
RESTARTS_THE_WEIGHTS = frozenset(
    {Action.REINITIALIZE, Action.ROLLBACK, Action.ROLLBACK_SKIP_BATCHES}
)


def judge(
    records: Sequence[Mapping[str, Any]],
    findings: Sequence[Finding],
    milestone: Milestone,
    interval: int | None = None,
) -> dict[str, str]:
    """Outcomes of pending actions whose effect this milestone shows.

    The operator reads a trainer's configuration generation with its milestones, so a
    change shows first at the milestone after it was made (`appliedAtStep`). Where the
    trainer says from which step it applied (`appliedFromStep`: the built-in trainer takes
    a change up between milestones), the change set the weights the window trained from,
    and it covers nearly the whole window (see JUDGED_ON_ITS_FIRST_WINDOW; `interval`: the
    steps between milestones), it is judged there; otherwise (a change made in place, or a
    program on the SDK, which takes changes up at its milestones) on the window after, the
    first one wholly under it.
    """
    present = {f.kind for f in findings}
    outcomes = {}
    for record in records:
        if record.get("outcome") != "pending":
            continue
        applied_at = record.get("appliedAtStep")
        if applied_at is None or milestone["step"] < applied_at:
            continue
        if milestone["step"] == applied_at and not (
            _kept_rate(record) or _in_force_for_the_window(record, interval)
        ):
            continue
        outcomes[record["id"]] = "persisting" if record["finding"] in present else "resolved"
    return outcomes


def _in_force_for_the_window(record: Mapping[str, Any], interval: int | None) -> bool:
    applied_from = record.get("appliedFromStep")
    if applied_from is None or not interval:
        return False
    if not RESTARTS_THE_WEIGHTS & set(record.get("actions", [])):
        return False
    return int(record["appliedAtStep"]) - int(applied_from) >= JUDGED_ON_ITS_FIRST_WINDOW * interval


def decide(
    findings: Sequence[Finding],
    records: Sequence[Mapping[str, Any]],
    spec: Mapping[str, Any],
    milestone: Milestone,
    family_defaults: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Decision:
    """What to do at this milestone. `records`: earlier remediations, oldest first."""
    remediation = spec.get("remediation") or {}
    interval = int(context.get("interval", 0)) or None
    decision = Decision(outcomes=judge(records, findings, milestone, interval))
    resolved = {**{r["id"]: r.get("outcome") for r in records}, **decision.outcomes}
    if remediation.get("mode", "auto") == "off":
        decision.waiting = "remediation is off"
        return decision
    if float(context.get("remaining_fraction", 1.0)) <= 0.0:
        # The trainer has finished: a change would never take effect, and with no later
        # milestone its record could not be replayed if the status write after it failed.
        decision.waiting = "the run has reached its last step"
        return decision
    # A rate check that has run is routine, not a remedy whose effect needs judging: it
    # does not hold back a confirmed loss spike, whose cause — a bad stretch of data — is
    # past by the next window (PaLM's case on prose waited and never rolled back). Other
    # findings persist and can wait a window, as for any pending action.
    spiking = any(
        f.kind == FindingKind.LOSS_SPIKE and f.severity != Severity.INFO for f in findings
    )
    pending = [
        r
        for r in records
        if resolved.get(r["id"]) == "pending" and not (spiking and _rate_check_run(r))
    ]
    if pending:
        decision.waiting = f"waiting for the outcome of {pending[-1]['id']}"
        return decision
    cooldown = int(remediation.get("cooldownMilestones", 1))
    if (
        records
        and cooldown
        and milestone["step"] - int(records[-1]["step"]) < cooldown * (interval or 1)
    ):
        decision.waiting = f"cooling down after {records[-1]['id']}"
        return decision
    actionable = ordered(
        [f for f in findings if f.severity != "info"],
        tilted_towards_discriminator(spec, family_defaults),
    )
    if not actionable:
        decision.plan = _rate_check(records, spec, milestone, family_defaults, context)
        return decision
    if len(records) >= int(remediation.get("maxActions", 8)):
        decision.exhausted = f"the cap of {remediation.get('maxActions', 8)} actions is reached"
        return decision
    forbidden = {(c["field"], c["from"]) for r in records for c in r.get("changes", [])}
    supported = _supported(milestone)
    ceiling = weight_growth.search_ceiling(findings)
    if ceiling is not None:  # whichever finding's fresh start searches (NotLearning's too)
        context = {**context, "search_ceiling": ceiling}
    if any(Action.CUT_LR in r.get("actions", []) for r in records):
        context = {**context, "rates_cut_before": True}  # see cut_lr in actions.py
    for finding in actionable:
        steps = ladder(finding, spec)
        if steps is None:
            continue
        tried = [r for r in records if r["finding"] == finding.kind]
        start = max((int(r.get("rung", -1)) for r in tried), default=-1) + 1
        fitting = [r for r in range(start, len(steps)) if set(steps[r]) <= supported]
        if start < len(steps) and not fitting:
            decision.exhausted = (
                f"no action for {finding.kind} is one the training program supports "
                f"({', '.join(sorted(supported)) or 'none'})"
            )
            continue
        for rung in fitting:
            planned = plan_actions(steps[rung], spec, family_defaults, context, forbidden)
            if planned is not None:
                changes, commands = planned
                decision.plan = Plan(finding, rung, steps[rung], changes, commands)
                return decision
        decision.exhausted = (
            f"every action for {finding.kind} has been tried or is not possible"
            if start
            else f"no action for {finding.kind} is possible for this job's spec: it is reported"
        )
    return decision


def _kept_rate(record: Mapping[str, Any]) -> bool:
    """A probe that kept the rate in force changed nothing (it leaves the weights as they
    were): the milestone it ran at already shows the run without it, so it is judged
    there, a window sooner than a change is."""
    search = record.get("search") or {}
    return set(record.get("actions", [])) == {Action.PROBE_LEARNING_RATE} and (
        search.get("factor") == 1.0 and not search.get("superseded")
    )


def _rate_check_run(record: Mapping[str, Any]) -> bool:
    return record["finding"] == RATE_CHECK and record.get("appliedAtStep") is not None


def _supported(milestone: Milestone) -> set[str]:
    """The actions the training program supports: the ones it declares (gentrain-sdk), or
    every action (the built-in trainer declares none)."""
    declared = milestone.get("supported_actions")
    return set(declared) if declared is not None else set(Action)


def _rate_check(
    records: Sequence[Mapping[str, Any]],
    spec: Mapping[str, Any],
    milestone: Milestone,
    family_defaults: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Plan | None:
    """The rate check, when one is due at this milestone (see RATE_CHECK_FAMILIES)."""
    rules = ((spec.get("remediation") or {}).get("rules") or {}).get(RATE_CHECK) or {}
    if spec["model"]["family"] not in RATE_CHECK_FAMILIES or rules.get("enabled") is False:
        return None
    # A probe a ladder ran (PosteriorCollapse's first rung) counts as a check.
    checks = [r for r in records if Action.PROBE_LEARNING_RATE in r.get("actions", [])]
    # Only the first check comes early: the growth figure is the run's initial rate's.
    still_growth = None if checks else weight_growth.barely_moved(milestone)
    remaining = float(context.get("remaining_fraction", 1.0))
    early = still_growth is not None
    if (remaining > 1 - RATE_CHECK_FROM and not early) or remaining < RATE_CHECK_UNTIL:
        return None
    trained = int(milestone["step"]) - int(milestone.get("origin_step", 0))
    if trained < int(hp(spec, "warmupSteps", family_defaults) or 0):
        return None  # still warming up: the rate in force is not the rate configured
    if len(checks) >= RATE_CHECKS or len(records) >= int(
        (spec.get("remediation") or {}).get("maxActions", 8)
    ):
        return None
    if checks and float((checks[-1].get("search") or {}).get("factor", 1.0)) == 1.0:
        return None  # the last check kept the rate (or has not reported yet)
    if Action.PROBE_LEARNING_RATE not in _supported(milestone):
        return None
    if spec["model"]["family"] == "custom" and milestone.get("supported_actions") is None:
        return None  # a user's program that declares nothing: no held-out data known
    planned = plan_actions(["probe_learning_rate"], spec, family_defaults, context, set())
    if planned is None:
        return None
    why = f" (its weights grew only {still_growth:.3f}x in their first updates)" if early else ""
    finding = Finding(
        RATE_CHECK,
        Severity.INFO,
        f"a rate check at step {milestone['step']}{why}: would another learning rate do much "
        "better from here?",
        {"step": milestone["step"], "check": len(checks) + 1},
    )
    return Plan(finding, 0, ["probe_learning_rate"], *planned)


def command_ids(spec: Mapping[str, Any], record_id: str, count: int) -> list[str]:
    """Ids for a record's commands: `<record>-<n>`, unless a command in the spec (a user's)
    already holds that id, then `<record>-<n>.<k>`. A reused id would be refused by the API
    (the list is keyed by id) on every retry, or skipped by a trainer that applied it."""
    taken = {str(c.get("id")) for c in spec.get("commands") or []}
    ids: list[str] = []
    for index in range(count):
        candidate, suffix = f"{record_id}-{index}", 0
        while candidate in taken:
            suffix += 1
            candidate = f"{record_id}-{index}.{suffix}"
        taken.add(candidate)
        ids.append(candidate)
    return ids


def apply_to_spec(spec: Mapping[str, Any], plan: Plan, ids: Sequence[str]) -> dict[str, Any]:
    """The spec with the plan's changes and its commands (under `ids`) applied (a new dict)."""
    new = apply_changes(spec, plan.changes)
    commands = list(new.get("commands") or [])
    for command_id, command in zip(ids, plan.commands, strict=True):
        commands.append({"id": command_id, **command})
    if plan.commands:
        new["commands"] = commands[-32:]  # the API keeps at most 32
    return new
