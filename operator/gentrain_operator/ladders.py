"""The ladders: for each finding, the rungs of remediation tried in turn (pure data and
the choice of ladder for a finding and a spec). A rung is one or more primitive actions
applied together; policy.py plans and guards them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .diagnosis import Finding

PRIORITY = (
    "NonFiniteLoss",
    "LossSpike",
    "Divergence",
    "NotLearning",
    "AttentionCollapse",
    "WeightGrowth",
    "ModeCollapse",
    "PosteriorCollapse",
    # Before the gradients: a discriminator right nearly every time has all but stopped
    # learning, so its median gradient vanishes and the window's largest reads as an
    # explosion against it (evaluation zoo's image GAN, first milestone: accuracy 0.99,
    # largest/median 150-300x); clipping treats that symptom and the game stays lost.
    # Not where the weights grew too and the spec does not tilt the game: see ordered().
    "DiscriminatorOverpowering",
    # Before the gradients too: an unconstrained critic's gradients grow with it, and
    # clipping them leaves the cause in the spec.
    "UnconstrainedCritic",
    "ExplodingGradients",
    "FIDRegression",
    "StaleEMA",
    "Overfitting",
)
# Findings about how the run began, not about the window they are reported with (weight
# growth is a figure of the weights' first updates, exported at every milestone from then
# on): they make no checkpoint suspect as a rollback target.
ABOUT_THE_START = frozenset({"WeightGrowth"})

Ladder = list[list[str]]

# Afresh at a searched rate with clipping, then again from the rate the search chose; a
# transformer also gets a warm-up (see NotLearning below), and a beta2 of 0.999 — slow
# second moments, a cause of early blow-ups the spec itself set — back to 0.95 (measured
# on the evaluation zoo's transformer at 8x with beta2 0.999: afresh at 0.0048 for 500
# steps ends at validation loss 1.51-1.83 over four seeds with 0.999, 1.49-1.54 with 0.95).
FRESH_START_WITH_WARMUP: Ladder = [
    ["reinitialize", "search_learning_rate", "enable_clipping", "enable_warmup", "lower_beta2"],
    ["reinitialize", "search_learning_rate"],
]

LADDERS: dict[str, Ladder] = {
    "NonFiniteLoss": [["rollback", "lower_lr", "enable_clipping"], ["rollback", "lower_lr"]],
    "LossSpike": [
        ["rollback_skip_batches", "enable_clipping"],
        ["rollback_skip_batches", "lower_lr"],
    ],
    "Divergence": [["lower_lr"], ["rollback", "cut_lr"]],
    # A loss still at what a model that learned nothing scores: the weights a far too
    # high rate left behind do not recover at a lower one (measured on the zoo: a tenfold
    # cut alone left a DDPM at 50x its LR dead, FID 883, and a transformer at 25x worse,
    # validation loss 2.58 against 2.47 untouched). Start afresh, with clipping, at a rate
    # a short range test picks from x10 down to x0.003 (a fixed tenfold cut left a
    # transformer at 150x its rate 15x too high: a second fresh start, half the run gone,
    # 16% short of its healthy loss; and a rate far too LOW learns nothing either: a
    # transformer at a fortieth of its rate sat above the unigram loss at step 100).
    # Still nothing: afresh, searching again from the rate the first search chose (a
    # blind tenfold cut there took the rate 40x too low down to 400x).
    "NotLearning": [
        ["reinitialize", "search_learning_rate", "enable_clipping"],
        ["reinitialize", "search_learning_rate"],
    ],
    # A transformer starts afresh with a warm-up, too: Adam's early steps need it (Liu et
    # al., 2020), and the rates the search finds pay off only with it (measured on the
    # zoo: 0.005 fresh for 600 steps ends at validation loss 2.08 without, 1.45 with 30).
    "NotLearning/transformer": FRESH_START_WITH_WARMUP,
    # Attention that collapsed under a rate far too high does not spread again at a lower
    # one (Zhai et al., 2023: the run needs a fresh start): as for NotLearning.
    "AttentionCollapse": FRESH_START_WITH_WARMUP,
    # A program of the user's may not search a rate, or even start afresh (it says which
    # actions it supports; rungs it lacks are passed over): afresh at a tenth of its
    # rate, else a tenfold cut in place.
    "NotLearning/custom": [
        ["reinitialize", "search_learning_rate", "enable_clipping"],
        ["reinitialize", "cut_lr"],
        ["cut_lr"],
    ],
    "AttentionCollapse/custom": [
        ["reinitialize", "search_learning_rate", "enable_clipping"],
        ["reinitialize", "cut_lr"],
    ],
    # A GAN's losses rank no learning rate (they score a game, not a fit): tenfold cuts.
    "NotLearning/gan": [["reinitialize", "cut_lr", "enable_clipping"], ["reinitialize", "cut_lr"]],
    # Weights that outgrew their initial scale in their first steps: the rate is too high
    # for the model even where it still learns, and a run trained on at a lower rate
    # keeps the weights it grew — afresh, as for NotLearning. A VAE afresh at a tenth:
    # the range test ranks nothing before its units wake (PosteriorCollapse below).
    # Still growing after that: a tenfold cut, not a second search — a search that kept
    # the rate the growth says is too high keeps it again (calibration DDPM at 50x, seed
    # 2: two more fresh starts at the rate kept, FID 36.1 against 31.9 without them).
    "WeightGrowth": [
        ["reinitialize", "search_learning_rate", "enable_clipping"],
        ["reinitialize", "cut_lr"],
    ],
    "WeightGrowth/vae": [["reinitialize", "cut_lr", "enable_clipping"], ["reinitialize", "cut_lr"]],
    # Clipping hides a learning rate that is far too high; if the finding persists, cut
    # the rate tenfold rather than halving it (halving 50x too high leaves it 25x too high).
    "ExplodingGradients": [["enable_clipping"], ["cut_lr"]],
    # A GAN's explosion with weights grown past their initial scale (the finding carries
    # the growth: weight_growth.grown_gan_explodes): the rate, not a stray batch — afresh at
    # a tenth with clipping, as NotLearning/gan, while half the run remains.
    "ExplodingGradients/grown": [["reinitialize", "cut_lr", "enable_clipping"], ["cut_lr"]],
    # A discriminator that wins this early (minimax loss, its LR 10x the generator's) has
    # usually pinned the generator to a few modes already; easing it off in place left 6
    # of 8 on the zoo, starting afresh with the non-saturating loss and the generator at
    # the discriminator's rate recovers them. Later in the run: the same without the
    # restart, then a slower discriminator, then another loss.
    # First, where the spec itself tilts the game (several discriminator steps per
    # generator step without a WGAN critic), that is undone — afresh while half the run
    # remains, for the same reason (calibration ring, five steps, non-saturating loss:
    # undone in place at 500, 4 of 8 modes at seeds 0 and 2; afresh, 8 and 8), else in
    # place; rungs that do not apply to a spec are passed over.
    "DiscriminatorOverpowering": [
        ["reinitialize", "one_discriminator_step"],
        ["one_discriminator_step"],
        ["reinitialize", "switch_gan_loss", "balance_learning_rates"],
        ["switch_gan_loss", "balance_learning_rates"],
        ["lower_discriminator_lr"],
        ["switch_gan_loss"],
    ],
    # A WGAN critic trained without its penalty estimates no distance, and the generator
    # it trained learned nothing worth keeping: afresh with the penalty while half the
    # run remains, else the penalty in place (the critic then has to shrink back to
    # 1-Lipschitz under it).
    "UnconstrainedCritic": [
        ["reinitialize", "enable_gradient_penalty"],
        ["enable_gradient_penalty"],
    ],
    # While diversity is still falling, ease the discriminator off; once the generator has
    # collapsed, hyperparameter changes alone do not bring modes back (see the closed-loop
    # study): reset the discriminator, or roll back to before the collapse.
    "ModeCollapse": [
        ["one_discriminator_step"],
        ["lower_discriminator_lr"],
        ["switch_gan_loss"],
        ["reset_discriminator"],
        ["rollback", "reset_discriminator"],
    ],
    "ModeCollapse/collapsed": [["reset_discriminator"], ["rollback", "reset_discriminator"]],
    "FIDRegression": [["rollback", "lower_lr"], ["rollback", "cut_lr"]],
    "PosteriorCollapse": [["kl_annealing"], ["free_bits"]],
    # Units asleep and a reconstruction no better than the mean image's, with the KL at
    # its natural weight (1 or less): a rate far too low looks just like that — nothing
    # learned yet — and easing the KL does not help it (calibration zoo: a VAE at 1/50 of
    # its rate was read as collapse at step 500, annealed, given free bits, and rescued
    # only by the scheduled rate check at 1,500, of 2,500). So the rate is checked first;
    # with the KL weighted above 1, the cause is in the spec and is undone first.
    # A rate far too HIGH looks the same too: the units die in the first window and do
    # not wake at a lower rate (calibration zoo, a VAE at 20x: 0 of 16 active from step
    # 250; the evaluation VAE at 30x, lowered to its healthy rate at 500, ended at 25.5
    # against 25.6 left alone and 21.0 healthy). When the probe keeps the rate (so it is
    # not too low), start afresh at a tenth, with clipping: the range test cannot pick
    # that rate, as it ranks nothing before a VAE's units wake (x1 to x0.03 all within
    # 0.6% of each other on the 20x case, 50 steps each; it kept x1).
    "PosteriorCollapse/natural-weight": [
        ["probe_learning_rate"],
        ["reinitialize", "cut_lr", "enable_clipping"],
        ["kl_annealing"],
        ["free_bits"],
    ],
    # The EMA warm-up (decay (1 + t) / (10 + t) up to the target) forgets the random
    # initialisation within ~100 steps even when switched on late.
    "StaleEMA": [["ema_warmup"]],
    "Overfitting": [["lower_lr"]],
}


def _kl_weight(spec: Mapping[str, Any]) -> float:
    hyperparameters = (spec.get("training") or {}).get("hyperparameters") or {}
    return float(hyperparameters.get("klWeight", 1.0))


def ladder(finding: Finding, spec: Mapping[str, Any]) -> Ladder | None:
    rules = ((spec.get("remediation") or {}).get("rules") or {}).get(finding.kind) or {}
    if rules.get("enabled") is False:
        return None
    if rules.get("actions"):
        return [[a] for a in rules["actions"]]
    if finding.kind == "ExplodingGradients" and finding.evidence.get("weights_grown"):
        return LADDERS["ExplodingGradients/grown"]
    if finding.kind == "ModeCollapse" and finding.evidence.get("collapsed"):
        return LADDERS["ModeCollapse/collapsed"]
    if finding.kind == "PosteriorCollapse" and _kl_weight(spec) <= 1.0:
        return LADDERS["PosteriorCollapse/natural-weight"]
    return LADDERS.get(f"{finding.kind}/{spec['model']['family']}") or LADDERS.get(finding.kind)


def ordered(findings: Sequence[Finding], tilted: bool) -> list[Finding]:
    """The findings in PRIORITY's order — but where the spec does not tilt the game
    towards the discriminator (`tilted`: the causes the overpowering ladder's first rungs
    undo) and an explosion comes with weights grown past their initial scale
    (weight_growth.grown_gan_explodes), DiscriminatorOverpowering waits behind the
    explosion. Rates too high for both players let the discriminator win too; with no
    tilt to undo, its ladder has only a slower discriminator and another loss to offer,
    which leave the rate that grew the weights in force. (An unconstrained critic still
    comes before either.) Prompted by the evaluation 25-mode grid at 20x, seed 3: both
    findings at 800, the discriminator slowed, then another loss, 0 of 25 modes at the
    end against 1 left alone, where its other seeds, whose first milestone showed the
    explosion alone, were started afresh at a tenth. What it changed on both sets:
    docs/diagnosis-calibration.md, session 45."""
    grown = any(
        f.kind == "ExplodingGradients" and f.evidence.get("weights_grown") for f in findings
    )

    def rank(finding: Finding) -> float:
        if finding.kind == "DiscriminatorOverpowering" and grown and not tilted:
            return PRIORITY.index("ExplodingGradients") + 0.5
        return PRIORITY.index(finding.kind)

    return sorted((f for f in findings if f.kind in PRIORITY), key=rank)
