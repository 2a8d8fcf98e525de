"""Every metric a gentrain trainer exports: name, type, labels and meaning, defined once.

The built-in trainer writes these series, the operator reads them by these constants, and
the chart's dashboards and alerts are checked against this table: a metric renamed here is
renamed for all of them, and a name nobody defined is an AttributeError (and a mypy error)
rather than a series that silently never matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Literal["gauge", "counter"]
    labels: tuple[str, ...]
    help: str
    milestone: bool = False  # written atomically with the checkpoint summary


METRICS: list[Metric] = []


def _define(metric: Metric) -> Metric:
    METRICS.append(metric)
    return metric


def _live(
    name: str, kind: Literal["gauge", "counter"], labels: tuple[str, ...], text: str
) -> Metric:
    return _define(Metric(name, kind, labels, text))


def _milestone(name: str, labels: tuple[str, ...], text: str) -> Metric:
    return _define(Metric(name, "gauge", labels, text, milestone=True))


# live, updated every step
STEP = _live("gentrain_step", "gauge", (), "Optimizer steps completed.")
SAMPLES_TOTAL = _live("gentrain_samples_total", "counter", (), "Training examples consumed.")
STEP_SECONDS = _live("gentrain_step_seconds", "gauge", (), "Wall time of one step, smoothed.")
STEP_DATA_SECONDS = _live(
    "gentrain_step_data_seconds", "gauge", (), "Part of a step spent waiting for data, smoothed."
)
STEP_COMPUTE_SECONDS = _live(
    "gentrain_step_compute_seconds", "gauge", (), "Part of a step spent computing, smoothed."
)
LOSS = _live("gentrain_loss", "gauge", ("component",), "Training loss, exponentially smoothed.")
BASELINE_LOSS = _live(
    "gentrain_baseline_loss",
    "gauge",
    (),
    "Loss of a predictor that learned nothing from the inputs (unigram entropy, noise variance).",
)
GRAD_NORM = _live(
    "gentrain_grad_norm", "gauge", ("component",), "Gradient norm before clipping, last step."
)
LEARNING_RATE = _live("gentrain_learning_rate", "gauge", ("component",), "Learning rate in effect.")
HYPERPARAMETER = _live(
    "gentrain_hyperparameter", "gauge", ("name",), "Numeric hyperparameters in effect."
)
HYPERPARAMETER_INFO = _live(
    "gentrain_hyperparameter_info",
    "gauge",
    ("name", "value"),
    "Non-numeric hyperparameters in effect (value 1).",
)
CONFIG_GENERATION = _live(
    "gentrain_config_generation", "gauge", (), "Generation of the configuration last applied."
)
CONFIG_GENERATION_STEP = _live(
    "gentrain_config_generation_step",
    "gauge",
    (),
    (
        "Step from which the configuration generation in force applies: the trainer's step "
        "when it took that generation up (or resumed under it). Optional: absent, a change "
        "is taken as arriving at the milestone that first shows its generation."
    ),
)
CONFIG_REJECTED_TOTAL = _live(
    "gentrain_config_rejected_total",
    "counter",
    ("field",),
    "Configuration values refused, the old value kept.",
)
COMMANDS_APPLIED_TOTAL = _live(
    "gentrain_commands_applied_total", "counter", ("action",), "One-shot commands applied."
)
CHECKPOINTS_DAMAGED_TOTAL = _live(
    "gentrain_checkpoints_damaged_total",
    "counter",
    (),
    "Checkpoints skipped because their checksum failed.",
)
DEVICE_INFO = _live(
    "gentrain_device_info", "gauge", ("device", "name"), "The device training runs on (value 1)."
)
TORCH_THREADS = _live("gentrain_torch_threads", "gauge", (), "Threads torch uses for CPU work.")
MAX_STEPS = _live("gentrain_max_steps", "gauge", (), "Steps the run is configured for.")
GPU_UTILIZATION_RATIO = _live(
    "gentrain_gpu_utilization_ratio", "gauge", ("gpu",), "GPU busy fraction (NVML); absent on CPU."
)
GPU_MEMORY_USED_BYTES = _live(
    "gentrain_gpu_memory_used_bytes", "gauge", ("gpu",), "GPU memory in use (NVML); absent on CPU."
)
GPU_MEMORY_TOTAL_BYTES = _live(
    "gentrain_gpu_memory_total_bytes",
    "gauge",
    ("gpu",),
    "GPU memory in total (NVML); absent on CPU.",
)
GPU_TEMPERATURE_CELSIUS = _live(
    "gentrain_gpu_temperature_celsius", "gauge", ("gpu",), "GPU temperature (NVML); absent on CPU."
)
GPU_POWER_WATTS = _live(
    "gentrain_gpu_power_watts", "gauge", ("gpu",), "GPU power draw (NVML); absent on CPU."
)

# milestone summaries, over the steps since the previous checkpoint
CHECKPOINT_STEP = _milestone(
    "gentrain_checkpoint_step", (), "Step of the latest checkpoint (a milestone)."
)
MILESTONE_TIMESTAMP_SECONDS = _milestone(
    "gentrain_milestone_timestamp_seconds", (), "When the latest milestone was published."
)
MILESTONE_STEPS = _milestone("gentrain_milestone_steps", (), "Steps the milestone summary covers.")
MILESTONE_CONFIG_GENERATION = _milestone(
    "gentrain_milestone_config_generation",
    (),
    (
        "Configuration generation in force when the milestone was published (after the "
        "changes taken up there, but for a rollback: the run then goes on from an earlier "
        "step, and the next milestone announces it). Optional: absent, "
        "gentrain_config_generation is read. A change taken up later, between milestones, "
        "leaves it as it was: the window this milestone summarises never trained under it."
    ),
)
MILESTONE_CONFIG_GENERATION_STEP = _milestone(
    "gentrain_milestone_config_generation_step",
    (),
    "gentrain_config_generation_step when the milestone was published. Optional.",
)
MILESTONE_WEIGHTS_ORIGIN_STEP = _milestone(
    "gentrain_milestone_weights_origin_step",
    (),
    (
        "Step at which the weights this window trained were initialised: 0, or where a "
        "reinitialize command started afresh."
    ),
)
MILESTONE_LEARNING_RATE_SEARCH_LOSS = _milestone(
    "gentrain_milestone_learning_rate_search_loss",
    ("factor",),
    (
        "Learning-rate search run at this milestone: each candidate factor of the configured "
        "rates and its loss over the last third of its probe steps (lower wins)."
    ),
)
MILESTONE_LEARNING_RATE_FACTOR = _milestone(
    "gentrain_milestone_learning_rate_factor",
    (),
    (
        "The factor a learning-rate search chose; it scales the configured rates until the "
        "configuration's generation changes."
    ),
)
MILESTONE_LEARNING_RATE_SEARCH_STEPS = _milestone(
    "gentrain_milestone_learning_rate_search_steps",
    (),
    (
        "Steps the learning-rate search trained in all (candidates x probe steps), outside the "
        "run's own steps."
    ),
)
MILESTONE_LOSS_MEAN = _milestone(
    "gentrain_milestone_loss_mean", ("component",), "Mean finite loss over the window."
)
MILESTONE_LOSS_STD = _milestone(
    "gentrain_milestone_loss_std", ("component",), "Standard deviation of the loss over the window."
)
MILESTONE_LOSS_MAX = _milestone(
    "gentrain_milestone_loss_max", ("component",), "Largest finite loss over the window."
)
MILESTONE_LOSS_FIRST = _milestone(
    "gentrain_milestone_loss_first", ("component",), "Mean loss of the window's first tenth."
)
MILESTONE_LOSS_LAST = _milestone(
    "gentrain_milestone_loss_last", ("component",), "Mean loss of the window's last tenth."
)
MILESTONE_NONFINITE_LOSSES = _milestone(
    "gentrain_milestone_nonfinite_losses", (), "Steps whose loss was NaN or infinite."
)
MILESTONE_NONFINITE_LOSSES_SINCE_START = _milestone(
    "gentrain_milestone_nonfinite_losses_since_start",
    (),
    "Non-finite losses over every window since the trainer process started.",
)
MILESTONE_COMMAND_REFUSED = _milestone(
    "gentrain_milestone_command_refused",
    ("command", "reason"),
    (
        "Commands refused since the trainer process started (value 1), by id: reason "
        "no_checkpoint (a rollback with nothing at or before its step), no_discriminator, or "
        "search_refused."
    ),
)
MILESTONE_LOSS_SPIKES_SINCE_START = _milestone(
    "gentrain_milestone_loss_spikes_since_start",
    ("component",),
    "Loss spikes over every window since the trainer process started.",
)
MILESTONE_LOSS_SPIKES = _milestone(
    "gentrain_milestone_loss_spikes",
    ("component",),
    "Losses above a robust z-score of 6 within the window.",
)
MILESTONE_GRAD_NORM_MAX = _milestone(
    "gentrain_milestone_grad_norm_max", ("component",), "Largest gradient norm over the window."
)
MILESTONE_UPDATE_RATIO = _milestone(
    "gentrain_milestone_update_ratio",
    ("component",),
    "Median over the window of |weight update| / |weight| of one step (largest matrices).",
)
MILESTONE_WEIGHT_GROWTH = _milestone(
    "gentrain_milestone_weight_growth",
    ("component",),
    "Weight norm 100 steps past warm-up over the norm at initialisation (from then on).",
)
MILESTONE_GRAD_NORM_MEDIAN = _milestone(
    "gentrain_milestone_grad_norm_median", ("component",), "Median gradient norm over the window."
)
MILESTONE_GRAD_CLIP_RATIO = _milestone(
    "gentrain_milestone_grad_clip_ratio",
    ("component",),
    "Fraction of steps whose gradient was clipped.",
)
MILESTONE_DATA_WAIT_RATIO = _milestone(
    "gentrain_milestone_data_wait_ratio", (), "Fraction of step time spent waiting for data."
)
MILESTONE_STEPS_PER_SECOND = _milestone(
    "gentrain_milestone_steps_per_second", (), "Training speed over the window."
)

# GAN
MILESTONE_DISCRIMINATOR_OUTPUT = _milestone(
    "gentrain_milestone_discriminator_output",
    ("input",),
    "Mean raw discriminator output on real and fake data.",
)
MILESTONE_DISCRIMINATOR_ACCURACY_RATIO = _milestone(
    "gentrain_milestone_discriminator_accuracy_ratio",
    (),
    "Fraction of real and fake samples the discriminator classifies correctly.",
)
MILESTONE_CRITIC_GRADIENT_NORM = _milestone(
    "gentrain_milestone_critic_gradient_norm",
    (),
    "Mean norm of the discriminator's gradient with respect to its input, on interpolates "
    "of real and generated samples (a WGAN critic's Lipschitz constant: about 1 under "
    "its gradient penalty).",
)
MILESTONE_MODES_COVERED = _milestone(
    "gentrain_milestone_modes_covered",
    (),
    "Modes with at least 20 high-quality samples of 2,500 (2-D data).",
)
MILESTONE_MODES = _milestone("gentrain_milestone_modes", (), "Modes of the 2-D mixture.")
MILESTONE_HIGH_QUALITY_RATIO = _milestone(
    "gentrain_milestone_high_quality_ratio", (), "Generated 2-D samples within 3 sigma of a mode."
)

# images (GAN, VAE, diffusion)
MILESTONE_FID = _milestone(
    "gentrain_milestone_fid",
    ("extractor",),
    "Fréchet distance in the named extractor's feature space.",
)
MILESTONE_FID_STDERR = _milestone(
    "gentrain_milestone_fid_stderr",
    ("extractor",),
    "Standard error of that FID over the generated samples (bootstrap).",
)
MILESTONE_KID = _milestone(
    "gentrain_milestone_kid",
    ("extractor",),
    "Kernel Inception-style distance in the named extractor's space.",
)
MILESTONE_PRECISION = _milestone(
    "gentrain_milestone_precision", ("extractor",), "k-NN precision of generated samples."
)
MILESTONE_RECALL = _milestone(
    "gentrain_milestone_recall", ("extractor",), "k-NN recall of the real data."
)
MILESTONE_INCEPTION_SCORE = _milestone(
    "gentrain_milestone_inception_score",
    ("extractor",),
    "Inception Score computed with the named classifier.",
)

# Diffusion
MILESTONE_EMA_INIT_WEIGHT = _milestone(
    "gentrain_milestone_ema_init_weight",
    (),
    "Share of the sampling (EMA) weights still equal to the random initialisation.",
)

# VAE
MILESTONE_KL = _milestone(
    "gentrain_milestone_kl", (), "Mean KL divergence of the posterior, nats per example."
)
MILESTONE_KL_WEIGHT = _milestone(
    "gentrain_milestone_kl_weight", (), "KL weight in effect after annealing."
)
MILESTONE_RECONSTRUCTION_LOSS = _milestone(
    "gentrain_milestone_reconstruction_loss", (), "Held-out reconstruction loss, nats per example."
)
MILESTONE_RECONSTRUCTION_BASELINE = _milestone(
    "gentrain_milestone_reconstruction_baseline",
    (),
    "Held-out reconstruction loss of a decoder that ignores the latent (the mean image).",
)
MILESTONE_ACTIVE_UNITS = _milestone(
    "gentrain_milestone_active_units",
    (),
    "Latent dimensions whose posterior mean varies (Cov > 0.01).",
)
MILESTONE_LATENT_DIMS = _milestone(
    "gentrain_milestone_latent_dims", (), "Latent dimensions of the model."
)

# transformer
MILESTONE_VALIDATION_LOSS = _milestone(
    "gentrain_milestone_validation_loss", (), "Held-out cross-entropy, nats per token."
)
MILESTONE_PERPLEXITY = _milestone("gentrain_milestone_perplexity", (), "exp(validation loss).")
MILESTONE_ATTENTION_ENTROPY_RATIO = _milestone(
    "gentrain_milestone_attention_entropy_ratio",
    (),
    "Attention entropy over the most a causal attention could have (uniform: 1; every "
    "query on one key: 0), the mean over layers on a validation batch.",
)
MILESTONE_TRAIN_LOSS = _milestone(
    "gentrain_milestone_train_loss", (), "Training cross-entropy over the window, nats per token."
)

# a training program's own (gentrain-sdk)
SUPPORTED_ACTION_INFO = _live(
    "gentrain_supported_action_info",
    "gauge",
    ("action",),
    "A remediation action the training program supports (value 1). Absent: it supports "
    "every action (the built-in trainer).",
)
MILESTONE_FIGURE = _milestone(
    "gentrain_milestone_figure",
    ("name",),
    "A quality figure a training program reports at a milestone under its own name.",
)

# The figures an evaluation reports at a milestone (a program's own through the SDK too):
# each has a metric of its own whose meaning the diagnosis knows.
QUALITY_FIGURES = frozenset(
    {
        "validation_loss", "perplexity", "train_loss", "fid", "fid_stderr", "kid",
        "precision", "recall", "inception_score", "modes_covered", "modes",
        "high_quality_ratio", "kl", "reconstruction_loss", "reconstruction_baseline",
        "active_units", "latent_dims", "ema_init_weight", "attention_entropy_ratio",
        "discriminator_accuracy_ratio",
    }
)  # fmt: skip

BY_NAME = {metric.name: metric for metric in METRICS}
# The User-Agent of the operator's scrapes: a program waits for one of these (not any
# scraper's) before it exits, so that the operator reads its final milestone.
OPERATOR_USER_AGENT = "gentrain-operator"
MILESTONE_PREFIX = "gentrain_milestone_"


def milestone_metric(figure: str) -> Metric:
    """The milestone metric that carries a figure of the window summary or evaluation
    (`fid` -> gentrain_milestone_fid); KeyError for a figure the contract has no metric
    for."""
    return BY_NAME[MILESTONE_PREFIX + figure]


# The label names the trainer's series carry, all of them: through Prometheus a series
# has more (the target's, what monitors add by relabelling, the server's external
# labels), and a reader keeps only these.
LABELS = frozenset(label for metric in METRICS for label in metric.labels)
