"""The efficacy study's report: per set, rescued runs with a confidence interval (overall
and per family, over the cases bench.admission admits), false positives on healthy runs,
the runs `auto` made worse than `off`, and the compute each rescue cost. Pure on its rows,
apart from writing the files and reading which mixture each case trains on."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from bench import admission, machine
from bench.rescue import TOLERANCE, within

GOAL = {
    "evaluation": "goal: >= 80% rescued, no family below 60%, auto never >10% worse than off, "
    "<= 1 action in 50 healthy runs",
    "calibration": "goal: no worse than 20 of 24 rescued, no action on healthy runs",
}


# The evaluation goal's figures (issue 12), for its verdict line.
RESCUE_GOAL = 0.80
FAMILY_FLOOR = 0.60
HEALTHY_ACTIONS_PER_RUN = 1 / 50


def evaluation_goal(
    broken: list[dict[str, Any]], every: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> str:
    """The evaluation goal, clause by clause, met or not, in whole runs: a share printed
    rounded (115 of 144 reads "80%") must not pass for the 80% it falls one rescue short
    of. `broken`: the admitted pathological rows; `every`: all of them (harm counts
    wherever it happened); `rows`: every row (each has a healthy run)."""

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    rescued = sum(bool(r["rescued"]) for r in broken)
    needed = math.ceil(RESCUE_GOAL * len(broken) - 1e-9)
    short = []
    for family in sorted({r["family"] for r in broken}):
        subset = [r for r in broken if r["family"] == family]
        floor = math.ceil(FAMILY_FLOOR * len(subset) - 1e-9)
        got = sum(bool(r["rescued"]) for r in subset)
        if got < floor:
            short.append(f"{family} {got} of {len(subset)}, {floor} needed")
    harmed = sum(bool(r["worse_than_off"]) for r in every)
    harm = f" ({harmed} run{'s' if harmed > 1 else ''})" if harmed else ""
    actions = sum(len(r["healthy_actions"]) for r in rows)
    allowed = math.floor(HEALTHY_ACTIONS_PER_RUN * len(rows) + 1e-9)
    return (
        f"Goal: rescued {rescued} of {len(broken)}, {needed} needed for {RESCUE_GOAL:.0%}: "
        f"{verdict(rescued >= needed)}; every family at {FAMILY_FLOOR:.0%} or more: "
        f"{verdict(not short)}{' (' + '; '.join(short) + ')' if short else ''}; `auto` worse "
        f"than `off` by more than 10% on no run: {verdict(not harmed)}"
        f"{harm}; at most 1 action in 50 healthy runs: "
        f"{verdict(actions <= allowed)} ({actions} in {len(rows)} runs, {allowed} allowed)."
    )


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95%) for a proportion: sound at 0 or n successes and for
    the few trials a study on two cores affords, where the normal approximation is not."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def share(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    percent = f"{successes / trials:.0%}" if trials else "-"
    return f"{successes} of {trials} ({percent}; 95% CI {low:.0%}-{high:.0%})"


def fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def reference_noise(broken: list[dict[str, Any]]) -> list[str]:
    """The cases whose healthy reference spreads over its seeds wider than the 10% band,
    where "rescued" is decided by which seed's reference a run meets as much as by the
    run; and, beside the per-seed verdict (the goal's), each run judged against its case's
    median reference over the seeds, with the verdicts that change."""
    references: dict[str, list[float]] = {}
    for r in broken:
        if r["healthy"] is not None:
            references.setdefault(r["case"], []).append(r["healthy"])
    medians = {case: statistics.median(values) for case, values in references.items()}
    noisy = [
        f"{case} ({fmt(min(values))}-{fmt(max(values))}, median {fmt(medians[case])})"
        for case, values in sorted(references.items())
        if len(values) > 1 and max(values) - min(values) > 2 * TOLERANCE * abs(medians[case])
    ]
    if not noisy:
        return []
    by_median = [within(r["auto"], medians.get(r["case"]), r["better"]) for r in broken]
    flipped = [
        f"{r['case']} ({r['seed']}) {'yes' if r['rescued'] else 'no'} -> "
        f"{'yes' if rescued else 'no'}"
        for r, rescued in zip(broken, by_median, strict=True)
        if bool(r["rescued"]) != rescued
    ]
    return [
        "Healthy references wider over their seeds than the 10% band: " + "; ".join(noisy) + ".",
        f"Against each case's median reference instead of its own seed's: rescued "
        f"{share(sum(by_median), len(broken))}; verdicts that change: "
        f"{', '.join(flipped) or 'none'}.",
    ]


def left_alone(rows: list[dict[str, Any]]) -> list[str]:
    """What each healthy run that drew an action was on: the same run left alone
    (`healthy_off`), against its configuration's median left alone over the seeds (a run
    that drew nothing is its own run left alone). Within 10% of that median, the action
    was on a run that needed none (a false positive by any reading); below it, the
    "healthy" configuration failed at that seed and the action met a real fault (still
    counted against the goal, which counts every action on a healthy run)."""
    alone: dict[str, list[float]] = {}
    for r in rows:
        value = admission.left_alone(r)
        if value is not None:
            alone.setdefault(r["case"], []).append(value)
    needed_none: list[str] = []
    faulty: list[str] = []
    unmeasured: list[str] = []
    for r in rows:
        if not r["healthy_actions"]:
            continue
        name = f"{r['case']} ({r['seed']})"
        if r.get("healthy_off") is None:
            unmeasured.append(name)
            continue
        median = statistics.median(alone[r["case"]])
        said = (
            f"{name}: left alone {fmt(r['healthy_off'])}, acted on {fmt(r['healthy'])}, "
            f"median left alone {fmt(median)}"
        )
        (needed_none if within(r["healthy_off"], median, r["better"]) else faulty).append(said)
    if not (needed_none or faulty):
        return []
    lines = [
        "Of these, left alone (`off`) within 10% of the configuration's "
        f"median left alone, or better (an action on a run that needed none): {len(needed_none)}"
        f"{': ' + '; '.join(needed_none) if needed_none else ''}.",
        f"Left alone, worse than that median by more than 10% (the configuration failed at "
        f"that seed; the action met a real fault): {len(faulty)}"
        f"{': ' + '; '.join(faulty) if faulty else ''}.",
    ]
    if unmeasured:
        lines.append(
            f"Not run left alone (rows from before `healthy_off`): {', '.join(unmeasured)}."
        )
    return lines


def set_section(
    name: str, rows: list[dict[str, Any]], modes: dict[str, int | None] | None = None
) -> list[str]:
    """One set's part of the report; `modes` (the data's modes of each case, where its
    metric counts them) for the admission of its cases."""
    every = [r for r in rows if r.get("pathological")]
    verdicts = admission.admissions(every, modes or {})
    broken = [r for r in every if verdicts[r["case"]].reason is None]
    apart = [r for r in every if verdicts[r["case"]].reason is not None]
    lines = [f"## {name} set", "", f"({GOAL.get(name, '')})", ""]
    if every:
        lines += [
            "| pathology (seed) | family | metric | healthy | off | auto | rescued | auto worse "
            "than off | actions (auto) | steps discarded | search steps |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in every:
            lines.append(
                f"| {r['case']}{' †' if verdicts[r['case']].reason else ''} ({r['seed']}) | {r['family']} | "
                f"{r['metric']} ({r['better']}) | "
                f"{fmt(r['healthy'])} | {fmt(r['off'])} | {fmt(r['auto'])} | "
                f"{'yes' if r['rescued'] else 'no'} | {'**yes**' if r['worse_than_off'] else 'no'} | "
                f"{'; '.join(r['actions']) or 'none'} | {r['discarded_steps']} | {r['search_steps']} |"
            )
        lines += ["", "| family | rescued |", "|---|---|"]
        for family in sorted({r["family"] for r in broken}):
            subset = [r for r in broken if r["family"] == family]
            lines.append(f"| {family} | {share(sum(r['rescued'] for r in subset), len(subset))} |")
        rescued = [r for r in broken if r["rescued"]]
        lines += ["", f"Rescued: {share(len(rescued), len(broken))}."]
        lines += not_admitted(verdicts, apart, every)
        # A fault that did not hurt at that seed: its rescue is no evidence either way.
        unhurt = [r for r in broken if within(r["off"], r["healthy"], r["better"])]
        if unhurt:
            names = ", ".join(f"{r['case']} ({r['seed']})" for r in unhurt)
            hurt_rescued = len([r for r in rescued if r not in unhurt])
            lines.append(
                f"Of these, `off` too ended within 10% of healthy (no harm to undo at that "
                f"seed): {names}; without them, rescued: "
                f"{share(hurt_rescued, len(broken) - len(unhurt))}."
            )
        lines += reference_noise(broken)
        # Harm counts wherever it happened, admitted or not.
        harmed = [f"{r['case']} ({r['seed']})" for r in every if r["worse_than_off"]]
        lines.append(f"`auto` worse than `off` by more than 10%: {', '.join(harmed) or 'none'}.")
        if rescued:
            extra = [
                (r["discarded_steps"] + r["search_steps"]) / max(1, r["steps"]) for r in rescued
            ]
            lines.append(
                "Compute per rescue (steps discarded by fresh starts and rollbacks + steps of learning-rate "
                f"searches, over the run's steps): mean {statistics.mean(extra):.0%}, "
                f"most {max(extra):.0%}."
            )
    acted = [r for r in rows if r["healthy_actions"]]
    actions = sum(len(r["healthy_actions"]) for r in rows)
    which = [f"{r['case']} ({r['seed']}): {a}" for r in acted for a in r["healthy_actions"]]
    lines.append(
        f"Healthy runs that drew an action: {share(len(acted), len(rows))}; {actions} actions "
        f"in all{': ' + '; '.join(which) if which else ''}."
    )
    lines += left_alone(rows)
    if name == "evaluation" and broken:
        lines.append(evaluation_goal(broken, every, rows))
    return [*lines, ""]


def not_admitted(
    verdicts: dict[str, admission.Admission],
    apart: list[dict[str, Any]],
    every: list[dict[str, Any]],
) -> list[str]:
    """The cases that cannot measure a rescue (bench.admission), why, and what their rows
    would have added: marked † in the table, counted neither for nor against the goal."""
    if not apart:
        return []
    why = [f"{case}: {v.reason}" for case, v in verdicts.items() if v.reason is not None]
    return [
        "Not admitted (decided on the runs left alone, never on `auto`: bench/admission.py), "
        "marked †, not counted: " + "; ".join(why) + ".",
        f"Their rows rescued {sum(bool(r['rescued']) for r in apart)} of {len(apart)}; with "
        f"them, rescued: {share(sum(bool(r['rescued']) for r in every), len(every))}.",
    ]


def write(rows: list[dict[str, Any]], out: Path, commit: str) -> None:
    out.mkdir(exist_ok=True)
    lines = ["# Remediation efficacy", ""]
    modes = admission.zoo_modes(rows)
    for name in ("calibration", "evaluation"):
        subset = [r for r in rows if r["set"] == name]
        if subset:
            lines += set_section(name, subset, modes)
    commits = Counter(r["commit"] for r in rows)
    lines.append(
        "Rows measured at: " + ", ".join(f"{c} ({n} rows)" for c, n in sorted(commits.items()))
    )
    if len(commits) > 1 or (commits and commit not in commits):
        lines.append(
            f"**Warning: these rows come from {len(commits)} commit(s), and the code now is "
            f"{commit}**: rerun with `--fresh` to measure them all at one commit."
        )
    taken = Counter(
        (run, source) for r in rows for run, source in (r.get("taken_from") or {}).items()
    )
    if taken:
        lines.append(
            "Runs taken from earlier rows, not measured again (`--again`: runs without an "
            "action, which a change to what happens after one cannot alter): "
            + ", ".join(f"{run} of {n} rows from {c}" for (run, c), n in sorted(taken.items()))
            + "."
        )
    machines = sorted({machine.line(r["machine"]) for r in rows if "machine" in r})
    lines += ["", "Measured on: " + "; ".join(machines) + "."]
    (out / "efficacy.md").write_text("\n".join(lines) + "\n")
    plot([r for r in rows if r.get("pathological")], out / "efficacy.png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cases = sorted({(r["set"], r["case"]) for r in rows})
    if not cases:
        return
    figure, axes = plt.subplots(1, len(cases), figsize=(2.6 * len(cases), 3.2), squeeze=False)
    for axis, (set_name, case) in zip(axes[0], cases, strict=True):
        subset = [r for r in rows if (r["set"], r["case"]) == (set_name, case)]
        for i, key in enumerate(("healthy", "off", "auto")):
            values = [r[key] for r in subset if r[key] is not None]
            if values:
                axis.bar(i, statistics.mean(values), color=("tab:green", "tab:red", "tab:blue")[i])
        axis.set_xticks(range(3), ["healthy", "off", "auto"], fontsize=7)
        axis.set_title(f"{set_name}\n{case}\n{subset[0]['metric']}", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
