"""`make bench-remediation`: the remediation efficacy study, on two sets of runs.

The zoo (`bench/zoo/<set>/<case>.yaml`, one small file per case: a base spec, its healthy
hyperparameters, its broken ones, and the quality metric) has two sets:
- `calibration`: the cases the diagnosis thresholds were fitted on (docs/diagnosis-
  calibration.md); a threshold may be changed only to fit these.
- `evaluation`: cases no threshold was fitted on — other datasets, sizes, losses and
  settings, for the same faults. Its figures say whether the rules generalise; a change
  made because an evaluation case failed must be said so in the commit and the figures
  of that case are no longer evidence.
A case without `broken` is a healthy configuration: it counts only for false positives.

Every pathological case trains its healthy reference (remediation `auto`: any action on
it is a false positive), the broken spec with remediation `off` and with `auto`, over
several seeds, through bench.closed_loop: the operator's own diagnosis and policy driving
the real trainer in-process. (`recommend` applies nothing, so its run is `off`'s.)

Rows are appended to bench-output/efficacy.jsonl as each is measured; a rerun skips the
(set, case, seed) rows already there, so an interrupted study resumes where it stopped.
Rows measured at another commit are kept unless `--fresh`, and the report names every
commit its rows come from. Writes bench-output/efficacy.md (and efficacy.png).

    python -m bench.efficacy [--set calibration|evaluation|all] [--seeds 3] [--only NAME ...]
                             [--again EARLIER.jsonl]

`--again` is for a change that can alter a run only once the operator has acted on it
(when or how a remedy is applied): it measures again only the runs that acted in the
earlier rows and takes the others' figures (every `off`, each run without an action), so
a study of such a change costs a third of a full one; each row names the commit of what
it took (`taken_from`), and the report counts them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from bench import corpus, efficacy_report, machine
from bench.closed_loop import LoopResult, run
from bench.quiet import warnings_silenced
from bench.recorder import merged
from bench.rescue import TOLERANCE, within
from bench.run_figures import (
    changed_something,
    describe,
    discarded_steps,
    final,
    first_growth,
    most_spikes,
    probes,
    recovered_at,
    search_steps,
)

ZOO = Path(__file__).with_name("zoo")
SETS = ("calibration", "evaluation")
OUT = Path(__file__).resolve().parents[1] / "bench-output"
ROWS = OUT / "efficacy.jsonl"


def _commit() -> str:
    """The code a row was measured with (rows of several runs can be merged)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{'+changes' if dirty else ''}" or "unknown"


COMMIT = _commit()
MACHINE = machine.describe()


def worse_than(value: float | None, other: float | None, better: str) -> bool:
    """`auto` worse than `off` by more than the tolerance (harm, not a missed chance)."""
    if other is None:
        return False
    if value is None:
        return True
    return (
        value < (1 - TOLERANCE) * other if better == "higher" else value > (1 + TOLERANCE) * other
    )


class InterruptedRunError(RuntimeError):
    """A run stopped before its last step (the in-process trainer saves and stops on
    SIGTERM, as in a pod): its figures are not the run's, so no row is written."""


def complete(result: LoopResult, spec: dict[str, Any]) -> LoopResult:
    wanted = int(spec["training"]["maxSteps"])
    if result.steps < wanted:
        raise InterruptedRunError(f"a run stopped at step {result.steps} of {wanted}")
    return result


def cases(which: str, names: list[str]) -> list[tuple[str, Path]]:
    chosen = SETS if which == "all" else (which,)
    found = [(s, p) for s in chosen for p in sorted((ZOO / s).glob("*.yaml"))]
    return [(s, p) for s, p in found if not names or p.stem in names]


def case_file(set_name: str, name: str) -> Path:
    """The zoo file of case `name` in `set_name`; for a command line, exits naming the
    set's cases where there is none."""
    path = ZOO / set_name / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (ZOO / set_name).glob("*.yaml"))
        sys.exit(f"error: no case {name!r} in the {set_name} set; its cases: {known}")
    return path


def variant_spec(
    case: dict[str, Any], variant: str, seed: int, data: dict[str, Any], mode: str
) -> dict[str, Any]:
    """A case's healthy or broken job spec at `seed`, its corpus (`data`, see corpora)
    and remediation `mode`."""
    base = merged(merged(case["base"], {"training": {"seed": seed}}), data)
    return merged(base, {**case[variant], "remediation": {"mode": mode}})


def corpora(
    case: dict[str, Any], folder: Path = OUT / "corpora"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A loss-spike case's text files: the healthy reference reads its corpus clean, the
    broken runs with its corrupt stretches (bench.corpus)."""
    if "corpus" not in case:
        return {}, {}
    clean, broken = (corpus.write(case["corpus"], folder, clean=c) for c in (True, False))
    return {"dataset": {"path": str(clean)}}, {"dataset": {"path": str(broken)}}


# The fields each run of a row writes (`--again` takes a run's from an earlier row).
HEALTHY_FIELDS = (
    "healthy",
    "healthy_steps",
    "healthy_actions",
    "healthy_checks",
    "healthy_search_steps",
    "healthy_probes",
    "healthy_seconds",
    "healthy_spikes",
    "healthy_growth",
    "healthy_off",
    "healthy_off_seconds",
)
OFF_FIELDS = ("off", "off_seconds", "off_spikes", "off_growth")
AUTO_FIELDS = (
    "auto",
    "auto_seconds",
    "auto_spikes",
    "auto_growth",
    "recovered_at",
    "actions",
    "steps",
    "discarded_steps",
    "search_steps",
    "probes",
)


def unaltered(earlier: dict[str, Any] | None) -> set[str]:
    """The runs of an earlier row that a change to what happens once the operator acts
    cannot alter: `off` never acts, and a run (healthy or `auto`) that drew no action and
    no check trained exactly as it would now. Their figures are taken, not measured."""
    if earlier is None:
        return set()
    kept = {"off"}
    if not earlier["healthy_actions"] and not earlier.get("healthy_checks"):
        kept.add("healthy")
    if earlier.get("pathological") and not earlier.get("actions"):
        kept.add("auto")
    return kept


def measure(
    set_name: str, path: Path, seed: int, earlier: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row: the healthy reference, and for a pathological case the broken spec with
    remediation `off` and `auto`. With `earlier` (the row of another commit), the runs
    `unaltered` names are taken from it and the row says so (`taken_from`)."""
    case = yaml.safe_load(path.read_text())
    metric, better = case["quality"]["metric"], case["quality"]["better"]
    over_last = int(case["quality"].get("over_last", 1))
    healthy_data, broken_data = corpora(case)
    kept = unaltered(earlier)
    if earlier is not None and kept >= (
        {"healthy", "off", "auto"} if "broken" in case else {"healthy"}
    ):
        return earlier  # nothing to measure: the row as it was, its commit and machine too
    row: dict[str, Any] = {
        "set": set_name,
        "case": path.stem,
        "family": case["base"]["model"]["family"],
        "seed": seed,
        "metric": metric,
        "better": better,
        "pathological": "broken" in case,
        "commit": COMMIT,
        "machine": dict(MACHINE),
    }
    if earlier is not None:
        taken_before = earlier.get("taken_from") or {}  # what that row itself took
        row["taken_from"] = {run: taken_before.get(run, earlier["commit"]) for run in sorted(kept)}
    if "healthy" in kept:
        assert earlier is not None
        row.update({field: earlier.get(field) for field in HEALTHY_FIELDS})
    else:
        spec = variant_spec(case, "healthy", seed, healthy_data, "auto")
        healthy = complete(run(spec), spec)
        row.update(
            {
                "healthy": final(healthy, metric, over_last),
                "healthy_steps": healthy.steps,
                "healthy_actions": [
                    describe(r) for r in healthy.remediations if changed_something(r)
                ],
                "healthy_checks": [
                    describe(r) for r in healthy.remediations if not changed_something(r)
                ],
                "healthy_search_steps": search_steps(healthy),
                "healthy_probes": probes(healthy),
                "healthy_seconds": round(healthy.seconds, 1),
                "healthy_spikes": most_spikes(healthy),
                "healthy_growth": first_growth(healthy),
            }
        )
        row["machine"]["threads"] = healthy.threads
        if row["healthy_actions"]:
            # What the action was on: the same run left alone. A reference that, left
            # alone, ends far below its configuration's other seeds had a real fault there.
            alone_spec = variant_spec(case, "healthy", seed, healthy_data, "off")
            alone = complete(run(alone_spec), alone_spec)
            row["healthy_off"] = final(alone, metric, over_last)
            row["healthy_off_seconds"] = round(alone.seconds, 1)
    if "broken" not in case:
        return row
    for mode in ("off", "auto"):
        if mode in kept:
            assert earlier is not None
            row.update({f: earlier.get(f) for f in (OFF_FIELDS if mode == "off" else AUTO_FIELDS)})
            continue
        spec = variant_spec(case, "broken", seed, broken_data, mode)
        result = complete(run(spec), spec)
        row[mode] = final(result, metric, over_last)
        row[f"{mode}_seconds"] = round(result.seconds, 1)
        row[f"{mode}_spikes"] = most_spikes(result)
        row[f"{mode}_growth"] = first_growth(result)
        row["machine"]["threads"] = result.threads
        if mode == "auto":
            row["recovered_at"] = recovered_at(result)
            row["actions"] = [describe(r) for r in result.remediations]
            row["steps"] = result.steps
            row["discarded_steps"] = discarded_steps(result, int(spec["checkpoints"]["interval"]))
            # Compute spent outside the run's steps: learning-rate searches and probes.
            row["search_steps"] = search_steps(result)
            row["probes"] = probes(result)
    reference = row["healthy"]
    row["rescued"] = reference is not None and within(row["auto"], reference, better)
    row["worse_than_off"] = worse_than(row["auto"], row["off"], better)
    return row


def load_rows() -> list[dict[str, Any]]:
    if not ROWS.exists():
        return []
    return [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]


def key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["set"], row["case"], int(row["seed"])


def study(
    which: str,
    names: list[str],
    seeds: int,
    fresh: bool,
    again: dict[tuple[str, str, int], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Measures every (set, case, seed) not in efficacy.jsonl yet (with `fresh`: not yet
    at this commit), appending each row as soon as it is measured. With `again` (rows of
    another commit), only its rows are measured, each taking the runs it `unaltered` from
    that row: for a change that can alter a run only once the operator has acted on it."""
    rows = {key(r): r for r in load_rows()}
    OUT.mkdir(exist_ok=True)
    for set_name, path in cases(which, names):
        for seed in range(seeds):
            done = rows.get((set_name, path.stem, seed))
            earlier = None if again is None else again.get((set_name, path.stem, seed))
            if again is None:
                if done is not None and (not fresh or done["commit"] == COMMIT):
                    continue
            elif earlier is None or done == earlier or (done or {}).get("commit") == COMMIT:
                continue  # not asked for, kept as it was already, or measured again already
            row = measure(set_name, path, seed, earlier)
            rows[key(row)] = row
            with ROWS.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    wanted = {(s, p.stem) for s, p in cases(which, names)}
    return sorted((r for r in rows.values() if (r["set"], r["case"]) in wanted), key=key)


@warnings_silenced()
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=(*SETS, "all"), default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument(
        "--fresh", action="store_true", help="measure again the rows of other commits"
    )
    parser.add_argument(
        "--again",
        type=Path,
        metavar="ROWS",
        help="measure again the rows of ROWS (a .jsonl of another commit), running only what "
        "a change to what happens after an action can alter: each healthy or auto run that "
        "acted; the rest is taken from ROWS, and each row names what it took",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from efficacy.jsonl"
    )
    args = parser.parse_args()
    if args.report_only:
        wanted = {(s, p.stem) for s, p in cases(args.set, args.only)}
        latest = {key(r): r for r in load_rows()}  # a case measured again replaces its row
        rows = sorted((r for r in latest.values() if (r["set"], r["case"]) in wanted), key=key)
    else:
        again = None
        if args.again is not None:
            earlier = [json.loads(line) for line in args.again.read_text().splitlines() if line]
            again = {key(r): r for r in earlier}
        rows = study(args.set, args.only, args.seeds, args.fresh, again)
    efficacy_report.write(rows, OUT, COMMIT)
    print((OUT / "efficacy.md").read_text())


if __name__ == "__main__":
    main()
