"""PosteriorCollapse's ladder: with the KL weighted above 1 the spec's cause is undone first
(annealing, then free bits); at its natural weight the rate is checked first, since a rate
far too low or too high looks just like a collapse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runs import run_milestones


def vae_job(max_steps: int, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "v", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "vae"},
            "dataset": {"name": "digits"},
            "training": {"maxSteps": max_steps, "hyperparameters": hyperparameters},
            "checkpoints": {"interval": 250},
        },
        "status": {},
    }


def vae(step: int, generation: int, active: int = 0, **more: Any) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": generation,
        "nonfinite": 0,
        "loss_mean": {"total": 30.0},
        "active_units": active,
        "latent_dims": 16,
        "kl": 0.1,
        **more,
    }


def test_posterior_collapse_anneals_then_frees_bits() -> None:
    job, outcomes = run_milestones(
        vae_job(2000, klWeight=20.0), [vae(250, 1), vae(500, 1), vae(750, 2), vae(1000, 2)]
    )
    assert outcomes[0].record is None, "the first window is not judged"
    assert outcomes[1].record is not None and outcomes[1].record["actions"] == ["kl_annealing"]
    assert outcomes[3].record is not None and outcomes[3].record["actions"] == ["free_bits"]
    hp = job["spec"]["training"]["hyperparameters"]
    assert hp["klSchedule"] == "linear" and hp["freeBits"] == 0.25 and hp["klWeight"] == 1.0


def test_posterior_collapse_at_the_natural_kl_weight_checks_the_rate_then_starts_afresh() -> None:
    """A VAE whose rate is far too low looks collapsed (units asleep, reconstruction at
    the mean image's), and so does one whose rate is far too high (its units died in the
    first window and do not wake at a lower rate). With the KL at weight 1 the rate is
    probed first; a probe that kept the rate changed nothing, so it is judged at the
    milestone it ran at, and the run starts afresh at a tenth of the rate there; then
    annealing. The kept probe counts as the run's rate check."""
    unused = {"reconstruction_loss": 27.0, "reconstruction_baseline": 27.5}
    awake = {"active": 12, "reconstruction_baseline": 27.5}
    kept = {"learning_rate_search": {"losses": {"10": 28.0, "1": 27.1}, "factor": 1.0, "steps": 62}}
    job, outcomes = run_milestones(
        vae_job(2500, learningRate=0.02),
        [
            vae(250, 1, **unused),
            vae(500, 1, **unused),
            vae(750, 2, **unused, **kept),
            vae(1000, 3, **unused),
            vae(1250, 3, **unused),
            # Awake: no finding, 40% and 30% of the run to come (a scheduled check's window).
            vae(1500, 4, reconstruction_loss=22.0, **awake),
            vae(1750, 4, reconstruction_loss=21.5, **awake),
        ],
    )
    assert outcomes[1].record is not None
    assert outcomes[1].record["finding"] == "PosteriorCollapse"
    assert outcomes[1].record["actions"] == ["probe_learning_rate"]
    assert outcomes[2].record is not None, "the kept probe is judged where it ran"
    assert outcomes[2].record["actions"] == ["reinitialize", "cut_lr", "enable_clipping"]
    assert job["spec"]["training"]["hyperparameters"]["learningRate"] == pytest.approx(0.002)
    annealed = next(o.record for o in outcomes[3:] if o.record is not None)
    assert annealed["actions"] == ["kl_annealing"]
    probes = [
        o.record for o in outcomes if o.record and "probe_learning_rate" in o.record["actions"]
    ]
    assert len(probes) == 1, "the kept probe was the run's rate check: no scheduled one"
