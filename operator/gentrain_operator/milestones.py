"""What happens at a milestone (pure): update the history, diagnose, decide, and produce
the status fields and the spec patch. The operator's monitor and the efficacy benchmark
both call `process`, so the benchmark measures exactly the operator's decisions."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gentrain_contract.milestone import Milestone, compact, from_status
from gentrain_contract.vocabulary import FindingKind, Severity

from . import actions, names, policy, weight_growth
from .conditions import set_condition
from .diagnosis import Finding, diagnose
from .json_values import json_safe
from .ladders import ABOUT_THE_START, PRIORITY
from .refusals import mark_refused
from .trainer_config import FAMILY_DEFAULTS


@dataclass
class Outcome:
    status: dict[str, Any]
    spec: dict[str, Any] | None = None  # the new spec, when an action is applied
    findings: list[Finding] = field(default_factory=list)
    record: dict[str, Any] | None = None  # the new remediation record
    # The record is one applied before whose status write was lost (see `intent`).
    replayed: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)


def covering_missed_windows(record: Milestone, previous: Milestone | None) -> Milestone:
    """The record with its non-finite and spike counts taken over every window since the
    previous milestone the operator saw, from the trainer's since-start totals: a
    milestone the scrapes missed (an operator restart, failed scrapes, milestones closer
    together than the scrape interval) loses none of its NaNs or spikes. Only within one
    trainer process: a restarted trainer starts its totals again."""
    result = record.copy()
    if (
        previous is None
        or "trainer_started" not in record
        or previous.get("trainer_started") != record["trainer_started"]
    ):
        return result
    if "nonfinite_losses_since_start" in record and "nonfinite_losses_since_start" in previous:
        since = record["nonfinite_losses_since_start"] - previous["nonfinite_losses_since_start"]
        result["nonfinite"] = max(int(record.get("nonfinite", 0)), int(since))
    spikes = dict(record.get("spikes") or {})
    before = previous.get("spikes_since_start") or {}
    for component, total in (record.get("spikes_since_start") or {}).items():
        if component in before:
            spikes[component] = max(spikes.get(component, 0.0), total - before[component])
    result["spikes"] = spikes
    return result


def summary(record: Milestone) -> dict[str, Any]:
    """The latest figures, formatted for `kubectl get` columns."""
    losses = record.get("loss_mean") or {}
    shown: dict[str, Any] = {"step": record["step"]}
    if losses:
        shown["loss"] = (
            " ".join(f"{k[0].upper()}:{v:.3g}" for k, v in sorted(losses.items()))
            if len(losses) > 1
            else f"{next(iter(losses.values())):.4g}"
        )
    if "fid" in record:
        shown["fid"] = f"{record['fid']:.3g}"
    for key in (
        "modes_covered",
        "high_quality_ratio",
        "active_units",
        "validation_loss",
        "extractor",
    ):
        if key in record:
            shown[key] = record[key]
    return shown


def _describe(plan: policy.Plan) -> str:
    parts = [f"{c.field.rsplit('.', 1)[-1]} {c.old} -> {c.new}" for c in plan.changes]
    for command in plan.commands:
        if command["action"] == "rollback":
            skip = command.get("skipBatches", 0)
            parts.append(
                f"roll back to step {command['step']}"
                + (f" skipping {skip} batches" if skip else "")
            )
        else:
            parts.append(command["action"].replace("_", " "))
    return ", ".join(parts)


def _adopt_search(
    record: Milestone,
    records: list[dict[str, Any]],
    spec: Mapping[str, Any],
    generation: int,
) -> tuple[dict[str, Any] | None, tuple[str, str, str] | None]:
    """A learning-rate search the trainer ran for one of our remediations: its result
    goes into that remediation's record and its chosen rates into the spec, so the job
    says what the trainer does (the trainer drops its factor at the next generation)."""
    searched = record.get("learning_rate_search")
    if not searched:
        return None, None
    ordering = next(
        (
            r
            for r in reversed(records)
            if {"search_learning_rate", "probe_learning_rate"} & set(r.get("actions", []))
            and "search" not in r
        ),
        None,
    )
    if ordering is None or ordering.get("mode") != "auto":
        return None, None
    factor = float(searched["factor"])
    ordering["search"] = {
        "atStep": record["step"],
        "stepsTrained": int(searched.get("steps", 0)),
        # +Inf (a candidate that diverged) has no JSON form: null.
        "losses": {
            f: (round(v, 5) if math.isfinite(v) else None)
            for f, v in sorted(searched["losses"].items(), key=lambda kv: -float(kv[0]))
        },
        "factor": factor,
    }
    if record["generation"] != generation:  # the job changed since: the search is moot
        ordering["search"]["superseded"] = True
        return None, None
    new, changes = actions.adopt_search(spec, factor, FAMILY_DEFAULTS[spec["model"]["family"]])
    ordering.setdefault("changes", []).extend(
        {"field": c.field, "from": c.old, "to": c.new} for c in changes
    )
    tried = ", ".join(
        f"x{f} {'diverged' if v is None else f'{v:.3g}'}"
        for f, v in ordering["search"]["losses"].items()
    )
    chose = "; ".join(f"{c.field.rsplit('.', 1)[-1]} {c.old:.3g} -> {c.new:.3g}" for c in changes)
    judged_by = (
        "held-out loss after its probe steps"
        if "probe_learning_rate" in ordering.get("actions", [])
        else "loss over its last probe steps"
    )
    event = (
        "Normal",
        "LearningRateSearched",
        f"learning-rate search for {ordering['id']} at step {record['step']} "
        f"({judged_by}): {tried}; chose x{factor:g}"
        + (f": {chose}" if chose else ", the rate as configured"),
    )
    return (new if changes else None), event


def replayed_event(applied: Mapping[str, Any]) -> tuple[str, str, str]:
    """The Event of a remediation applied before whose record (and Event) were lost, told
    as its decision was: a routine rate check is Normal, not a remediation's Warning."""
    message = (
        f"{applied['finding']} at step {applied['step']}: "
        f"{' + '.join(applied['actions'])} (applied; its record is written now)"
    )
    if applied["finding"] == policy.RATE_CHECK:
        return ("Normal", policy.RATE_CHECK, message)
    return ("Warning", "Remediating", f"remediating {message}")


def intent(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The remediation already applied to the spec whose record never reached status, or
    None. The record rides in an annotation written by the very PATCH that changed the
    spec, so it exists exactly when the change does. It is still to be recorded while
    status knows neither its id nor any milestone as recent as the one that decided it
    (the next milestone handled may be a later one: the trainer does not wait)."""
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(names.INTENT_ANNOTATION)
    if not raw:
        return None
    try:
        written = json.loads(raw)
        entry, decided_at = dict(written["record"]), float(written["milestone"]["time"])
        entry_id = str(entry["id"])
    except (ValueError, KeyError, TypeError):
        return None  # not ours to read (someone edited it): decide as usual
    status = job.get("status") or {}
    recorded = {r.get("id") for r in status.get("remediations") or []}
    seen = [float(m.get("time", 0)) for m in status.get("milestones") or []]
    if entry_id in recorded or (seen and max(seen) >= decided_at):
        return None
    return entry


def unrecorded_intent(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """Status fields that record an applied remediation whose record was lost, for a job
    that will publish no further milestone to record it with (it has finished): None if
    there is none."""
    applied = intent(job)
    if applied is None:
        return None
    status = job.get("status") or {}
    return {
        "remediations": [*(status.get("remediations") or []), applied],
        "remediationCount": int(status.get("remediationCount", 0)) + 1,
    }


def intent_annotation(record: Milestone, entry: Mapping[str, Any]) -> str:
    return json.dumps(
        json_safe({"milestone": {"step": record["step"], "time": record["time"]}, "record": entry}),
        allow_nan=False,
        separators=(",", ":"),
    )


def process(
    record: Milestone,
    job: Mapping[str, Any],
    now: float | None = None,
    history_limit: int = 20,
) -> Outcome:
    """Handles one new milestone of `job` (whose status holds the earlier ones). If the job
    carries the intent of a remediation already applied whose record status lacks (see
    `intent`), that record is taken as the decision: the spec is not changed a second time."""
    now = time.time() if now is None else now
    spec, meta = job["spec"], job["metadata"]
    applied = intent(job)
    status = dict(job.get("status") or {})
    family = spec["model"]["family"]
    generation = int(meta.get("generation", 1))
    earlier = [from_status(m) for m in status.get("milestones") or []]
    record = covering_missed_windows(record, earlier[-1] if earlier else None)
    history: list[Milestone] = [*earlier, compact(record)][-history_limit:]
    findings = diagnose(history, family)
    records: list[dict[str, Any]] = [dict(r) for r in status.get("remediations") or []]
    if applied is not None:  # decided and applied before: judged like any other record
        records.append(applied)
    for r in records:  # note when the trainer took each change up
        if (
            r.get("outcome") == "pending"
            and r.get("appliedAtStep") is None
            and record["generation"] >= r.get("generation", 1 << 62)
        ):
            r["appliedAtStep"] = record["step"]
            if "generation_step" in record:
                r["appliedFromStep"] = record["generation_step"]
    refusals = mark_refused(record, records)
    adopted, searched_event = _adopt_search(record, records, spec, generation)
    if adopted is not None:
        spec = adopted
    # A checkpoint is a rollback target only if no rule suspects its window: neither a
    # finding acted on nor one reported until the next window confirms it (a first loss
    # spike, a first FID rise) — a rollback for a confirmed one goes back before it — and
    # that is about this window (not ABOUT_THE_START).
    serious = [f for f in findings if f.severity != "info"]
    suspect = [f for f in findings if f.kind in PRIORITY and f.kind not in ABOUT_THE_START]
    last_healthy = status.get("lastHealthyCheckpoint")
    if not suspect:
        last_healthy = record["step"]
    max_steps = int(spec["training"]["maxSteps"])
    context = {
        "last_healthy_checkpoint": last_healthy,
        "step": record["step"],
        "interval": (spec.get("checkpoints") or {}).get("interval", 200),
        # Rolling back or resetting needs room: the policy does neither near the end.
        "remaining_fraction": max(0.0, (max_steps - record["step"]) / max_steps),
        "max_steps": max_steps,
    }
    decision = policy.decide(findings, records, spec, record, FAMILY_DEFAULTS[family], context)
    for r in records:
        if r["id"] in decision.outcomes:
            r["outcome"] = decision.outcomes[r["id"]]
            r["judgedAtStep"] = record["step"]
    outcome = Outcome(status={}, findings=findings, spec=adopted, events=refusals)
    if searched_event is not None:
        outcome.events.append(searched_event)
    mode = (spec.get("remediation") or {}).get("mode", "auto")
    total = int(status.get("remediationCount", 0))
    if applied is not None:
        # Decided and applied before; only its record (and its Event) were lost.
        total += 1
        outcome.record = applied
        outcome.replayed = True
        outcome.events.append(replayed_event(applied))
    elif decision.plan is not None:
        plan = decision.plan
        total += 1
        record_id = f"r{total}"
        ids = policy.command_ids(spec, record_id, len(plan.commands))
        entry = {
            "id": record_id,
            "step": record["step"],
            "time": now,
            "finding": plan.finding.kind,
            "severity": plan.finding.severity,
            "evidence": plan.finding.evidence,
            "rung": plan.rung,
            "actions": plan.actions,
            "mode": mode,
            "changes": [{"field": c.field, "from": c.old, "to": c.new} for c in plan.changes],
            "commands": ids,
            "outcome": "pending" if mode == "auto" else "recommended",
        }
        if mode == "auto":
            outcome.spec = policy.apply_to_spec(spec, plan, ids)
            entry["generation"] = generation + 1  # the patch bumps the spec's generation
        records.append(entry)
        outcome.record = entry
        verb = "remediating" if mode == "auto" else "recommending"
        if plan.finding.kind == policy.RATE_CHECK:  # routine, not a fault: no warning
            outcome.events.append(("Normal", policy.RATE_CHECK, plan.finding.message))
        else:
            outcome.events.append(
                (
                    "Warning" if mode == "auto" else "Normal",
                    "Remediating" if mode == "auto" else "RemediationRecommended",
                    f"{verb} {plan.finding.kind} at step {record['step']}: {_describe(plan)}",
                )
            )
    for finding in findings:
        if (
            finding.kind == FindingKind.WEIGHT_GROWTH
            and finding.severity == Severity.INFO
            and weight_growth.announced_before(history)
        ):
            continue  # reported, not acted on: one event, when the figure first shows
        outcome.events.append(
            ("Warning" if finding.severity != "info" else "Normal", finding.kind, finding.message)
        )
    if decision.exhausted:
        health = "Exhausted"
    elif serious:
        health = (
            "Remediating" if any(r.get("outcome") == "pending" for r in records) else "Unhealthy"
        )
    else:
        health = "Healthy"
    conditions = status.get("conditions")
    if decision.exhausted and serious:
        conditions = set_condition(
            conditions, "Healthy", False, "RemediationExhausted", decision.exhausted, generation
        )
        outcome.events.append(("Warning", "RemediationExhausted", decision.exhausted))
    elif serious:
        conditions = set_condition(
            conditions, "Healthy", False, serious[0].kind, serious[0].message, generation
        )
    else:
        conditions = set_condition(
            conditions,
            "Healthy",
            True,
            "NoFindings",
            f"no finding at step {record['step']}",
            generation,
        )
    outcome.status = {
        "milestones": history,
        "checkpointStep": record["step"],
        "lastHealthyCheckpoint": last_healthy,
        "findings": [f.as_dict() for f in findings],
        "remediations": records[-history_limit:],
        "remediationCount": total,
        "health": health,
        "summary": summary(record),
        "configGeneration": record["generation"],
        "conditions": conditions,
    }
    return outcome
