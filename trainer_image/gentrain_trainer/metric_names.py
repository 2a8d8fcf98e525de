"""Every metric the trainer exports: name, type, labels and meaning, defined once.

The operator reads these names (`gentrain_operator.trainer_metrics` is generated from
this table and a test keeps the two identical), and the Helm chart's dashboards and
alerts are checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # gauge | counter
    labels: tuple[str, ...]
    help: str
    milestone: bool = False  # written atomically with the checkpoint summary


def _live(name: str, kind: str, labels: tuple[str, ...], text: str) -> Metric:
    return Metric(name, kind, labels, text)


def _milestone(name: str, labels: tuple[str, ...], text: str) -> Metric:
    return Metric(name, "gauge", labels, text, milestone=True)


METRICS = (
    # live, updated every step
    _live("gentrain_step", "gauge", (), "Optimizer steps completed."),
    _live("gentrain_samples_total", "counter", (), "Training examples consumed."),
    _live("gentrain_step_seconds", "gauge", (), "Wall time of one step, smoothed."),
    _live(
        "gentrain_step_data_seconds",
        "gauge",
        (),
        "Part of a step spent waiting for data, smoothed.",
    ),
    _live(
        "gentrain_step_compute_seconds", "gauge", (), "Part of a step spent computing, smoothed."
    ),
    _live("gentrain_loss", "gauge", ("component",), "Training loss, exponentially smoothed."),
    _live(
        "gentrain_baseline_loss",
        "gauge",
        (),
        "Loss of a predictor that learned nothing from the inputs (unigram entropy, noise variance).",
    ),
    _live(
        "gentrain_grad_norm", "gauge", ("component",), "Gradient norm before clipping, last step."
    ),
    _live("gentrain_learning_rate", "gauge", ("component",), "Learning rate in effect."),
    _live("gentrain_hyperparameter", "gauge", ("name",), "Numeric hyperparameters in effect."),
    _live(
        "gentrain_hyperparameter_info",
        "gauge",
        ("name", "value"),
        "Non-numeric hyperparameters in effect (value 1).",
    ),
    _live(
        "gentrain_config_generation", "gauge", (), "Generation of the configuration last applied."
    ),
    _live(
        "gentrain_config_rejected_total",
        "counter",
        ("field",),
        "Configuration values refused, the old value kept.",
    ),
    _live("gentrain_commands_applied_total", "counter", ("action",), "One-shot commands applied."),
    _live(
        "gentrain_checkpoints_damaged_total",
        "counter",
        (),
        "Checkpoints skipped because their checksum failed.",
    ),
    _live(
        "gentrain_device_info",
        "gauge",
        ("device", "name"),
        "The device training runs on (value 1).",
    ),
    _live("gentrain_torch_threads", "gauge", (), "Threads torch uses for CPU work."),
    _live("gentrain_max_steps", "gauge", (), "Steps the run is configured for."),
    _live(
        "gentrain_gpu_utilization_ratio",
        "gauge",
        ("gpu",),
        "GPU busy fraction (NVML); absent on CPU.",
    ),
    _live(
        "gentrain_gpu_memory_used_bytes",
        "gauge",
        ("gpu",),
        "GPU memory in use (NVML); absent on CPU.",
    ),
    _live(
        "gentrain_gpu_memory_total_bytes",
        "gauge",
        ("gpu",),
        "GPU memory in total (NVML); absent on CPU.",
    ),
    _live(
        "gentrain_gpu_temperature_celsius",
        "gauge",
        ("gpu",),
        "GPU temperature (NVML); absent on CPU.",
    ),
    _live("gentrain_gpu_power_watts", "gauge", ("gpu",), "GPU power draw (NVML); absent on CPU."),
    # milestone summaries, over the steps since the previous checkpoint
    _milestone("gentrain_checkpoint_step", (), "Step of the latest checkpoint (a milestone)."),
    _milestone(
        "gentrain_milestone_timestamp_seconds", (), "When the latest milestone was published."
    ),
    _milestone("gentrain_milestone_steps", (), "Steps the milestone summary covers."),
    _milestone(
        "gentrain_milestone_weights_origin_step",
        (),
        "Step at which the weights this window trained were initialised: 0, or where a "
        "reinitialize command started afresh.",
    ),
    _milestone(
        "gentrain_milestone_learning_rate_search_loss",
        ("factor",),
        "Learning-rate search run at this milestone: each candidate factor of the configured "
        "rates and its loss over the last third of its probe steps (lower wins).",
    ),
    _milestone(
        "gentrain_milestone_learning_rate_factor",
        (),
        "The factor a learning-rate search chose; it scales the configured rates until the "
        "configuration's generation changes.",
    ),
    _milestone(
        "gentrain_milestone_learning_rate_search_steps",
        (),
        "Steps the learning-rate search trained in all (candidates x probe steps), outside "
        "the run's own steps.",
    ),
    _milestone("gentrain_milestone_loss_mean", ("component",), "Mean finite loss over the window."),
    _milestone(
        "gentrain_milestone_loss_std",
        ("component",),
        "Standard deviation of the loss over the window.",
    ),
    _milestone(
        "gentrain_milestone_loss_max", ("component",), "Largest finite loss over the window."
    ),
    _milestone(
        "gentrain_milestone_loss_first", ("component",), "Mean loss of the window's first tenth."
    ),
    _milestone(
        "gentrain_milestone_loss_last", ("component",), "Mean loss of the window's last tenth."
    ),
    _milestone("gentrain_milestone_nonfinite_losses", (), "Steps whose loss was NaN or infinite."),
    _milestone(
        "gentrain_milestone_nonfinite_losses_since_start",
        (),
        "Non-finite losses over every window since the trainer process started.",
    ),
    _milestone(
        "gentrain_milestone_command_refused",
        ("command", "reason"),
        "Commands refused since the trainer process started (value 1), by id: reason "
        "no_checkpoint (a rollback with nothing at or before its step), no_discriminator, "
        "or search_refused.",
    ),
    _milestone(
        "gentrain_milestone_loss_spikes_since_start",
        ("component",),
        "Loss spikes over every window since the trainer process started.",
    ),
    _milestone(
        "gentrain_milestone_loss_spikes",
        ("component",),
        "Losses above a robust z-score of 6 within the window.",
    ),
    _milestone(
        "gentrain_milestone_grad_norm_max", ("component",), "Largest gradient norm over the window."
    ),
    _milestone(
        "gentrain_milestone_update_ratio",
        ("component",),
        "Median over the window of |weight update| / |weight| of one step (largest matrices).",
    ),
    _milestone(
        "gentrain_milestone_grad_norm_median",
        ("component",),
        "Median gradient norm over the window.",
    ),
    _milestone(
        "gentrain_milestone_grad_clip_ratio",
        ("component",),
        "Fraction of steps whose gradient was clipped.",
    ),
    _milestone(
        "gentrain_milestone_data_wait_ratio", (), "Fraction of step time spent waiting for data."
    ),
    _milestone("gentrain_milestone_steps_per_second", (), "Training speed over the window."),
    # GAN
    _milestone(
        "gentrain_milestone_discriminator_output",
        ("input",),
        "Mean raw discriminator output on real and fake data.",
    ),
    _milestone(
        "gentrain_milestone_discriminator_accuracy_ratio",
        (),
        "Fraction of real and fake samples the discriminator classifies correctly.",
    ),
    _milestone(
        "gentrain_milestone_modes_covered",
        (),
        "Modes with at least 20 high-quality samples of 2,500 (2-D data).",
    ),
    _milestone("gentrain_milestone_modes", (), "Modes of the 2-D mixture."),
    _milestone(
        "gentrain_milestone_high_quality_ratio",
        (),
        "Generated 2-D samples within 3 sigma of a mode.",
    ),
    # images (GAN, VAE, diffusion)
    _milestone(
        "gentrain_milestone_fid",
        ("extractor",),
        "Fréchet distance in the named extractor's feature space.",
    ),
    _milestone(
        "gentrain_milestone_fid_stderr",
        ("extractor",),
        "Standard error of that FID over the generated samples (bootstrap).",
    ),
    _milestone(
        "gentrain_milestone_kid",
        ("extractor",),
        "Kernel Inception-style distance in the named extractor's space.",
    ),
    _milestone(
        "gentrain_milestone_precision", ("extractor",), "k-NN precision of generated samples."
    ),
    _milestone("gentrain_milestone_recall", ("extractor",), "k-NN recall of the real data."),
    _milestone(
        "gentrain_milestone_inception_score",
        ("extractor",),
        "Inception Score computed with the named classifier.",
    ),
    # Diffusion
    _milestone(
        "gentrain_milestone_ema_init_weight",
        (),
        "Share of the sampling (EMA) weights still equal to the random initialisation.",
    ),
    # VAE
    _milestone(
        "gentrain_milestone_kl", (), "Mean KL divergence of the posterior, nats per example."
    ),
    _milestone("gentrain_milestone_kl_weight", (), "KL weight in effect after annealing."),
    _milestone(
        "gentrain_milestone_reconstruction_loss",
        (),
        "Held-out reconstruction loss, nats per example.",
    ),
    _milestone(
        "gentrain_milestone_reconstruction_baseline",
        (),
        "Held-out reconstruction loss of a decoder that ignores the latent (the mean image).",
    ),
    _milestone(
        "gentrain_milestone_active_units",
        (),
        "Latent dimensions whose posterior mean varies (Cov > 0.01).",
    ),
    _milestone("gentrain_milestone_latent_dims", (), "Latent dimensions of the model."),
    # transformer
    _milestone("gentrain_milestone_validation_loss", (), "Held-out cross-entropy, nats per token."),
    _milestone("gentrain_milestone_perplexity", (), "exp(validation loss)."),
    _milestone(
        "gentrain_milestone_train_loss",
        (),
        "Training cross-entropy over the window, nats per token.",
    ),
)

BY_NAME = {metric.name: metric for metric in METRICS}


def exposed_names() -> set[str]:
    """Names as they appear in the exposition (counters gain `_total` only once)."""
    return {metric.name for metric in METRICS}
