"""StaleEMA: a diffusion model sampling from EMA weights that still hold most of their
random initialisation (a raw 0.9999 decay with no warm-up) gets its EMA warm-up switched
on. Figures from bench/zoo/calibration/diffusion-no-ema-warmup.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process


def milestone(step: int, stale: float) -> dict[str, Any]:
    return {
        "step": step,
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"denoiser": 0.05},
        "loss_last": {"denoiser": 0.05},
        "baseline_loss": 1.0,
        "fid": 1260.0,
        "ema_init_weight": stale,
    }


@pytest.mark.parametrize(("stale", "fires"), [(0.985, True), (0.86, True), (1e-15, False)])
def test_stale_ema_weights_are_found(stale: float, fires: bool) -> None:
    kinds = [f.kind for f in diagnose([milestone(150, stale)], "diffusion")]
    assert ("StaleEMA" in kinds) == fires


def test_the_ema_warm_up_is_switched_on() -> None:
    job = {
        "metadata": {"name": "d", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "diffusion"},
            "dataset": {"name": "digits"},
            "training": {
                "maxSteps": 1500,
                "hyperparameters": {"emaDecay": 0.9999, "emaWarmupSteps": 0},
            },
            "checkpoints": {"interval": 150},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }
    outcome = process(milestone(150, 0.985), job, now=0.0)
    assert outcome.record is not None and outcome.record["actions"] == ["ema_warmup"]
    assert outcome.spec["training"]["hyperparameters"]["emaWarmupSteps"] == 200
