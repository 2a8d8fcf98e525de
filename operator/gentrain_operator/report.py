"""The health report of any job, from its status alone: per milestone, the diagnosis with
its evidence, the actions and their outcomes; a loss plot with the remediations marked.

    gentrain-report NAMESPACE/NAME [--out DIR]      (or python -m gentrain_operator.report)

Reads the job through your kubeconfig (any cluster). Needs matplotlib for the plot
(`pip install gentrain-operator[report]`); without it the Markdown is still written.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


QUALITY = (
    "modes_covered",
    "high_quality_ratio",
    "fid",
    "kid",
    "recall",
    "active_units",
    "kl",
    "reconstruction_loss",
    "validation_loss",
    "perplexity",
    "discriminator_accuracy_ratio",
)


def summary(job: Mapping[str, Any]) -> dict[str, Any]:
    status = job.get("status") or {}
    milestones = status.get("milestones") or []
    remediations = status.get("remediations") or []
    first_action = min((r["step"] for r in remediations), default=None)
    before = [m for m in milestones if first_action is None or m["step"] <= first_action]
    after = milestones[-1] if milestones else {}
    return {
        "job": f"{job['metadata']['namespace']}/{job['metadata']['name']}",
        "family": job["spec"]["model"]["family"],
        "phase": status.get("phase"),
        "health": status.get("health"),
        "steps": status.get("step"),
        # The latest milestone's findings, and every finding that was ever acted on.
        "findings": sorted(
            {f["kind"] for f in status.get("findings") or []} | {r["finding"] for r in remediations}
        ),
        "remediations": [
            {
                k: r.get(k)
                for k in (
                    "id",
                    "step",
                    "finding",
                    "severity",
                    "actions",
                    "changes",
                    "search",
                    "mode",
                    "outcome",
                )
            }
            for r in remediations
        ],
        "before": {k: before[-1][k] for k in QUALITY if before and k in before[-1]},
        "after": {k: after[k] for k in QUALITY if k in after},
    }


def _search_lines(search: Mapping[str, Any] | None) -> list[str]:
    """A learning-rate search's candidates and choice, as the trainer reported them."""
    if not search:
        return []
    tried = ", ".join(
        f"x{factor} {'diverged' if loss is None else _fmt(loss)}"
        for factor, loss in (search.get("losses") or {}).items()
    )
    return [
        f"- learning-rate search at step {search.get('atStep')} "
        f"({search.get('stepsTrained')} probe steps in all), loss per candidate: {tried}; "
        f"chose **x{search.get('factor')}**"
        + (" (not written: the job had changed since)" if search.get("superseded") else "")
    ]


def markdown(job: Mapping[str, Any], plot: str | None) -> str:
    status = job.get("status") or {}
    data = summary(job)
    lines = [
        f"# Health report: {data['job']}",
        "",
        f"{data['family']} job, phase **{data['phase']}**, health **{data['health']}**, "
        f"{data['steps']} steps, {len(data['remediations'])} remediation(s).",
        "",
    ]
    if plot:
        lines += [f"![losses and remediations]({plot})", ""]
    lines += [
        "## Before and after",
        "",
        "| figure | before the first action | latest |",
        "|---|---|---|",
    ]
    for key in QUALITY:
        if key in data["before"] or key in data["after"]:
            lines.append(
                f"| {key} | {_fmt(data['before'].get(key, '-'))} | {_fmt(data['after'].get(key, '-'))} |"
            )
    lines += ["", "## Remediations", ""]
    if not data["remediations"]:
        lines.append("None: no milestone called for an action.")
    for r in status.get("remediations") or []:
        changes = "; ".join(
            f"`{c['field'].rsplit('.', 1)[-1]}` {c['from']} → {c['to']}"
            for c in r.get("changes", [])
        )
        lines += [
            f"### {r['id']} at step {r['step']}: {r['finding']} ({r['severity']})",
            "",
            f"- evidence: {_fmt(r.get('evidence', {}))}",
            f"- action ({r['mode']}): {', '.join(r['actions'])}"
            + (f" — {changes}" if changes else ""),
            f"- commands: {', '.join(r.get('commands') or []) or 'none'}",
            *_search_lines(r.get("search")),
            f"- outcome: **{r.get('outcome')}**"
            + (f" (judged at step {r['judgedAtStep']})" if r.get("judgedAtStep") else ""),
            "",
        ]
    lines += ["## Milestones", "", "| step | losses | quality | findings |", "|---|---|---|---|"]
    findings_by_step = {
        f.get("evidence", {}).get("step"): f["kind"] for f in status.get("findings") or []
    }
    for m in status.get("milestones") or []:
        quality = ", ".join(f"{k}={_fmt(m[k])}" for k in QUALITY if k in m)
        lines.append(
            f"| {m['step']} | {_fmt(m.get('loss_mean', {}))} | {quality} | {findings_by_step.get(m['step'], '')} |"
        )
    return "\n".join(lines) + "\n"


def plot(job: Mapping[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    status = job.get("status") or {}
    milestones = status.get("milestones") or []
    if not milestones:
        return False
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    steps = [m["step"] for m in milestones]
    for component in sorted({c for m in milestones for c in m.get("loss_mean", {})}):
        top.plot(
            steps,
            [m.get("loss_mean", {}).get(component, float("nan")) for m in milestones],
            marker="o",
            label=component,
        )
    top.set_ylabel("mean loss per window")
    top.legend()
    quality = next(
        (
            k
            for k in ("modes_covered", "fid", "active_units", "validation_loss")
            if any(k in m for m in milestones)
        ),
        None,
    )
    if quality:
        bottom.plot(
            steps, [m.get(quality, float("nan")) for m in milestones], marker="s", color="tab:green"
        )
        bottom.set_ylabel(quality)
    bottom.set_xlabel("step")
    for r in status.get("remediations") or []:
        for axis in (top, bottom):
            axis.axvline(r["step"], color="tab:red", linestyle="--", alpha=0.6)
        top.annotate(
            f"{r['id']}: {', '.join(r['actions'])}",
            (r["step"], top.get_ylim()[1]),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color="tab:red",
        )
    figure.suptitle(
        f"{job['metadata']['name']}: losses, {quality or 'quality'} and remediations (red)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(job: Mapping[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    has_plot = plot(job, out / "losses.png")
    (out / "report.md").write_text(markdown(job, "losses.png" if has_plot else None))
    data = summary(job)
    (out / "summary.json").write_text(json.dumps(data, indent=2, default=str))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gentrain_operator.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job", help="NAMESPACE/NAME of a GenerativeTrainingJob")
    parser.add_argument("--out", type=Path, default=Path("gentrain-report"))
    args = parser.parse_args()
    namespace, _, name = args.job.rpartition("/")
    from . import job_object

    job = job_object.read_job(namespace or "default", name)
    if job is None:
        raise SystemExit(f"no GenerativeTrainingJob {args.job}")
    write(job, args.out)
    print(f"wrote {args.out / 'report.md'}")


if __name__ == "__main__":
    main()
