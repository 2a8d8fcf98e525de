"""`make bench-remediation`: the remediation efficacy study.

Every pathology in bench/zoo/ (one small YAML file each: a base spec, its healthy and its
broken hyperparameters, and the quality metric) is trained with remediation `off`,
`recommend` and `auto` over several seeds, through bench.closed_loop — the operator's own
diagnosis and policy driving the real trainer in-process. Writes bench-output/efficacy.md
(the table) and efficacy.png.

    python -m bench.efficacy [--seeds 3] [--only NAME ...] [--merge]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bench import machine
from bench.closed_loop import run
from bench.recorder import merged

ZOO = Path(__file__).with_name("zoo")
OUT = Path(__file__).resolve().parents[1] / "bench-output"
TOLERANCE = 0.10  # rescued: final quality within 10% of the healthy reference's


def final(result: Any, metric: str, over_last: int = 1) -> float | None:
    """The run's final quality: its last milestone's, or the median of its last
    `over_last` (a case sets this where quality swings from milestone to milestone even
    in healthy runs, as a GAN's modes do)."""
    values = [float(m[metric]) for m in result.milestones if metric in m]
    return statistics.median(values[-over_last:]) if values else None


def recovered_at(result: Any) -> int | None:
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
        if a == "search_learning_rate" and "search" in record
        else a
        for a in record["actions"]
    ]
    return f"{record['finding']}:{'+'.join(actions)}@{record['step']}"


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


def within(value: float | None, reference: float, better: str) -> bool:
    if value is None:
        return False
    return (
        value >= (1 - TOLERANCE) * reference
        if better == "higher"
        else value <= (1 + TOLERANCE) * reference
    )


def study(names: list[str], seeds: int) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(ZOO.glob("*.yaml")):
        if names and path.stem not in names:
            continue
        case = yaml.safe_load(path.read_text())
        metric, better = case["quality"]["metric"], case["quality"]["better"]
        over_last = int(case["quality"].get("over_last", 1))
        for seed in range(seeds):
            base = merged(case["base"], {"training": {"seed": seed}})
            healthy = run(merged(base, {**case["healthy"], "remediation": {"mode": "auto"}}))
            reference = final(healthy, metric, over_last)
            row: dict[str, Any] = {
                "case": path.stem,
                "seed": seed,
                "metric": metric,
                "better": better,
                "healthy": reference,
                "healthy_last": final(healthy, metric),
                "over_last": over_last,
                "healthy_actions": len(healthy.remediations),
                "healthy_seconds": round(healthy.seconds, 1),
            }
            for mode in ("off", "recommend", "auto"):
                result = run(merged(base, {**case["broken"], "remediation": {"mode": mode}}))
                value = final(result, metric, over_last)
                row[mode] = value
                row[f"{mode}_last"] = final(result, metric)
                row[f"{mode}_actions"] = len(result.remediations)
                row[f"{mode}_seconds"] = round(result.seconds, 1)
                if mode == "auto":
                    row["rescued"] = reference is not None and within(value, reference, better)
                    row["recovered_at"] = recovered_at(result)
                    # Compute thrown away: the steps trained before the last fresh start.
                    row["discarded_steps"] = max(
                        (int(m.get("origin_step", 0)) for m in result.milestones), default=0
                    )
                    row["actions"] = [describe(r) for r in result.remediations]
                    # Compute spent outside the run's steps: learning-rate searches.
                    row["search_steps"] = sum(
                        int((r.get("search") or {}).get("stepsTrained", 0))
                        for r in result.remediations
                    )
                    row["commit"] = COMMIT
                    # The threads the trainer ran with (it sizes them from the CPU limit).
                    row["machine"] = {**MACHINE, "threads": result.threads}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    OUT.mkdir(exist_ok=True)
    lines = [
        "| pathology | metric | healthy | off | recommend | auto | rescued | actions (auto) "
        "| healthy from step | steps discarded (auto) | search steps (auto) | actions on healthy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:

        def fmt(v: Any) -> str:
            return f"{v:.3g}" if isinstance(v, float) else str(v)

        lines.append(
            f"| {row['case']} (seed {row['seed']}) | {row['metric']} ({row['better']}) | {fmt(row['healthy'])} | "
            f"{fmt(row['off'])} | {fmt(row['recommend'])} | {fmt(row['auto'])} | {'yes' if row['rescued'] else 'no'} | "
            f"{'; '.join(row['actions']) or 'none'} | {row['recovered_at'] or '-'} | "
            f"{row.get('discarded_steps', 0)} | {row.get('search_steps', 0)} | "
            f"{row['healthy_actions']} |"
        )
    lines += [
        "",
        "| pathology | metric | healthy | off | auto | rescued (seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for case in sorted({r["case"] for r in rows}):
        subset = [r for r in rows if r["case"] == case]

        def mean(key: str, subset: list[dict[str, Any]] = subset) -> str:
            values = [r[key] for r in subset if r[key] is not None]
            return f"{statistics.mean(values):.3g}" if values else "-"

        lines.append(
            f"| {case} | {subset[0]['metric']} | {mean('healthy')} | {mean('off')} | "
            f"{mean('auto')} | {sum(r['rescued'] for r in subset)} of {len(subset)} |"
        )
    rescued = sum(r["rescued"] for r in rows)
    harmful = sum(r["healthy_actions"] > 0 for r in rows)
    machines = sorted(
        {machine.line(r["machine"]) for r in rows if "machine" in r}
        | ({"(not recorded)"} if any("machine" not in r for r in rows) else set())
    )
    lines += [
        "",
        f"Rescued {rescued} of {len(rows)} pathological runs (goal: 80%); healthy references that drew "
        f"an action: {harmful} of {len(rows)} (goal: 0).",
        "",
        "Measured on: " + "; ".join(machines) + ".",
    ]
    (OUT / "efficacy.md").write_text("\n".join(lines) + "\n")
    (OUT / "efficacy.json").write_text(json.dumps(rows, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cases = sorted({r["case"] for r in rows})
    figure, axes = plt.subplots(1, len(cases), figsize=(3 * len(cases), 3.2), squeeze=False)
    for axis, case in zip(axes[0], cases, strict=True):
        subset = [r for r in rows if r["case"] == case]
        for i, key in enumerate(("healthy", "off", "recommend", "auto")):
            values = [r[key] for r in subset if r[key] is not None]
            if values:
                axis.bar(
                    i,
                    statistics.mean(values),
                    color=("tab:green", "tab:red", "tab:orange", "tab:blue")[i],
                )
        axis.set_xticks(range(4), ["healthy", "off", "rec.", "auto"], fontsize=7)
        axis.set_title(f"{case}\n{subset[0]['metric']}", fontsize=7)
    figure.tight_layout()
    figure.savefig(OUT / "efficacy.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of the cases not run from the existing efficacy.json",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the table and plot from efficacy.json"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.report_only:
        report(json.loads((OUT / "efficacy.json").read_text()))
    else:
        rows = study(args.only, args.seeds)
        if args.merge and (OUT / "efficacy.json").exists():
            measured = {r["case"] for r in rows}
            kept = [
                r
                for r in json.loads((OUT / "efficacy.json").read_text())
                if r["case"] not in measured
            ]
            rows = sorted(kept + rows, key=lambda r: (r["case"], r["seed"]))
        report(rows)
    print((OUT / "efficacy.md").read_text())


if __name__ == "__main__":
    main()
