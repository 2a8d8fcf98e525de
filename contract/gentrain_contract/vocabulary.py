"""The words the API, the operator and the trainer share: families, findings, remediation
actions, one-shot commands and phases. StrEnums, so that a value read from a job's status
or a scrape compares equal to its member, and a misspelt member is an error where it is
written rather than a branch that never runs. The CRD's enums are held to these by a test.
"""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    GAN = "gan"
    VAE = "vae"
    TRANSFORMER = "transformer"
    DIFFUSION = "diffusion"
    CUSTOM = "custom"  # a program of the user's, reporting through gentrain-sdk


class FindingKind(StrEnum):
    """What the diagnosis can find at a milestone (status.findings[].kind)."""

    NON_FINITE_LOSS = "NonFiniteLoss"
    LOSS_SPIKE = "LossSpike"
    DIVERGENCE = "Divergence"
    NOT_LEARNING = "NotLearning"
    ATTENTION_COLLAPSE = "AttentionCollapse"
    WEIGHT_GROWTH = "WeightGrowth"
    MODE_COLLAPSE = "ModeCollapse"
    POSTERIOR_COLLAPSE = "PosteriorCollapse"
    EXPLODING_GRADIENTS = "ExplodingGradients"
    DISCRIMINATOR_OVERPOWERING = "DiscriminatorOverpowering"
    UNCONSTRAINED_CRITIC = "UnconstrainedCritic"
    FID_REGRESSION = "FIDRegression"
    STALE_EMA = "StaleEMA"
    OVERFITTING = "Overfitting"
    PLATEAU = "Plateau"
    GPU_UNDERUTILIZED = "GPUUnderutilized"
    GPU_MEMORY_PRESSURE = "GPUMemoryPressure"
    # Not a fault: the scheduled learning-rate check is recorded under this name.
    LEARNING_RATE_CHECK = "LearningRateCheck"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """A primitive remediation (spec.remediation.allowedActions, status.remediations)."""

    ONE_DISCRIMINATOR_STEP = "one_discriminator_step"
    LOWER_DISCRIMINATOR_LR = "lower_discriminator_lr"
    BALANCE_LEARNING_RATES = "balance_learning_rates"
    LOWER_LR = "lower_lr"
    CUT_LR = "cut_lr"
    ENABLE_CLIPPING = "enable_clipping"
    SWITCH_GAN_LOSS = "switch_gan_loss"
    ENABLE_GRADIENT_PENALTY = "enable_gradient_penalty"
    RESET_DISCRIMINATOR = "reset_discriminator"
    REINITIALIZE = "reinitialize"
    SEARCH_LEARNING_RATE = "search_learning_rate"
    PROBE_LEARNING_RATE = "probe_learning_rate"
    ENABLE_WARMUP = "enable_warmup"
    LOWER_BETA2 = "lower_beta2"
    ROLLBACK = "rollback"
    ROLLBACK_SKIP_BATCHES = "rollback_skip_batches"
    KL_ANNEALING = "kl_annealing"
    FREE_BITS = "free_bits"
    EMA_WARMUP = "ema_warmup"


class Command(StrEnum):
    """A one-shot command the trainer applies once, when it next takes up its
    configuration (spec.commands[].action)."""

    ROLLBACK = "rollback"
    RESET_DISCRIMINATOR = "reset_discriminator"
    REINITIALIZE = "reinitialize"
    SEARCH_LEARNING_RATE = "search_learning_rate"
    PROBE_LEARNING_RATE = "probe_learning_rate"


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
