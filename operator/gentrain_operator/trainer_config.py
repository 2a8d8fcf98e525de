"""The trainer's configuration file, rendered from a job's spec (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gentrain_contract import hyperparameters

# spec.training.hyperparameters (camelCase, the API) -> the trainer's names, per family.
HYPERPARAMETERS: dict[str, dict[str, str]] = {
    family: hyperparameters.api_names(family) for family in hyperparameters.FAMILIES
}

ARCHITECTURE = {
    "latentDim": "latent_dim",
    "hidden": "hidden",
    "layers": "layers",
    "width": "width",
    "heads": "heads",
    "decoderWidth": "decoder_width",
    "timesteps": "timesteps",
    "noiseSchedule": "schedule",
    "spectralNorm": "spectral_norm",
    "minibatchStddev": "minibatch_stddev",
    "diffAugment": "diffaugment",
    "qkLayerNorm": "qk_layernorm",
}


def render_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer's configuration for a GenerativeTrainingJob as it stands: its spec at
    its generation, and the retention its status implies (the last healthy checkpoint is
    pinned; everything up to the last checkpoint the operator saw has been judged)."""
    status = job.get("status") or {}
    healthy = status.get("lastHealthyCheckpoint")
    return render(
        job["spec"],
        int(job["metadata"].get("generation", 1)),
        [int(healthy)] if healthy is not None else [],
        int(status.get("checkpointStep") or 0),
    )


def render(
    spec: Mapping[str, Any],
    generation: int,
    pinned: Iterable[int] = (),
    judged_through: int = 0,
) -> dict[str, Any]:
    """The trainer's configuration file. `pinned` and `judged_through`: the last healthy
    checkpoint and the step of the last milestone judged, which the trainer's rotation
    keeps checkpoints for (gentrain_trainer.config.Retention)."""
    family = spec["model"]["family"]
    dataset = spec.get("dataset") or {}  # a custom program brings its own data
    data: dict[str, Any] = (
        {"name": dataset["name"], "batch_size": dataset.get("batchSize", 64)} if dataset else {}
    )
    if "path" in dataset:
        data["path"] = dataset["path"]
    if "blockSize" in dataset:
        data["block_size"] = dataset["blockSize"]
    for key in ("radius", "spacing", "sigma", "order"):
        if key in dataset:
            data[key] = dataset[key]
    training = spec["training"]
    wanted = training.get("hyperparameters") or {}
    mapping = HYPERPARAMETERS[family]
    checkpoints = spec.get("checkpoints") or {}
    evaluation: dict[str, Any] = {}
    samples = (spec.get("monitoring") or {}).get("evaluationSamples")
    if samples:
        evaluation["samples"] = samples
    return {
        "generation": generation,
        "family": family,
        "seed": training.get("seed", 0),
        "model": {
            ARCHITECTURE[k]: v
            for k, v in (spec["model"].get("architecture") or {}).items()
            if k in ARCHITECTURE
        },
        "data": data,
        "training": {"max_steps": training["maxSteps"]},
        "hyperparameters": {mapping[k]: v for k, v in wanted.items() if k in mapping},
        "checkpoints": {
            "interval": checkpoints.get("interval", 200),
            "keep": checkpoints.get("keep", 3),
            "pinned": sorted(set(pinned)),
            "judged_through": judged_through,
        },
        "evaluation": evaluation,
        "commands": [
            {
                "id": c["id"],
                "action": c["action"],
                **({"step": c["step"]} if "step" in c else {}),
                "skip_batches": c.get("skipBatches", 0),
                **({"search_steps": c["searchSteps"]} if "searchSteps" in c else {}),
                **({"max_factor": c["maxFactor"]} if "maxFactor" in c else {}),
            }
            for c in spec.get("commands") or []
        ],
    }


# The trainer's defaults, under the API's names: what a job gets for a field it leaves
# out.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    family: hyperparameters.api_defaults(family) for family in hyperparameters.FAMILIES
}
