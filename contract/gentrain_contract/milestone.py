"""The milestone record: the figures of one checkpoint milestone, as the operator reads
them from a trainer's exposition, diagnoses them, and keeps them in the job's status.

One typed shape for every stage (a TypedDict, so that it is the plain JSON object status
holds and mypy checks every key a rule reads). `KEPT` says which figures survive into
status (`compact`), and a test holds it to this type: a figure the diagnosis reads but
status drops would be evidence a restarted operator never sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast, get_type_hints

ByLabel = dict[str, float]  # a figure per component (loss), per name, per factor...

# The loss components of a two-player game: the built-in GAN family's, and a program's
# that names its losses by role through gentrain-sdk. Each player's loss rises whenever
# the other gains, so a jump in one is the game, not bad data: the rules that read a
# single model's loss (spikes) leave them alone.
ADVERSARIAL_COMPONENTS = frozenset({"generator", "discriminator", "critic"})


class LearningRateSearch(TypedDict):
    losses: dict[str, float]  # by candidate factor; +Inf for one that diverged
    factor: float  # the factor chosen
    steps: int  # the steps the search trained


class Milestone(TypedDict, total=False):
    # identity: which milestone of which trainer process, under which configuration
    step: int
    time: float
    generation: int
    # the step from which that generation applies (absent: from this milestone on)
    generation_step: int
    origin_step: int  # where the weights this window trained were initialised
    trainer_started: float
    # the window's losses and gradients, per component
    nonfinite: int
    nonfinite_losses_since_start: float
    loss_mean: ByLabel
    loss_max: ByLabel
    loss_first: ByLabel
    loss_last: ByLabel
    spikes: ByLabel
    spikes_since_start: ByLabel
    grad_norm_max: ByLabel
    grad_norm_median: ByLabel
    clip_ratio: ByLabel
    grad_clip: float  # the gradient-norm clip in force (0: none)
    update_ratio: ByLabel
    weight_growth: ByLabel  # the built-in trainer's; a program's may have none
    baseline_loss: float
    data_wait_ratio: float | None
    steps_per_second: float
    hyperparameters: dict[str, float | str]
    refused_commands: dict[str, str]
    learning_rate_search: LearningRateSearch
    # GAN
    modes_covered: float
    modes: float
    high_quality_ratio: float
    discriminator_accuracy_ratio: float
    d_real: float | None
    d_fake: float | None
    gan_loss: str  # the objective in force
    gradient_penalty_weight: float  # WGAN-GP's, in force
    critic_gradient_norm: float
    # images
    fid: float
    fid_stderr: float
    kid: float
    precision: float
    recall: float
    inception_score: float
    extractor: str
    # diffusion
    ema_init_weight: float
    # VAE
    kl: float
    kl_weight: float
    reconstruction_loss: float
    reconstruction_baseline: float
    active_units: float
    latent_dims: float
    # transformer
    validation_loss: float
    perplexity: float
    attention_entropy_ratio: float
    # a program's own figures, by the names it reports them under (gentrain-sdk)
    figures: ByLabel
    supported_actions: list[str]  # absent: every action (the built-in trainer)
    # GPU
    gpu_utilization: float
    gpu_memory_ratio: float
    # figures that were not finite (JSON has no NaN): `field` or `field/label`
    nonfinite_figures: list[str]


FIELDS = frozenset(get_type_hints(Milestone))

# Not kept in status: what only the decision at this milestone needs (the search's
# losses become the remediation record; refusals become a condition) or only a dashboard
# shows (the rest are Prometheus series already).
TRANSIENT = frozenset(
    {
        "learning_rate_search",
        "refused_commands",
        "hyperparameters",
        "loss_first",
        "clip_ratio",
        "steps_per_second",
        "inception_score",
        "supported_actions",
        "generation_step",  # becomes the remediation record's appliedFromStep
    }
)
KEPT = FIELDS - TRANSIENT


def compact(record: Milestone) -> Milestone:
    """The figures kept per milestone in status, for the diagnosis after an operator
    restart."""
    return cast(Milestone, {k: v for k, v in record.items() if k in KEPT})


def from_status(item: Mapping[str, Any]) -> Milestone:
    """A record read back from status.milestones: only the fields this type has (a record
    an older operator wrote may carry others)."""
    return cast(Milestone, {k: v for k, v in item.items() if k in FIELDS})
