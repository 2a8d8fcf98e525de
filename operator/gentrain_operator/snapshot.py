"""A scrape of the trainer, parsed with prometheus_client's parser, and the milestone
record the diagnosis reads from it (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client.parser import text_string_to_metric_families

from gentrain_contract import metrics
from gentrain_contract.milestone import Milestone
from gentrain_contract.vocabulary import Action

Labels = tuple[tuple[str, str], ...]
# Bounds on what one trainer's labels can put into its job's status (ours send 1-3
# components, 6 learning-rate candidates and a few dozen hyperparameters).
MAX_LABEL_VALUES = 64
MAX_LABEL_LENGTH = 63
# What tells one milestone from another: when one of these is not a number (or not a
# count the API's int64 fields hold), the scrape carries no milestone the operator can
# act on.
IDENTITY = (
    metrics.CHECKPOINT_STEP.name,
    metrics.MILESTONE_TIMESTAMP_SECONDS.name,
    metrics.CONFIG_GENERATION.name,
    metrics.MILESTONE_CONFIG_GENERATION.name,
    metrics.MILESTONE_WEIGHTS_ORIGIN_STEP.name,
    metrics.MILESTONE_NONFINITE_LOSSES.name,
)


@dataclass
class Snapshot:
    time: float
    values: dict[str, dict[Labels, float]] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get(name, {}).get(tuple(sorted(labels.items())))

    def by(self, name: str, label: str) -> dict[str, float]:
        """The series of `name` keyed by one label's value: at most MAX_LABEL_VALUES of
        them, each value at most MAX_LABEL_LENGTH characters. The record goes into status:
        a pod sending 200,000 components must not write a 3 MB status (etcd stops at 1.5)."""
        found: dict[str, float] = {}
        for key, value in self.values.get(name, {}).items():
            labels = dict(key)
            if label in labels and len(labels[label]) <= MAX_LABEL_LENGTH:
                found[labels[label]] = value
                if len(found) >= MAX_LABEL_VALUES:
                    break
        return found

    def labelled(self, name: str, key: str, value: str) -> dict[str, str]:
        """One label's value by another's, for the series of `name` (bounded as `by`)."""
        found: dict[str, str] = {}
        for labels in self.values.get(name, {}):
            as_dict = dict(labels)
            k, v = as_dict.get(key, ""), as_dict.get(value, "")
            if k and len(k) <= MAX_LABEL_LENGTH and len(v) <= MAX_LABEL_LENGTH:
                found[k] = v
                if len(found) >= MAX_LABEL_VALUES:
                    break
        return found


def parse(text: str, time: float) -> Snapshot:
    snapshot = Snapshot(time)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            snapshot.values.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value
            )
    return snapshot


# The label names the trainer's own series carry (the contract's table). Through
# Prometheus a series has more: the target's (instance, job, namespace, pod, ...), what
# monitors add by relabelling (the chart's PodMonitor adds `gtj`) and the server's
# external labels (cluster, prometheus_replica, ...): no list of those can be complete, so
# everything else is dropped.
TRAINER_LABELS = metrics.LABELS


def from_prometheus(result: Sequence[Mapping[str, Any]], time: float) -> Snapshot:
    """A Prometheus HTTP API instant-query vector as a snapshot, with the trainer's own
    labels only."""
    snapshot = Snapshot(time)
    for item in result:
        metric = dict(item["metric"])
        name = metric["__name__"]
        labels = tuple(sorted((k, v) for k, v in metric.items() if k in TRAINER_LABELS))
        snapshot.values.setdefault(name, {})[labels] = float(item["value"][1])
    return snapshot


def _one(values: Mapping[str, float]) -> float | None:
    return next(iter(values.values()), None)


# Integers a float holds exactly; far beyond any step, time or count a run reaches, and
# inside the int64 the API server stores (a step of 1e19 was refused with every retry).
LARGEST_COUNT = 2.0**53
ACTIONS = frozenset(Action)


def _first(snapshot: Snapshot, *candidates: metrics.Metric) -> float | None:
    """The first of these metrics the snapshot has."""
    for metric in candidates:
        value = snapshot.get(metric.name)
        if value is not None:
            return value
    return None


def _countable(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= LARGEST_COUNT


# The single-valued milestone figures a family may or may not export, read into a
# milestone under these names (gentrain_milestone_<name>); the job dashboard plots them.
FIGURES = (
    "modes_covered",
    "modes",
    "high_quality_ratio",
    "discriminator_accuracy_ratio",
    "critic_gradient_norm",
    "kl",
    "kl_weight",
    "reconstruction_loss",
    "reconstruction_baseline",
    "active_units",
    "latent_dims",
    "ema_init_weight",
    "validation_loss",
    "perplexity",
    "attention_entropy_ratio",
    "steps_per_second",
    "nonfinite_losses_since_start",
)


def milestone(snapshot: Snapshot) -> Milestone | None:
    """The figures of the milestone a snapshot carries, or None if it carries none yet."""
    step = snapshot.get(metrics.CHECKPOINT_STEP.name)
    identity = [snapshot.get(name) for name in IDENTITY]
    if step is None or any(v is not None and not _countable(v) for v in identity):
        return None  # no milestone yet, or none that can be told apart from another
    hyperparameters: dict[str, float | str] = {**snapshot.by(metrics.HYPERPARAMETER.name, "name")}
    record: Milestone = {
        "step": int(step),
        "time": snapshot.get(metrics.MILESTONE_TIMESTAMP_SECONDS.name) or snapshot.time,
        # The generation at the milestone's publication where the trainer says it: one
        # taken up since, between milestones, is not this window's (read with this
        # milestone, a rollback taken up after it was judged on the window before it).
        "generation": int(
            _first(snapshot, metrics.MILESTONE_CONFIG_GENERATION, metrics.CONFIG_GENERATION) or 0
        ),
        "origin_step": int(snapshot.get(metrics.MILESTONE_WEIGHTS_ORIGIN_STEP.name) or 0),
        "nonfinite": int(snapshot.get(metrics.MILESTONE_NONFINITE_LOSSES.name) or 0),
        "loss_mean": snapshot.by(metrics.MILESTONE_LOSS_MEAN.name, "component"),
        "loss_max": snapshot.by(metrics.MILESTONE_LOSS_MAX.name, "component"),
        "loss_first": snapshot.by(metrics.MILESTONE_LOSS_FIRST.name, "component"),
        "loss_last": snapshot.by(metrics.MILESTONE_LOSS_LAST.name, "component"),
        "spikes": snapshot.by(metrics.MILESTONE_LOSS_SPIKES.name, "component"),
        "spikes_since_start": snapshot.by(
            metrics.MILESTONE_LOSS_SPIKES_SINCE_START.name, "component"
        ),
        "grad_norm_max": snapshot.by(metrics.MILESTONE_GRAD_NORM_MAX.name, "component"),
        "grad_norm_median": snapshot.by(metrics.MILESTONE_GRAD_NORM_MEDIAN.name, "component"),
        "clip_ratio": snapshot.by(metrics.MILESTONE_GRAD_CLIP_RATIO.name, "component"),
        "update_ratio": snapshot.by(metrics.MILESTONE_UPDATE_RATIO.name, "component"),
        "weight_growth": snapshot.by(metrics.MILESTONE_WEIGHT_GROWTH.name, "component"),
        "data_wait_ratio": snapshot.get(metrics.MILESTONE_DATA_WAIT_RATIO.name),
        "hyperparameters": hyperparameters,
    }
    # The clip in force, under the built-in trainer's name or a program's API name: kept
    # in status (the hyperparameters are not), as the diagnosis of a spike reads it.
    clip = hyperparameters.get("grad_clip", hyperparameters.get("gradientClip"))
    if isinstance(clip, float):
        record["grad_clip"] = clip
    figures: dict[str, float] = {}  # the figures a family may or may not have
    for name in FIGURES:
        value = snapshot.get(metrics.milestone_metric(name).name)
        if value is not None:
            figures[name] = value
    since = _first(
        snapshot, metrics.MILESTONE_CONFIG_GENERATION_STEP, metrics.CONFIG_GENERATION_STEP
    )
    if since is not None and _countable(since) and 0 <= since <= step:  # else: not said
        record["generation_step"] = int(since)
    supported = snapshot.by(metrics.SUPPORTED_ACTION_INFO.name, "action")
    if supported:
        record["supported_actions"] = sorted(a for a in supported if a in ACTIONS)
    own = snapshot.by(metrics.MILESTONE_FIGURE.name, "name")
    if own:
        record["figures"] = own
    refused = snapshot.labelled(metrics.MILESTONE_COMMAND_REFUSED.name, "command", "reason")
    if refused:
        record["refused_commands"] = refused
    searched = snapshot.by(metrics.MILESTONE_LEARNING_RATE_SEARCH_LOSS.name, "factor")
    chosen = snapshot.get(metrics.MILESTONE_LEARNING_RATE_FACTOR.name)
    steps = snapshot.get(metrics.MILESTONE_LEARNING_RATE_SEARCH_STEPS.name) or 0.0
    if searched and chosen is not None and math.isfinite(chosen) and chosen > 0:
        record["learning_rate_search"] = {
            "losses": searched,  # +Inf for a candidate that diverged: written as null
            "factor": chosen,
            "steps": int(steps) if _countable(steps) else 0,
        }
    baseline = snapshot.get(metrics.BASELINE_LOSS.name)
    if baseline is not None:
        record["baseline_loss"] = baseline
    started = snapshot.get("process_start_time_seconds")
    if started is not None:
        record["trainer_started"] = started
    outputs = snapshot.by(metrics.MILESTONE_DISCRIMINATOR_OUTPUT.name, "input")
    if outputs:
        record["d_real"], record["d_fake"] = outputs.get("real"), outputs.get("fake")
    for name in ("fid", "fid_stderr", "kid", "precision", "recall", "inception_score"):
        values = snapshot.by(metrics.milestone_metric(name).name, "extractor")
        if values:
            extractor, value = next(iter(values.items()))
            figures[name], record["extractor"] = value, extractor
    info = snapshot.values.get(metrics.HYPERPARAMETER_INFO.name, {})
    for labels in list(info)[:MAX_LABEL_VALUES]:
        as_dict = dict(labels)
        name, text = as_dict.get("name", ""), as_dict.get("value", "")
        if name and len(name) <= MAX_LABEL_LENGTH and len(text) <= MAX_LABEL_LENGTH:
            record["hyperparameters"][name] = text
    # A GAN's objective and penalty in force, kept in status as the clip is: whether its
    # critic must be 1-Lipschitz (quality_rules) depends on them.
    loss = hyperparameters.get("loss", hyperparameters.get("ganLoss"))
    if isinstance(loss, str):
        record["gan_loss"] = loss
    penalty = hyperparameters.get("gp_weight", hyperparameters.get("gradientPenaltyWeight"))
    if isinstance(penalty, float):
        record["gradient_penalty_weight"] = penalty
    utilisation = snapshot.by(metrics.GPU_UTILIZATION_RATIO.name, "gpu")
    if utilisation:
        record["gpu_utilization"] = sum(utilisation.values()) / len(utilisation)
        used, total = (
            snapshot.by(metrics.GPU_MEMORY_USED_BYTES.name, "gpu"),
            snapshot.by(metrics.GPU_MEMORY_TOTAL_BYTES.name, "gpu"),
        )
        ratios = [used[g] / total[g] for g in used if total.get(g)]
        if ratios:
            record["gpu_memory_ratio"] = max(ratios)
    return finite(cast(Milestone, {**record, **figures}))


def finite(record: Milestone) -> Milestone:
    """The record with every non-finite figure taken out, and named in `nonfinite_figures`
    (`field` or `field/label`): the record goes into status as JSON, which has no NaN or
    Infinity (a body carrying them is refused, and the milestone would be retried for
    ever). A diverging run is exactly the one whose figures overflow, so the fact is kept:
    the diagnosis reads it from that list (an infinite gradient norm explodes)."""
    result: dict[str, Any] = {}
    nonfinite: list[str] = []
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            nonfinite.append(key)
        elif isinstance(value, dict) and key != "learning_rate_search":
            result[key] = {}
            for label, item in value.items():
                if isinstance(item, float) and not math.isfinite(item):
                    nonfinite.append(f"{key}/{label}")
                else:
                    result[key][label] = item
        else:
            result[key] = value
    if nonfinite:
        result["nonfinite_figures"] = sorted(nonfinite)
    return cast(Milestone, result)
