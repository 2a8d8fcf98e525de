"""Runs zoo cases left alone — the healthy reference and the broken run, remediation
`off` — over seeds, and says whether bench.admission admits each: how a case (or a
change to one) is checked before its figures count, without ever running the policy.

    python -m bench.admission_runs SET CASE... [--seeds 3] [--max-steps N]

Each run is printed as a JSON line (its quality per milestone too, to see whether a
reference is still learning at its last step), then the verdict per case. `--max-steps`
tries a case at another length (its milestones keep their interval) without editing it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from bench import admission
from bench.closed_loop import run
from bench.efficacy import SETS, case_file, complete, corpora, variant_spec
from bench.quiet import warnings_silenced
from bench.recorder import merged
from bench.run_figures import final


def left_alone_row(
    set_name: str, case_name: str, case: dict[str, Any], seed: int
) -> dict[str, Any]:
    """One seed of a case left alone, as a row bench.admission reads."""
    metric, better = case["quality"]["metric"], case["quality"]["better"]
    over_last = int(case["quality"].get("over_last", 1))
    healthy_data, broken_data = corpora(case)
    row: dict[str, Any] = {
        "set": set_name,
        "case": case_name,
        "seed": seed,
        "metric": metric,
        "better": better,
        "healthy_actions": [],
        "pathological": "broken" in case,
    }
    variants = (("healthy", healthy_data), ("broken", broken_data))
    for variant, data in variants if "broken" in case else variants[:1]:
        spec = variant_spec(case, variant, seed, data, "off")
        result = complete(run(spec), spec)
        name = "healthy" if variant == "healthy" else "off"
        row[name] = final(result, metric, over_last)
        row[f"{name}_by_milestone"] = [m.get(metric) for m in result.milestones]
    return row


@warnings_silenced()
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=SETS)
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None, help="another length to try")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds: {args.seeds} runs no seed; give 1 or more")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps: {args.max_steps} trains nothing; give 1 or more")
    for name in args.cases:
        case = yaml.safe_load(case_file(args.set, name).read_text())
        if args.max_steps is not None:
            case["base"] = merged(case["base"], {"training": {"maxSteps": args.max_steps}})
        rows = []
        for seed in range(args.seeds):
            rows.append(left_alone_row(args.set, name, case, seed))
            print(json.dumps(rows[-1]), flush=True)
        if not rows[0]["pathological"]:
            continue  # a healthy-only configuration is counted for false positives as it is
        modes = admission.zoo_modes(rows).get(name)
        verdict = admission.admit(name, rows, modes)
        print(
            f"{name}: healthy median {verdict.healthy}, off median {verdict.off}: "
            f"{'admitted' if verdict.reason is None else 'not admitted: ' + verdict.reason}"
        )


if __name__ == "__main__":
    main()
