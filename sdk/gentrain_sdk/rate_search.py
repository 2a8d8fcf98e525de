"""The `search_learning_rate` command's range test (after Smith, 2017), and the
`probe_learning_rate` command's rate check, for the built-in trainer and for a program's
own model alike.

From the weights in hand (usually the fresh ones a `reinitialize` just drew), every
candidate — the configured rate times one of FACTORS — trains the same few batches, and
is scored by its mean loss over the last third of those steps. A run that is not learning
because its rate is tenfold or a hundredfold too high thus gets a rate of the right size
in one go, rather than a tenfold cut per milestone with a fresh start each time (measured
on the zoo: a transformer at 150x its rate needed two such cuts and ended 16% short of
its healthy reference).

So short a probe favours small rates (the short-horizon bias, Wu et al., 2018): the
rates that pay off over hundreds of steps are still on the plateau after 25. Measured on
the zoo's transformer, fresh for its last 600 steps with a 30-step warm-up: the probe's
winners were 0.0009-0.003 (and 0.0015 from the run at 25x), which end at validation loss
1.74 / 1.48 (1.61); the next candidate up, 0.003-0.009 (0.005), ends at 1.44-1.48; the
cliff is near 0.015 (2.24). So when the next larger candidate's probe loss is within
STEP_UP of the winner's, the rate between the two is chosen (their geometric mean) — a
candidate that is already unstable in its first steps is not (the DDPM at 50x: x0.3
scored 36% above x0.1, which was kept). Between, not the larger one: where the long run's
best rate lies in that bracket depends on the model, and no probe this short can tell. A
one-layer transformer ends worse at 3x its healthy rate (calibration
`transformer-one-layer-rate-10x-too-high`: afresh at the larger candidate, 0.009, it ended
at 1.68-1.75 against 1.49-1.52 healthy; at the rate between, 0.0052, at 1.50-1.66), where
the two-layer ones of the calibration set end better (10x with warm-up, seed 1: 1.71 at
the larger candidate, 1.43 between). The price: the 150x transformer at 1.52-1.54 instead
of 1.42-1.45 (healthy 1.43-1.45), and a DDPM at 10x at FID 27-36 instead of 30 (healthy
32-36), still rescued (docs/diagnosis-calibration.md, session 43).

The search trains no step of the run: the weights and the optimizer are put back, and the
chosen factor scales the configured rates from then on.

The rate check (`probe_torch`, the built-in trainer's `learning_rate_search.probe`) asks
of a run that is learning whether another rate would do clearly better from here: from the
run's current weights, the rate in force and ten times it train the same batches, and each
is judged on held-out data; the rate moves only if the other wins by PROBE_MARGIN_UP.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Ten times the configured rate too: a run that learned nothing because its rate is far
# too low (a transformer at a fortieth of its rate was still above the unigram loss at
# step 100) is searched up, not cut (the calibration zoo's transformer-rate-40x-too-low).
FACTORS = (10.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
STEP_UP = 0.10  # relative probe loss within which the rate up to the next larger one is taken
# A range whose largest candidate wins has not bracketed the best rate: a rate a hundred
# times too low is still ten times too low at x10 (calibration zoo: a transformer at a
# fortieth of its rate, searched up to x10 and no further, ended at 1.92 against 1.43
# healthy). The range is then extended above, once; a run whose x10 does not win pays
# nothing for it.
BEYOND = (30.0, 100.0)
# The rate check: from the run's current weights, a tenfold step up. Not down: so short a
# probe favours a lower rate whatever the right one (a tenth of a healthy transformer's
# rate "won" by 2.6% at step 200 of 800, a healthy DDPM's by 1.7: the first dip of an
# annealing that costs more than it gains over the rest of the run), no calibration case
# needed it (rates too high are NotLearning's and AttentionCollapse's, whose fresh start
# searches down), and the one run it moved down ended worse than left alone (a DDPM with a
# linear schedule, FID 208 against 187).
PROBE_FACTORS = (10.0, 1.0)
# x10 winning the check clearly: the rate may be a hundred times too low (see BEYOND).
PROBE_BEYOND = (100.0,)
# A candidate must beat the rate in force on held-out data by this much (relative) to be
# taken. A higher rate never wins by accident (x10 is 4-45% worse on every healthy run of
# the calibration set).
PROBE_MARGIN_UP = 0.02
# The held-out batches a program's rate check judges each candidate on (its validation
# data's first ones, the same for every candidate): a bounded cost per candidate.
HELD_OUT_BATCHES = 8


def within(factors: Sequence[float], max_factor: float | None) -> tuple[float, ...]:
    """The candidates of `factors` at or under `max_factor`, and the bound itself where it
    falls between two of them (all of them for none; the smallest where every one is
    over it): a search told that the rate in force is too high by at least so much never
    tries, or chooses, a rate above that — and can choose the bound, the largest rate it
    allows, where the candidates are 3.3x apart (measured on the 12 bounded searches of
    both zoos: each chose the bound, FID 3.2 lower on average on the evaluation zoo, 0.6 on
    calibration, no rescue gained or lost; docs/diagnosis-calibration.md, session 32)."""
    if max_factor is None:
        return tuple(factors)
    kept = tuple(f for f in factors if f <= max_factor)
    if not kept:
        return (min(factors),)
    if max_factor < max(factors) and max_factor not in kept:
        return (max_factor, *kept)
    return kept


def beyond(
    losses: dict[float, float],
    chosen: float,
    above: Sequence[float] = BEYOND,
    max_factor: float | None = None,
) -> tuple[float, ...]:
    """The factors to try next: `above` (none over `max_factor`), when the largest
    candidate tried (and larger than x1) was chosen; otherwise none."""
    top = max(losses)
    if chosen != top or top <= 1.0 or any(f in losses for f in above):
        return ()
    return tuple(f for f in above if top < f <= (max_factor or math.inf))


@dataclass
class SearchResult:
    losses: dict[float, float]  # factor -> mean loss over the last third of its steps
    factor: float  # the chosen one
    steps: int  # steps trained per candidate

    @property
    def trained_steps(self) -> int:
        return self.steps * len(self.losses)


def tail_mean(losses: Sequence[float]) -> float:
    """A candidate's score: its mean loss over the last third of its steps (+inf if any
    of them is not finite: it diverged)."""
    tail = list(losses[-max(1, len(losses) // 3) :])
    return statistics.mean(tail) if tail and all(math.isfinite(v) for v in tail) else math.inf


def choose(losses: dict[float, float]) -> float:
    """The winner (on a tie, e.g. every candidate diverged, the smallest rate: the safer
    guess), or, where the next larger candidate up to the configured rate scored within
    STEP_UP of the winner, the rate halfway between them on a log scale (a rate above the
    configured one must win outright). A search follows a finding on the run at the
    configured rate (x1), so where x1 is that close, the rate is taken halfway down to
    the next smaller candidate instead, if that one is within STEP_UP too: a probe flat
    from there up to a rate known to fail cannot vouch for the winner (the evaluation
    zoo's one-layer transformer, flat within 0.5% over x0.1-x1, afresh at x0.55 ended 20%
    short of its healthy run; docs/diagnosis-calibration.md, session 44)."""
    best = min(sorted(losses), key=lambda f: losses[f])
    if not math.isfinite(losses[best]):
        return best

    def close(factor: float) -> bool:
        return losses[factor] - losses[best] <= STEP_UP * abs(losses[best])

    larger = [f for f in losses if best < f <= 1.0]
    if larger and close(up := min(larger)):
        if up < 1.0:
            return math.sqrt(best * up)
        # The next larger one is the configured rate: the rate the run was just found
        # failing at. The probe could not tell it from the winner, so it cannot tell the
        # winner safe either: the rate between the winner and the next smaller candidate,
        # where that one too scored within STEP_UP.
        smaller = [f for f in losses if f < best]
        if smaller and close(down := max(smaller)):
            return math.sqrt(best * down)
    return best


def choose_probe(losses: dict[float, float], margin: float = PROBE_MARGIN_UP) -> float:
    """The candidate with the lowest held-out loss if it beats the configured rate's by
    more than `margin` (relative), else the configured rate (x1): a healthy run should be
    left alone, and a rate in force that diverged in the probe is for the divergence
    rules, not a reason to go higher."""
    current = losses.get(1.0, math.inf)
    others = {f: v for f, v in losses.items() if f != 1.0 and math.isfinite(v)}
    if not others or not math.isfinite(current):
        return 1.0
    best = min(sorted(others), key=lambda f: others[f])
    return best if others[best] < current * (1 - margin) else 1.0


def scale_rates(optimizers: Iterable[Any], schedulers: Iterable[Any], factor: float) -> None:
    """Every rate of `optimizers` times `factor`, and the base rates of `schedulers` (a
    schedule keeps its shape, from the new peak): how a searched or changed rate reaches
    a framework's optimizer."""
    for scheduler in schedulers:
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor


def search_torch(
    model: Any,
    optimizer: Any,
    loss_of: Callable[[Any], Any],
    batches: Sequence[Any],
    *,
    clip: float | None = None,
    factors: Sequence[float] = FACTORS,
    max_factor: float | None = None,
) -> SearchResult:
    """The range test on a torch model: from its current weights and optimizer state,
    each candidate (the optimizer's rates times a factor, none over `max_factor`: the
    command's) trains `batches` in order — `loss_of(batch)` is the loss to minimise — with
    the same random state; then weights, optimizer state and rates are put back. Needs
    torch (the rest of the SDK does not)."""
    if not batches:
        raise ValueError("search: no batches to train the candidates on")
    losses = _candidates(
        model,
        optimizer,
        loss_of,
        batches,
        clip,
        within(factors, max_factor),
        lambda first: beyond(first, choose(first), max_factor=max_factor),
        tail_mean,
    )
    return SearchResult(losses, choose(losses), len(batches))


def probe_torch(
    model: Any,
    optimizer: Any,
    loss_of: Callable[[Any], Any],
    batches: Sequence[Any],
    held_out: Sequence[Any],
    *,
    clip: float | None = None,
) -> SearchResult:
    """The rate check on a torch model: from its current weights and optimizer state, the
    rates in force times each of PROBE_FACTORS (and PROBE_BEYOND where x10 wins clearly)
    train `batches` in order with the same random state; each candidate is then judged by
    the mean of `loss_of(batch)` over the `held_out` batches (data the run does not train
    on), in eval mode, without gradients, with the same random state for every candidate
    (a VAE's or a diffusion model's noise). The rate in force is kept unless another wins
    by PROBE_MARGIN_UP (`choose_probe`). Weights, optimizer state and rates are put back.
    Unlike the built-in trainer, it leaves the optimizer's moments as they are when the
    rate moves tenfold (how a program's optimizer restarts is the program's)."""
    import torch

    if not batches:
        raise ValueError("probe: no batches to train the candidates on")
    if not held_out:
        raise ValueError("probe: no held-out batches to judge the candidates on")
    generator = torch.get_rng_state()  # the held-out noise: the same for every candidate

    def judged(trained: list[float]) -> float:
        if not all(map(math.isfinite, trained)):
            return math.inf
        model.eval()
        torch.set_rng_state(generator)
        with torch.no_grad():
            mean = statistics.mean(float(loss_of(batch)) for batch in held_out)
        return mean if math.isfinite(mean) else math.inf

    losses = _candidates(
        model,
        optimizer,
        loss_of,
        batches,
        clip,
        PROBE_FACTORS,
        lambda first: beyond(first, choose_probe(first), PROBE_BEYOND),
        judged,
    )
    return SearchResult(losses, choose_probe(losses), len(batches))


def _candidates(
    model: Any,
    optimizer: Any,
    loss_of: Callable[[Any], Any],
    batches: Sequence[Any],
    clip: float | None,
    first: Sequence[float],
    then: Callable[[dict[float, float]], Sequence[float]],
    score: Callable[[list[float]], float],
) -> dict[float, float]:
    """Each factor of `first`, then of `then(their scores)`, trains `batches` from the
    model's current weights and optimizer state with the same random state, and is scored
    by `score(its training losses)`; then weights, optimizer state and rates are put back.
    Needs torch (imported here: the rest of the SDK does not)."""
    import torch

    start = _Start(model, optimizer)
    losses: dict[float, float] = {}

    def train(factors: Sequence[float]) -> None:
        for factor in factors:
            start.restore(rate_factor=factor)
            losses[float(factor)] = score(_train(model, optimizer, loss_of, batches, clip))

    # A milestone may be taken inside the framework's evaluation (Lightning validates
    # under inference mode): the candidates train, so gradients are on here.
    with torch.inference_mode(False), torch.enable_grad():
        try:
            train(first)
            train(then(losses))
        finally:
            start.restore()
    return losses


class _Start:
    """What a search puts back: the weights, the optimizer's state (its rates with it),
    the random state, and the model's train or eval mode."""

    def __init__(self, model: Any, optimizer: Any) -> None:
        import torch

        self.model, self.optimizer = model, optimizer
        self.weights = copy.deepcopy(model.state_dict())
        self.state = copy.deepcopy(optimizer.state_dict())
        self.generator = torch.get_rng_state()
        self.training = bool(model.training)  # an evaluation may have left it in eval mode

    def restore(self, rate_factor: float | None = None) -> None:
        """As it was; with `rate_factor`, ready to train a candidate at that factor."""
        import torch

        self.model.load_state_dict(self.weights)
        # A copy each time: the optimizer takes the state's tensors as they are, and a
        # candidate's steps would change them for the next one.
        self.optimizer.load_state_dict(copy.deepcopy(self.state))
        self.optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(self.generator)  # dropout and noise: the same for every candidate
        if rate_factor is None:
            self.model.train(self.training)
            return
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] *= rate_factor


def _train(
    model: Any,
    optimizer: Any,
    loss_of: Callable[[Any], Any],
    batches: Sequence[Any],
    clip: float | None,
) -> list[float]:
    """One candidate's steps; its losses."""
    import torch

    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    seen = []
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        loss.backward()
        if clip is not None and clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, clip)
        optimizer.step()
        seen.append(float(loss.detach()))
    return seen
