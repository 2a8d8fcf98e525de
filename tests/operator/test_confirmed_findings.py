"""Noise is not acted on: a FID rise or a loss spike seen in one window only is reported
(info) and acted on when the next window confirms it (unless FID is already falling
back); a milestone under such suspicion is not a rollback target. The figures are the
evaluation zoo's healthy runs that drew an action for a one-window blip
(bench/zoo/evaluation/healthy-gan-digits.yaml, seed 0: a rollback at 1,000; the VAE
reference of vae-learning-rate-too-high.yaml, seed 0: a rollback at 1,250)."""

from __future__ import annotations

from typing import Any

from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process

# The healthy image GAN's FID and its bootstrap standard error at milestones 200-1,800.
GAN_FID = [144.0, 190.6, 97.9, 58.2, 110.4, 60.9, 69.6, 53.8, 56.7]
GAN_STDERR = [14.9, 31.5, 12.1, 10.4, 20.2, 14.3, 15.9, 11.3, 9.6]


def scored(fids: list[float], stderrs: list[float]) -> list[dict[str, Any]]:
    return [
        {"step": 200 * (i + 1), "fid": f, "fid_stderr": s}
        for i, (f, s) in enumerate(zip(fids, stderrs, strict=True))
    ]


def severities(history: list[dict[str, Any]], family: str, kind: str) -> list[str]:
    return [f.severity for f in diagnose(history, family) if f.kind == kind]


def test_a_healthy_gans_one_milestone_fid_swing_is_only_reported() -> None:
    history = scored(GAN_FID, GAN_STDERR)
    # At 1,000: 110 against a best of 58, 2.3 standard errors of the difference above.
    assert severities(history[:5], "gan", "FIDRegression") == ["info"]
    # At 1,200 it is back (61): nothing, and nothing in the rest of the run.
    for end in range(6, len(history) + 1):
        assert severities(history[:end], "gan", "FIDRegression") == []


def test_a_fid_rise_that_holds_a_second_milestone_is_a_regression() -> None:
    history = scored([*GAN_FID[:5], 104.0], [*GAN_STDERR[:5], 15.0])
    assert severities(history, "gan", "FIDRegression") == ["warning"]


def test_a_fid_on_its_way_back_down_is_not_rolled_back() -> None:
    """The evaluation zoo's digits GAN reference, seed 5 (milestones 300-1,500): 141 at 900
    and 81 at 1,200 both rose beyond noise over the best (55), but 81 is 59 below 141, five
    standard errors: the run is recovering (it reached 31 at 1,500) and was rolled back."""
    history = scored([119.4, 55.05, 140.6, 81.41, 30.52], [7.02, 5.04, 6.04, 9.69, 5.38])
    assert severities(history[:3], "gan", "FIDRegression") == ["info"]
    assert severities(history[:4], "gan", "FIDRegression") == ["info"]
    assert severities(history, "gan", "FIDRegression") == []
    # Without standard errors a fall is not told from noise: two rises are acted on.
    bare = [{k: v for k, v in m.items() if k != "fid_stderr"} for m in history[:4]]
    assert severities(bare, "gan", "FIDRegression") == ["warning"]


def vae_milestone(step: int, spikes: float) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"total": 25.0},
        "loss_last": {"total": 25.0},
        "loss_max": {"total": 25.4},
        "spikes": {"total": spikes, "reconstruction": 0.0},
    }


def test_one_window_with_a_spike_is_only_reported_two_in_a_row_are_a_fault() -> None:
    once = [vae_milestone(1000, 0), vae_milestone(1250, 1)]
    assert severities(once, "vae", "LossSpike") == ["info"]
    again = [*once, vae_milestone(1500, 2)]
    assert severities(again, "vae", "LossSpike") == ["critical"]


def vae_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "v", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "vae"},
            "dataset": {"name": "digits"},
            "training": {"maxSteps": 2000, "hyperparameters": {"learningRate": 0.001}},
            "checkpoints": {"interval": 250},
            # The rate check has its own tests; here it would act on the first milestone.
            "remediation": {"mode": "auto", "rules": {"LearningRateCheck": {"enabled": False}}},
        },
        "status": {},
    }


def test_a_suspect_milestone_is_neither_acted_on_nor_a_rollback_target() -> None:
    job = vae_job()
    for step, spikes in ((1000, 0), (1250, 1)):
        outcome = process(vae_milestone(step, spikes), job, now=0.0)
        job["status"] = outcome.status
        assert outcome.record is None  # the healthy VAE's one spike drew a rollback before
    assert job["status"]["lastHealthyCheckpoint"] == 1000
    confirmed = process(vae_milestone(1500, 1), job, now=0.0)
    assert confirmed.record is not None and confirmed.record["finding"] == "LossSpike"
    assert confirmed.spec is not None
    (rollback,) = [c for c in confirmed.spec["commands"] if c["action"] == "rollback"]
    assert rollback["step"] == 1000  # before the first spike, not the window that had it


def test_the_rollback_skips_every_batch_seen_since_its_target() -> None:
    """PaLM's remedy: restart before the spikes and skip the batches seen before and
    during them. A confirmed spike rolls back two windows, so skipping one window's
    batches (as before) fed the second window's bad stretch to the model again."""
    job = vae_job()
    for step, spikes in ((1000, 0), (1250, 1)):
        job["status"] = process(vae_milestone(step, spikes), job, now=0.0).status
    confirmed = process(vae_milestone(1500, 1), job, now=0.0)
    assert confirmed.spec is not None
    (rollback,) = [c for c in confirmed.spec["commands"] if c["action"] == "rollback"]
    assert (rollback["step"], rollback["skipBatches"]) == (1000, 500)


def test_a_burst_of_spikes_in_one_window_is_a_fault_at_once() -> None:
    """A bad stretch of data read in order (bench/zoo/calibration/transformer-corrupt-
    stretches.yaml: 13 spikes in the window that met it, none in the next, the model by
    then used to the garbage) is not waited on; one or two spikes still are."""
    # Clean code read in order spikes up to 3 times in a window (the calibration case's
    # healthy reference, seed 1); the bad region 19-20.
    assert severities([vae_milestone(1000, 0), vae_milestone(1250, 3)], "vae", "LossSpike") == [
        "info"
    ]
    assert severities([vae_milestone(1000, 0), vae_milestone(1250, 13)], "vae", "LossSpike") == [
        "critical"
    ]


def test_a_rate_check_that_has_run_does_not_hold_back_a_critical_finding() -> None:
    """PaLM's case on prose at seed 2: a rate check decided at 300 ran at 400, where the
    window had met the bad stretch (15 spikes); the policy waited for the check's outcome,
    and by 500 the spikes were over — the rollback never came (validation loss 2.43
    against 2.17 healthy). A check is routine, not a remedy whose effect needs judging."""
    from gentrain_contract.vocabulary import FindingKind, Severity
    from gentrain_operator.findings import Finding
    from gentrain_operator.policy import decide

    spec = {
        "model": {"family": "transformer"},
        "training": {"maxSteps": 800, "hyperparameters": {"learningRate": 0.003}},
        "checkpoints": {"interval": 100},
        "remediation": {"mode": "auto"},
    }
    check = {
        "id": "r2",
        "finding": "LearningRateCheck",
        "step": 300,
        "outcome": "pending",
        "appliedAtStep": 400,
        "actions": ["probe_learning_rate"],
        "search": {"factor": 1.0},
    }
    spikes = Finding(FindingKind.LOSS_SPIKE, Severity.CRITICAL, "a burst", {"step": 400})
    context = {
        "last_healthy_checkpoint": 300,
        "step": 400,
        "interval": 100,
        "remaining_fraction": 0.5,
        "max_steps": 800,
    }
    decision = decide([spikes], [check], spec, {"step": 400}, {"learningRate": 0.001}, context)
    assert decision.plan is not None and decision.plan.finding.kind == "LossSpike"
    # A check not run yet still holds it (its probe would run on rolled-back weights).
    unapplied = {**check, "appliedAtStep": None}
    decision = decide([spikes], [unapplied], spec, {"step": 400}, {"learningRate": 0.001}, context)
    assert decision.plan is None and decision.waiting == "waiting for the outcome of r2"
