"""Diagnosis rules on what a model produces (pure): a GAN's modes and discriminator, FID,
a diffusion model's EMA, a VAE's latent units, a transformer's validation loss. Their
thresholds are in thresholds.THRESHOLDS, passed in as `t`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gentrain_contract.milestone import Milestone
from gentrain_contract.vocabulary import FindingKind, Severity

from .findings import Finding

# Milestones back that a run's coverage is compared with to tell a run still spreading
# from a collapse (see sharp_on_few in `gan`).
COLLAPSE_GROWTH_WINDOWS = 3


def first_window(history: Sequence[Milestone]) -> bool:
    """Whether the newest window trained weights fresh from their initialisation: the
    run's first, or the first after a `reinitialize` command started afresh."""
    return len(history) < 2 or int(history[-1].get("origin_step", 0)) >= history[-2]["step"]


def gan(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    m = history[-1]
    findings = _overpowering(m, t) + _unconstrained_critic(m, t)
    moving = max((m.get("update_ratio") or {}).values(), default=0.0)
    trained = int(m["step"]) - int(m.get("origin_step", 0))
    near = float(m.get("high_quality_ratio", 1.0))
    if (
        not first_window(history)
        and trained >= t["gan_not_learning_steps"]
        and near < t["gan_near_data"]
        and moving >= t["gan_update_ratio"]
    ):
        findings.append(
            Finding(
                FindingKind.NOT_LEARNING,
                Severity.CRITICAL,
                f"{near:.1%} of the samples near any of the {m.get('modes')} modes "
                f"{trained} steps in, while the weights move {moving:.1%} per step: the "
                "learning rate is far too high",
                {
                    "step": m["step"],
                    "modes_covered": m.get("modes_covered"),
                    "high_quality_ratio": near,
                    "update_ratio": m.get("update_ratio"),
                },
            )
        )
    if "modes" in m and "modes_covered" in m and len(history) >= 2:
        covered, modes = int(m["modes_covered"]), int(m["modes"])

        counts = [int(h.get("modes_covered", 0)) for h in history]

        def sharp_on_few(index: int) -> bool:
            at = len(history) + index
            n, earlier = counts[at], counts[:at]
            sharp = float(history[at].get("high_quality_ratio", 0.0)) >= t["collapse_quality"]
            lost = max([*earlier, n]) - n >= t["modes_lost_fraction"] * modes
            # More modes than ever before is a run still spreading, however few of the
            # data's it covers yet: a healthy GAN on the 25-mode grid, sharp on 11 and
            # then 12 (its best so far, on its way from 0) drew ModeCollapse at 4,500
            # (evaluation zoo, the minimax case's reference, seed 1; so said so).
            spreading = bool(earlier) and n > max(earlier)
            # ... and so is one with more modes than three milestones before, unless it
            # lost a quarter of the data's modes from its best: the calibration grid's
            # references dip for a milestone or two on their way up (18, 16, 14, 17, 19 of
            # 25 from step 5,000) and drew ModeCollapse at 6,000 — a slower discriminator
            # that left seed 2 at 15 modes against 19 left alone — while a ring that fell
            # from 7 to 1 and crawls back to 3 or 4 is still found (session 42).
            grew = at >= COLLAPSE_GROWTH_WINDOWS and n > counts[at - COLLAPSE_GROWTH_WINDOWS]
            few = n < t["modes_fraction"] * modes and not grew
            return sharp and not spreading and (few or lost)

        best = max(counts)
        trend = counts[-3:]
        # Collapsed: (almost) one mode, or stuck below half of them for three milestones —
        # past that point easing the discriminator no longer brings modes back.
        stuck = len(trend) == 3 and len(set(trend)) == 1 and covered < modes / 2
        collapsed = covered <= max(1, modes // 4) or stuck
        # Short of that, sharp samples on few modes must show twice in a row: a healthy
        # run (zoo seed 2) dipped from 7 to 4 sharp modes for one milestone and came back.
        if sharp_on_few(-1) and (collapsed or sharp_on_few(-2)):
            findings.append(
                Finding(
                    FindingKind.MODE_COLLAPSE,
                    Severity.CRITICAL if collapsed else Severity.WARNING,
                    f"{covered} of {modes} modes covered with {m.get('high_quality_ratio', 0):.0%} sharp samples "
                    f"(best so far {best})",
                    {
                        "step": m["step"],
                        "modes_covered": covered,
                        "modes": modes,
                        "best": best,
                        "trend": trend,
                        "high_quality_ratio": m.get("high_quality_ratio"),
                        "collapsed": collapsed,
                    },
                )
            )
    elif "recall" in m and len(history) >= 2:
        best_recall = max(h.get("recall", 0.0) for h in history)
        if best_recall > 0.2 and m["recall"] < t["recall_fraction"] * best_recall:
            findings.append(
                Finding(
                    FindingKind.MODE_COLLAPSE,
                    Severity.WARNING,
                    f"recall fell to {m['recall']:.2f} from its best {best_recall:.2f}",
                    {
                        "step": m["step"],
                        "recall": m["recall"],
                        "best": best_recall,
                        "collapsed": False,
                    },
                )
            )
    return findings


def _starved_generator(m: Milestone, t: Mapping[str, float]) -> float | None:
    """How fast the generator's weights move against its discriminator's (update ratio
    over update ratio) where it trains on the saturating (minimax) loss and is slower by
    more than `starved_generator_ratio`: else None."""
    moving = m.get("update_ratio") or {}
    generator, discriminator = moving.get("generator"), moving.get("discriminator")
    if m.get("gan_loss") != "minimax" or not generator or not discriminator:
        return None
    relative = generator / discriminator
    return relative if relative <= t["starved_generator_ratio"] else None


def _overpowering(m: Milestone, t: Mapping[str, float]) -> list[Finding]:
    """A discriminator right nearly every time; or, under the saturating loss, one merely
    ahead of a generator that learns far slower than it. The minimax generator learns
    from D(G(z)) itself, which a leading discriminator drives towards 0 (Goodfellow et
    al., 2014, section 3), and a slow one never catches up: the 25-mode grid under
    minimax with the discriminator at 10x reads only 0.72-0.80 at its first milestone,
    under the 0.82 a discriminator reaches on its own, and ends on 4-6 of 25 modes."""
    accuracy = m.get("discriminator_accuracy_ratio")
    if accuracy is None:
        return []
    starved = _starved_generator(m, t)
    if accuracy >= t["discriminator_accuracy"]:
        message = f"the discriminator tells real from fake {accuracy:.0%} of the time"
    elif starved is not None and accuracy >= t["saturating_discriminator_accuracy"]:
        message = (
            f"the discriminator tells real from fake {accuracy:.0%} of the time and the "
            f"generator, on the saturating loss, moves {starved:.0%} as fast as it"
        )
    else:
        return []
    evidence = {
        "step": m["step"],
        "accuracy": accuracy,
        "d_real": m.get("d_real"),
        "d_fake": m.get("d_fake"),
        "generator_relative_update": starved,
    }
    return [Finding(FindingKind.DISCRIMINATOR_OVERPOWERING, Severity.WARNING, message, evidence)]


def _unconstrained_critic(m: Milestone, t: Mapping[str, float]) -> list[Finding]:
    """A Wasserstein critic must be 1-Lipschitz, or its loss estimates no distance and the
    generator's gradients are meaningless (Arjovsky et al., 2017); WGAN-GP's penalty holds
    the gradient norm near 1 (Gulrajani et al., 2017). Read only under that loss: a
    classifier's logits are not bound to any scale."""
    norm = m.get("critic_gradient_norm")
    if m.get("gan_loss") != "wgan_gp" or norm is None or not norm >= t["critic_gradient_norm"]:
        return []
    weight = m.get("gradient_penalty_weight")
    return [
        Finding(
            FindingKind.UNCONSTRAINED_CRITIC,
            Severity.CRITICAL,
            f"the WGAN critic's gradient norm is {norm:.3g} where its penalty should hold it "
            f"near 1 (penalty weight {weight}): the critic is unconstrained",
            {"step": m["step"], "critic_gradient_norm": norm, "penalty_weight": weight},
        )
    ]


def _stderr(milestone: Milestone) -> float | None:
    value = milestone.get("fid_stderr")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _difference_noise(a: Milestone, b: Milestone) -> float | None:
    """The standard error of the difference of two milestones' FIDs, where the trainer
    measured both."""
    a_error, b_error = _stderr(a), _stderr(b)
    return None if a_error is None or b_error is None else math.hypot(a_error, b_error)


def _fid_rise(
    scored: Sequence[Milestone], t: Mapping[str, float]
) -> tuple[float, float | None] | None:
    """The last of `scored` against the best before it: (that best, the standard error of
    the difference) if FID rose above `fid_ratio` times it and beyond `fid_noise_z`
    standard errors where the trainer measured them; else None."""
    best_at = min(scored[:-1], key=lambda h: h["fid"])
    best, current = best_at["fid"], scored[-1]["fid"]
    if best <= 0 or current <= t["fid_ratio"] * best:
        return None
    noise = _difference_noise(scored[-1], best_at)
    if noise is not None and current - best <= t["fid_noise_z"] * noise:
        return None
    return best, noise


def _recovering(scored: Sequence[Milestone], t: Mapping[str, float]) -> bool:
    """Whether the last FID fell from the one before by more than `fid_noise_z` standard
    errors of the difference: a run on its way back needs no rollback. (A healthy image
    GAN, 55 -> 141 -> 81 -> 31, was rolled back at 81; the evaluation zoo's
    gan-digits-minimax-strong-discriminator reference, seed 5 — so said so.) Without the
    trainer's standard errors a fall cannot be told from noise: not judged."""
    before, now = scored[-2], scored[-1]
    noise = _difference_noise(before, now)
    return noise is not None and before["fid"] - now["fid"] > t["fid_noise_z"] * noise


def fid(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    """FID above `fid_ratio` times its best, and — where the trainer measured FID's
    standard error — by more than `fid_noise_z` standard errors of the difference; acted
    on (warning) only when the milestone before rose too and this one is not on its way
    back down (`_recovering`). A healthy image GAN's FID on a few hundred samples swings by
    more than 25% from one milestone to the next, and one swing passed even the
    standard-error test (the evaluation zoo's healthy-gan-digits: 58 -> 110 -> 61, 2.3
    standard errors) and drew a rollback; one milestone's rise is reported (info), and its
    milestone is no rollback target."""
    scored = [h for h in history if "fid" in h and math.isfinite(h["fid"])]
    if len(scored) <= t["fid_warmup"] or scored[-1] is not history[-1]:
        return []
    rise = _fid_rise(scored, t)
    if rise is None:
        return []
    best, noise = rise
    current = scored[-1]["fid"]
    confirmed = (
        len(scored) - 1 > t["fid_warmup"]
        and _fid_rise(scored[:-1], t) is not None
        and not _recovering(scored, t)
    )
    return [
        Finding(
            FindingKind.FID_REGRESSION,
            Severity.WARNING if confirmed else Severity.INFO,
            f"FID rose to {current:.4g} from its best {best:.4g}"
            + (f" (+/- {noise:.2g})" if noise is not None else "")
            + ("" if confirmed else " (acted on if the next milestone confirms it)"),
            {
                "step": history[-1]["step"],
                "fid": current,
                "best": best,
                "stderr": noise,
                "extractor": history[-1].get("extractor"),
            },
        )
    ]


def ema(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    m = history[-1]
    stale = m.get("ema_init_weight")
    if stale is None or stale < t["ema_init_weight"]:
        return []
    return [
        Finding(
            FindingKind.STALE_EMA,
            Severity.WARNING,
            f"the EMA weights used for sampling are still {stale:.0%} their random "
            f"initialisation at step {m['step']}: samples and FID show almost nothing learned",
            {"step": m["step"], "ema_init_weight": stale, "fid": m.get("fid")},
        )
    ]


def vae(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    """Posterior collapse: (nearly) every latent unit inactive while the reconstruction is
    no better than a decoder that ignores the latent scores. A VAE with a wide latent
    prunes most of its units as it trains while its reconstruction keeps improving: that
    is not collapse (without the trainer's baseline, the unit count alone decides). Nor is
    the first window: fresh from their initialisation the units start inactive and wake as
    the decoder learns to use them (the VAE example, 100 steps in: 0 of 16 active, its
    reconstruction at the latent-free decoder's; 11 of 16 at step 200)."""
    m = history[-1]
    if "active_units" not in m or not m.get("latent_dims") or first_window(history):
        return []
    active, dims = int(m["active_units"]), int(m["latent_dims"])
    if active >= t["active_fraction"] * dims:
        return []
    reconstruction, baseline = m.get("reconstruction_loss"), m.get("reconstruction_baseline")
    if (
        isinstance(reconstruction, int | float)
        and isinstance(baseline, int | float)
        and baseline > 0
        and reconstruction < t["collapse_reconstruction_ratio"] * baseline
    ):
        return []
    return [
        Finding(
            FindingKind.POSTERIOR_COLLAPSE,
            Severity.CRITICAL,
            f"{active} of {dims} latent units are active; KL {m.get('kl', 0):.3g} nats"
            + (
                f"; reconstruction {reconstruction:.4g}, the latent-free decoder's {baseline:.4g}"
                if isinstance(reconstruction, int | float) and isinstance(baseline, int | float)
                else ""
            ),
            {
                "step": m["step"],
                "active_units": active,
                "latent_dims": dims,
                "kl": m.get("kl"),
                "kl_weight": m.get("kl_weight"),
                "reconstruction_loss": reconstruction,
                "reconstruction_baseline": baseline,
            },
        )
    ]


def attention(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    """Attention entropy collapse: the heads of every layer one-hot on average (a
    transformer's own figure, or a program's that reports it)."""
    m = history[-1]
    spread = m.get("attention_entropy_ratio")
    if spread is None or spread >= t["attention_entropy_ratio"]:
        return []
    return [
        Finding(
            FindingKind.ATTENTION_COLLAPSE,
            Severity.CRITICAL,
            f"attention has collapsed at step {m['step']}: its entropy is {spread:.1%} of "
            "uniform attention's (each query looks at about one key); the learning rate is "
            "too high for this model, which trains on, far worse than it could",
            {
                "step": m["step"],
                "attention_entropy_ratio": spread,
                "validation_loss": m.get("validation_loss"),
            },
        )
    ]


def overfitting(history: Sequence[Milestone], t: Mapping[str, float]) -> list[Finding]:
    """Validation loss up twice in a row and above its best by the gap, while the
    training loss falls: a single noisy evaluation is not overfitting."""
    scored = [h for h in history if "validation_loss" in h]
    if len(scored) < 3 or scored[-1] is not history[-1]:
        return []
    values = [h["validation_loss"] for h in scored]
    best, current = min(values), values[-1]
    rising = values[-1] > values[-2] > values[-3]
    before, after = (h.get("loss_mean", {}).get("model") for h in scored[-2:])
    falling = before is not None and after is not None and after < before
    if rising and falling and current - best > t["overfit_gap"]:
        return [
            Finding(
                FindingKind.OVERFITTING,
                Severity.WARNING,
                f"validation loss {current:.4g} rose above its best {best:.4g} while training loss fell",
                {"step": history[-1]["step"], "validation_loss": current, "best": best},
            )
        ]
    return []
