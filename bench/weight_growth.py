"""`python -m bench.weight_growth`: each zoo case's weight growth in its first 100 steps at
the full rate (the trainer's gentrain_milestone_weight_growth), healthy and broken, seed by
seed — what the WeightGrowth threshold is fitted on (calibration) and judged against
(evaluation; never fitted on).

Each run is the real trainer on the case's spec, remediation off, stopped as soon as it
has measured the figure (its warm-up and 100 steps): a table over the whole zoo costs
minutes, not the hours a study does. Writes bench-output/weight-growth.md.

    python -m bench.weight_growth [--set calibration|evaluation|all] [--seeds 3] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from bench.efficacy import OUT, cases, corpora, variant_spec
from bench.quiet import warnings_silenced
from gentrain_operator import trainer_config
from gentrain_trainer.loop import Options, Trainer
from gentrain_trainer.weight_growth import GROWTH_STEPS


def growth(spec: dict[str, object]) -> dict[str, float]:
    """Trains `spec` until the trainer has measured every component's growth."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(trainer_config.render(spec, 1)))
        trainer = Trainer(Options(path, Path(tmp) / "checkpoints", metrics_port=0, evaluate=False))
        try:
            wanted = set(trainer.family.components())
            while set(trainer.weight_growth.growth) < wanted and trainer.step < trainer.max_steps:
                trainer.train_one()
            return dict(trainer.weight_growth.growth)
        finally:
            trainer.close()


@warnings_silenced()
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=("calibration", "evaluation", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    lines = [
        f"# Weight growth in the first {GROWTH_STEPS} updates at the full rate",
        "",
        "| set | case | variant | seed | growth (per component) |",
        "|---|---|---|---|---|",
    ]
    for set_name, path in cases(args.set, args.only):
        case = yaml.safe_load(path.read_text())
        data = dict(zip(("healthy", "broken"), corpora(case), strict=True))
        for variant in ("healthy", "broken"):
            if variant not in case:
                continue
            for seed in range(args.seeds):
                spec = variant_spec(case, variant, seed, data[variant], "off")
                figures = ", ".join(f"{c} {g:.3f}" for c, g in sorted(growth(spec).items()))
                line = f"| {set_name} | {path.stem} | {variant} | {seed} | {figures} |"
                lines.append(line)
                print(line, flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "weight-growth.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
