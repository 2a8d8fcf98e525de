"""Jobs and milestones for the policy's tests, and the operator's milestone step run over
them as the operator runs it (pure, no cluster)."""

from __future__ import annotations

from typing import Any

from gentrain_operator.milestones import process


def gan_job(**remediation: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "n", "generation": 4},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {
                "maxSteps": 5000,
                "hyperparameters": {
                    "ganLoss": "minimax",
                    "generatorLearningRate": 1e-4,
                    "discriminatorLearningRate": 1e-3,
                },
            },
            "checkpoints": {"interval": 250},
            "remediation": {
                "mode": "auto",
                "cooldownMilestones": 1,
                "maxActions": 8,
                **remediation,
            },
        },
        "status": {},
    }


def ring(step: int, covered: int, generation: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": generation,
        "nonfinite": 0,
        "loss_mean": {"discriminator": 1.0, "generator": 1.0},
        "modes_covered": covered,
        "modes": 8,
        "high_quality_ratio": 0.5,
        **extra,
    }


def run_milestones(
    job: dict[str, Any], milestones: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Any]]:
    """Feeds milestones to `process` as the operator would, applying its spec patches."""
    outcomes = []
    for record in milestones:
        outcome = process(record, job, now=0.0)
        job["status"] = {**job["status"], **outcome.status}
        if outcome.spec is not None:
            job["spec"] = outcome.spec
            job["metadata"]["generation"] += 1
        outcomes.append(outcome)
    return job, outcomes
