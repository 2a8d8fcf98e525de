"""One run of a zoo case, milestone by milestone: the figures the diagnosis read, the
findings it made, and the remediations the policy applied — how a case of the efficacy
study is traced (docs/diagnosis-calibration.md). Thresholds are fitted on the calibration
set only: an evaluation case may be traced, but a change it prompts must say so.

    python -m bench.trace SET CASE [--seed 0] [--healthy] [--mode auto|off]
                          [--fields step,modes_covered,high_quality_ratio,update_ratio]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from bench.closed_loop import run
from bench.efficacy import SETS, case_file, corpora, variant_spec
from bench.quiet import warnings_silenced


def shown(milestone: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The milestone's `fields` (every scalar one for none), floats to 4 significant
    digits, a dict of figures per component kept as one."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.4g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    if fields:
        return {f: rounded(milestone[f]) for f in fields if f in milestone}
    return {k: rounded(v) for k, v in milestone.items() if not isinstance(v, dict | list)}


@warnings_silenced()
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=SETS)
    parser.add_argument("case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--healthy", action="store_true", help="the healthy reference")
    parser.add_argument("--mode", choices=("auto", "off"), default="auto")
    parser.add_argument("--fields", default="", help="comma-separated milestone fields")
    args = parser.parse_args()
    path = case_file(args.set, args.case)
    if args.set == "evaluation":
        print("note: an evaluation case; a change it prompts must say so", file=sys.stderr)
    case = yaml.safe_load(path.read_text())
    healthy_data, broken_data = corpora(case)
    variant = "healthy" if args.healthy or "broken" not in case else "broken"
    data = healthy_data if variant == "healthy" else broken_data
    result = run(variant_spec(case, variant, args.seed, data, args.mode))
    fields = [f for f in args.fields.split(",") if f]
    for milestone, findings in zip(result.milestones, result.findings, strict=True):
        print(json.dumps({**shown(milestone, fields), "findings": findings}))
    for record in result.remediations:
        print(
            json.dumps(
                {
                    "remediation": {
                        k: record.get(k)
                        for k in ("step", "finding", "actions", "search")
                        if k in record
                    }
                }
            )
        )


if __name__ == "__main__":
    main()
