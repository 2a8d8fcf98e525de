"""The primitive remediation actions (pure): what each changes in a job's spec and which
commands it sends to the trainer, with the guards that make one impossible (no room left
in the run, a rate under the floor, a change back to a value an earlier action left).
policy.py decides which rung to take; this module says what taking it means."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LR_FLOOR = 1e-6
# The rate check's probe (`probe_learning_rate`): the families with a held-out objective
# it judges on (a user's program: where it says it has one, by declaring the action, as
# gentrain-sdk's callbacks do), the share of the run that must remain for a new rate to
# pay off, and its compute: RATE_CHECK_BUDGET of the run's steps over its candidates.
RATE_CHECK_FAMILIES = ("transformer", "diffusion", "vae", "custom")
RATE_CHECK_UNTIL = 0.3  # of the run still to come: a new rate needs steps to pay off
PROBE_CANDIDATES = 2  # the trainer's PROBE_FACTORS (a third, x100, only when x10 wins)
RATE_CHECK_BUDGET = 0.05  # of the run's steps per check, all candidates together
# The order in which switch_gan_loss moves away from a loss.
NEXT_GAN_LOSS = {
    "minimax": "non_saturating",
    "non_saturating": "hinge",
    "least_squares": "hinge",
    "hinge": "wgan_gp",
    "wgan_gp": None,
}
# WGAN-GP's penalty weight, as Gulrajani et al. (2017) set it for every experiment, and
# the family's default: what enable_gradient_penalty restores.
GRADIENT_PENALTY_WEIGHT = 10.0
HP = "training.hyperparameters."
TRANSFORMER_BETA2 = 0.95  # the largest beta2 lower_beta2 leaves (GPT-3's and PaLM-era value)


@dataclass
class Change:
    field: str
    old: Any
    new: Any


def get(spec: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of the spec, or None where any part is missing."""
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


DEFAULTS = {"gradientClip": 0.0, "ganLoss": "non_saturating", "klSchedule": "none", "freeBits": 0.0}


def hp(spec: Mapping[str, Any], name: str, family_defaults: Mapping[str, Any]) -> Any:
    """A hyperparameter as the trainer runs it: the spec's, else the family's default."""
    value = get(spec, HP + name)
    return value if value is not None else family_defaults.get(name, DEFAULTS.get(name))


def extra_discriminator_steps(spec: Mapping[str, Any], family_defaults: Mapping[str, Any]) -> bool:
    """Several discriminator steps per generator step under a loss other than WGAN's
    (several critic steps are WGAN's recipe; with any other loss they hand the
    discriminator the game)."""
    steps = int(hp(spec, "discriminatorSteps", family_defaults) or 1)
    return steps > 1 and hp(spec, "ganLoss", family_defaults) != "wgan_gp"


def faster_discriminator(spec: Mapping[str, Any], family_defaults: Mapping[str, Any]) -> bool:
    g = hp(spec, "generatorLearningRate", family_defaults)
    d = hp(spec, "discriminatorLearningRate", family_defaults)
    return float(g) < float(d)


def tilted_towards_discriminator(
    spec: Mapping[str, Any], family_defaults: Mapping[str, Any]
) -> bool:
    """Whether the spec itself hands the discriminator the game, in a way the first rungs of
    DiscriminatorOverpowering undo: the saturating (minimax) loss, a discriminator rate
    above the generator's, or several discriminator steps under a loss other than WGAN's."""
    return spec["model"]["family"] == "gan" and (
        hp(spec, "ganLoss", family_defaults) == "minimax"
        or extra_discriminator_steps(spec, family_defaults)
        or faster_discriminator(spec, family_defaults)
    )


def learning_rate_fields(family: str) -> list[str]:
    return (
        ["generatorLearningRate", "discriminatorLearningRate"]
        if family == "gan"
        else ["learningRate"]
    )


def adopt_search(
    spec: Mapping[str, Any], factor: float, family_defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Change]]:
    """The spec with the rates a trainer's learning-rate search chose (the configured
    rates times `factor`, computed as the trainer computes them), and the changes."""
    changes = [
        Change(HP + name, old, old * factor)
        for name in learning_rate_fields(spec["model"]["family"])
        if (old := hp(spec, name, family_defaults)) is not None and factor != 1.0
    ]
    return apply_changes(spec, changes), changes


def apply_changes(spec: Mapping[str, Any], changes: Sequence[Change]) -> dict[str, Any]:
    """The spec with `changes` applied (a new dict)."""
    new = copy.deepcopy(dict(spec))
    for change in changes:
        node = new
        *parents, leaf = change.field.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = change.new
    return new


def plan_actions(
    actions: list[str],
    spec: Mapping[str, Any],
    family_defaults: Mapping[str, Any],
    context: Mapping[str, Any],
    forbidden: set[tuple[str, Any]],
) -> tuple[list[Change], list[dict[str, Any]]] | None:
    """The changes and commands of one rung, or None if a guard forbids it."""
    family = spec["model"]["family"]
    changes: list[Change] = []
    commands: list[dict[str, Any]] = []

    def change(name: str, new: Any) -> bool:
        old = hp(spec, name, family_defaults)
        if old == new:
            return True
        if (HP + name, new) in forbidden:
            return False
        changes.append(Change(HP + name, old, new))
        return True

    def scale(name: str, factor: float) -> bool:
        old = hp(spec, name, family_defaults)
        if old is None or old * factor < LR_FLOOR:
            return False
        return change(name, old * factor)

    def halve(name: str) -> bool:
        return scale(name, 0.5)

    def learning_rates() -> list[str]:
        return learning_rate_fields(family)

    # Rolling back or resetting needs room to recover: not in the last fifth of the run;
    # starting afresh needs at least half of it.
    remaining = float(context.get("remaining_fraction", 1.0))
    room = remaining >= 0.2

    for action in actions:
        ok = True
        if action == "lower_lr":
            ok = all(halve(n) for n in learning_rates())
        elif action == "cut_lr":
            # A GAN's rates are cut tenfold once. What finds them far too high (weights
            # moving 1.25% per step with no sample near the data, an explosion with grown
            # weights) cannot tell 3x the healthy rate from 10x (calibration 25-mode grid:
            # 0.009-0.014 per step at 3x, 0.013-0.022 at 10x), so a second cut takes a rate
            # a first cut set right down to a fraction of it: every one measured ended at 0
            # to 5 modes (calibration grid at 30x, cut to 3x at 500 and to 0.3x at 1,500:
            # 5 and 2 of 25 against references 13 and 19; ten evaluation rows of the grid at
            # 20x, sessions 39-41, 0 to 4 of 25 — an evaluation case, seen). Session 42.
            again = family == "gan" and bool(context.get("rates_cut_before"))
            ok = not again and all(scale(n, 0.1) for n in learning_rates())
        elif action == "lower_discriminator_lr":
            ok = family == "gan" and halve("discriminatorLearningRate")
        elif action == "one_discriminator_step":
            ok = family == "gan" and extra_discriminator_steps(spec, family_defaults)
            ok = ok and change("discriminatorSteps", 1)
        elif action == "balance_learning_rates":
            # A generator learning slower than its discriminator gets the same rate. Where
            # it already has it, this is "not possible", and so is its rung: the game is
            # not tilted by the rates, and the fresh start with another loss is passed over
            # for a slower discriminator. Measured (session 36), with "already balanced"
            # read as done instead: the evaluation zoo's ring GAN with five discriminator
            # steps, seed 0, restarted with the non-saturating loss at 2,000 of 4,000 and
            # ended with 0 modes against 3 left alone; the healthy 25-mode hinge GAN, seed
            # 2, was restarted with WGAN-GP at 400 (0 modes either way). No calibration run
            # reaches this rung with equal rates.
            d = hp(spec, "discriminatorLearningRate", family_defaults)
            ok = (
                family == "gan"
                and faster_discriminator(spec, family_defaults)
                and change("generatorLearningRate", d)
            )
        elif action == "enable_clipping":
            clip = float(hp(spec, "gradientClip", family_defaults) or 0)
            ok = change("gradientClip", 1.0 if clip <= 0 else clip / 2)
        elif action == "switch_gan_loss":
            following = NEXT_GAN_LOSS.get(str(hp(spec, "ganLoss", family_defaults)))
            ok = family == "gan" and following is not None and change("ganLoss", following)
        elif action == "enable_gradient_penalty":
            # A Wasserstein critic without a working penalty: the weight back to the
            # paper's. Not possible where the loss is another, or the weight is already
            # there (the critic is then unconstrained for some other cause).
            weight = float(hp(spec, "gradientPenaltyWeight", family_defaults) or 0.0)
            ok = (
                family == "gan"
                and hp(spec, "ganLoss", family_defaults) == "wgan_gp"
                and weight < GRADIENT_PENALTY_WEIGHT
                and change("gradientPenaltyWeight", GRADIENT_PENALTY_WEIGHT)
            )
        elif action == "reset_discriminator":
            if family != "gan" or not room:
                ok = False
            else:
                g = hp(spec, "generatorLearningRate", family_defaults)
                d = hp(spec, "discriminatorLearningRate", family_defaults)
                ok = change("ganLoss", "non_saturating") and (
                    d <= g or change("discriminatorLearningRate", g)
                )
                commands.append({"action": "reset_discriminator"})
        elif action == "reinitialize":
            ok = remaining >= 0.5
            commands.append({"action": "reinitialize"})
        elif action == "search_learning_rate":
            # Probe steps per candidate: a quarter of a milestone interval, 10 to 50.
            probe = min(50, max(10, int(context.get("interval", 100)) // 4))
            ok = family != "gan"
            search: dict[str, Any] = {"action": "search_learning_rate", "searchSteps": probe}
            if context.get("search_ceiling") is not None:  # weight_growth.search_ceiling
                # (at least the API's minimum; a search tries x0.003 at the least)
                search["maxFactor"] = max(0.001, round(float(context["search_ceiling"]), 4))
            commands.append(search)
        elif action == "probe_learning_rate":
            per_candidate = (
                RATE_CHECK_BUDGET * float(context.get("max_steps", 0)) / PROBE_CANDIDATES
            )
            # A new rate needs steps to pay off.
            ok = family in RATE_CHECK_FAMILIES and remaining >= RATE_CHECK_UNTIL
            commands.append(
                {
                    "action": "probe_learning_rate",
                    "searchSteps": min(50, max(5, int(per_candidate))),
                }
            )
        elif action in ("rollback", "rollback_skip_batches"):
            target = context.get("last_healthy_checkpoint")
            if target is None or not room:
                ok = False
            else:
                # PaLM's remedy: back to before the spikes, past every batch seen since
                # (one per step): the bad stretch is not fed to the model again. (The
                # built-in trainer also skips what it read after this milestone.)
                since = int(context.get("step", 0)) - int(target)
                interval = int(context.get("interval", 0))
                skip = max(interval, since) if action == "rollback_skip_batches" else 0
                commands.insert(0, {"action": "rollback", "step": int(target), "skipBatches": skip})
        elif action == "kl_annealing":
            ok = (
                family == "vae"
                and change("klSchedule", "linear")
                and change("klAnnealSteps", max(1, 4 * int(context.get("interval", 250))))
            )
        elif action == "enable_warmup":
            # A linear warm-up over at least 5% of the steps left (from where the change
            # takes effect, a fresh start's step 0).
            left = float(context.get("max_steps", 0)) * remaining
            ok = family == "transformer" and change(
                "warmupSteps",
                max(int(hp(spec, "warmupSteps", family_defaults) or 0), max(10, int(0.05 * left))),
            )
        elif action == "lower_beta2":
            # Adam's second moments averaged over ~1,000 steps (beta2 0.999) lag a
            # transformer's fast-changing gradients: updates blow up at a rate that suits
            # it (Molybog et al., 2023). A fresh start undoes that cause where the spec set
            # it: beta2 down to TRANSFORMER_BETA2, the family's default (nothing where it
            # is at or below).
            beta2 = float(hp(spec, "beta2", family_defaults) or TRANSFORMER_BETA2)
            ok = family == "transformer" and (
                beta2 <= TRANSFORMER_BETA2 or change("beta2", TRANSFORMER_BETA2)
            )
        elif action == "ema_warmup":
            ok = family == "diffusion" and change(
                "emaWarmupSteps", max(int(hp(spec, "emaWarmupSteps", family_defaults) or 0), 200)
            )
        elif action == "free_bits":
            ok = (
                family == "vae"
                and change("freeBits", 0.25)
                and change(
                    "klWeight", min(1.0, float(hp(spec, "klWeight", family_defaults) or 1.0))
                )
            )
        else:
            ok = False
        if not ok:
            return None
    if not changes and not commands:
        return None
    return changes, commands
