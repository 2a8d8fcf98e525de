"""Diagnosis on recorded milestone windows of real trainer runs (bench/recorder.py):
healthy runs raise nothing worth acting on, broken ones raise the right finding.

Recordings (tests/operator/recordings/*.json), each a real run of the trainer on CPU:
- gan-ring-healthy: non-saturating loss, both LRs 1e-3; 0 -> 7 of 8 modes.
- gan-ring-minimax-strong-d: minimax loss, D LR 10x G LR, ring radius 2 / sigma 0.02; stuck
  on 3 of 8 modes with sharp samples, discriminator right 85-90% of the time.
- vae-healthy / vae-kl-weight-20: KL weight 1 (6-16 active units of 16) / 20 (none).
- transformer-healthy / transformer-high-lr-no-clip: LR 2e-3 (validation 2.61 -> 1.98) / 0.3
  without clipping (stuck at 3.0-3.4).
- diffusion-healthy / diffusion-high-lr: LR 1e-3 (FID 111 -> 46) / 0.05 without clipping
  (FID 536 -> 780).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gentrain_operator.diagnosis import diagnose

RECORDINGS = Path(__file__).with_name("recordings")


def findings_per_milestone(name: str) -> list[set[str]]:
    data = json.loads((RECORDINGS / f"{name}.json").read_text())
    family = data["base"].split("-")[0]
    milestones = data["milestones"]
    return [
        {f.kind for f in diagnose(milestones[: i + 1], family) if f.severity != "info"}
        for i in range(len(milestones))
    ]


@pytest.mark.parametrize(
    "name", ["gan-ring-healthy", "vae-healthy", "transformer-healthy", "diffusion-healthy"]
)
def test_healthy_runs_raise_nothing_to_act_on(name: str) -> None:
    assert findings_per_milestone(name) == [set()] * len(findings_per_milestone(name))


def test_an_overpowering_discriminator_and_the_collapse_it_causes() -> None:
    found = findings_per_milestone("gan-ring-minimax-strong-d")
    assert all("DiscriminatorOverpowering" in f for f in found)
    assert "ModeCollapse" not in found[0], "no collapse is called before the samples are sharp"
    assert all("ModeCollapse" in f for f in found[4:])


def test_posterior_collapse_from_a_heavy_kl_weight() -> None:
    found = findings_per_milestone("vae-kl-weight-20")
    assert found[0] == set(), "the first window is not judged: units wake as the decoder learns"
    assert all(f == {"PosteriorCollapse"} for f in found[1:])


def test_units_not_yet_awake_in_the_first_window_are_not_a_collapse() -> None:
    # The VAE example at its first milestone, 100 steps in (seen on the real node: it drew
    # KL annealing, while by step 200 11 of its 16 units were active on their own).
    first = {
        "step": 100,
        "active_units": 0,
        "latent_dims": 16,
        "kl": 0.013,
        "reconstruction_loss": 27.29,
        "reconstruction_baseline": 27.24,
    }
    assert "PosteriorCollapse" not in {f.kind for f in diagnose([first], "vae")}
    # Still collapsed a window later: that is a collapse.
    later = [first, {**first, "step": 200, "reconstruction_loss": 27.26}]
    assert "PosteriorCollapse" in {f.kind for f in diagnose(later, "vae")}


def test_a_too_high_diffusion_learning_rate() -> None:
    found = findings_per_milestone("diffusion-high-lr")
    assert "ExplodingGradients" in found[0]
    # FID 536, 618, then 780 (1.46x its best) at the recording's last milestone: reported,
    # acted on if the next milestone confirms it (tests/operator/test_confirmed_findings.py).
    data = json.loads((RECORDINGS / "diffusion-high-lr.json").read_text())
    last = {f.kind: f.severity for f in diagnose(data["milestones"], "diffusion")}
    assert last.get("FIDRegression") == "info"


def test_a_transformer_stuck_at_a_high_learning_rate_plateaus() -> None:
    data = json.loads((RECORDINGS / "transformer-high-lr-no-clip.json").read_text())
    kinds = [
        {f.kind for f in diagnose(data["milestones"][: i + 1], "transformer")}
        for i in range(len(data["milestones"]))
    ]
    assert "Plateau" in kinds[3]
    assert not any("Overfitting" in k for k in kinds)


def test_non_finite_losses_are_critical_whatever_the_family() -> None:
    milestone = {"step": 100, "nonfinite": 3, "loss_mean": {"model": float("nan")}}
    for family in ("gan", "vae", "transformer", "diffusion"):
        [finding] = [f for f in diagnose([milestone], family) if f.kind == "NonFiniteLoss"]
        assert finding.severity == "critical" and finding.evidence["nonfinite_steps"] == 3


def test_one_milestone_on_few_sharp_modes_is_not_a_collapse() -> None:
    from tests.support.policy_runs import ring

    # A healthy run of the zoo (seed 2) dipped from 7 to 4 sharp modes for one milestone.
    dip = [ring(2500, 7, high_quality_ratio=0.58), ring(3000, 4, high_quality_ratio=0.52)]
    assert "ModeCollapse" not in {f.kind for f in diagnose(dip, "gan")}
    still = [*dip, ring(3500, 4, high_quality_ratio=0.6)]
    assert "ModeCollapse" in {f.kind for f in diagnose(still, "gan")}
    # Down to 2 of 8 sharp modes is a collapse at once.
    assert "ModeCollapse" in {f.kind for f in diagnose([dip[0], ring(3000, 2)], "gan")}


def grid(step: int, covered: int, sharp: float = 0.6) -> dict:
    """A milestone of a GAN on the 25-mode grid."""
    from tests.support.policy_runs import ring

    return {**ring(step, covered, high_quality_ratio=sharp), "modes": 25}


def test_a_gan_at_more_modes_than_ever_before_is_spreading_not_collapsing() -> None:
    # The evaluation zoo's healthy 25-mode GAN (the minimax case's reference, seed 1): from
    # 0 modes to 12, sharp on 11 and then 12 of 25 — its best so far — drew ModeCollapse.
    climbing = [grid(3000, 8, 0.33), grid(3500, 11, 0.30), grid(4000, 11, 0.52)]
    climbing.append(grid(4500, 12, 0.53))
    assert "ModeCollapse" not in {f.kind for f in diagnose(climbing, "gan")}
    climbing.append(grid(5000, 11, 0.62))  # one mode fewer, after a new best: no collapse
    assert "ModeCollapse" not in {f.kind for f in diagnose(climbing, "gan")}
    # Sharp on few and no longer rising — no more modes than three milestones before — a
    # collapse, as before; a milestone after the first stall it is still above 3,000's 8.
    stalled = [*climbing[:3], grid(4500, 11, 0.53)]
    assert "ModeCollapse" not in {f.kind for f in diagnose(stalled, "gan")}
    stalled.append(grid(5000, 11, 0.55))
    assert "ModeCollapse" in {f.kind for f in diagnose(stalled, "gan")}


def test_a_grid_gan_dipping_on_its_way_up_is_not_collapsing() -> None:
    # The calibration grid's reference, seed 2 (session 42): 13, 18, 16, 14 of 25 from step
    # 4,500 — sharp on fewer than three quarters of the modes twice, but above where it was
    # three milestones before; it goes on to 19 left alone.
    dipping = [grid(3500, 6, 0.24), grid(4000, 7, 0.23), grid(4500, 13, 0.44)]
    dipping += [grid(5000, 18, 0.66), grid(5500, 16, 0.55), grid(6000, 14, 0.53)]
    assert "ModeCollapse" not in {f.kind for f in diagnose(dipping, "gan")}


def test_a_ring_gan_that_fell_and_crawls_back_is_still_collapsed() -> None:
    from tests.support.policy_runs import ring

    # The calibration ring at 10x its rate, left alone, seed 1: 7 of 8 modes, then 1, and
    # back up to 3-4 sharp ones — more than three milestones before, but a quarter of the
    # data's modes short of its best.
    coverage = [(2500, 7, 0.27), (3000, 1, 0.04), (3500, 2, 0.13), (4000, 3, 0.17)]
    coverage += [(4500, 2, 0.08), (5000, 4, 0.89), (5500, 3, 0.78)]
    fallen = [ring(step, n, high_quality_ratio=q) for step, n, q in coverage]
    assert "ModeCollapse" in {f.kind for f in diagnose(fallen, "gan")}


def test_a_fid_rise_within_its_own_uncertainty_is_not_a_regression() -> None:
    # A healthy image GAN's FID on 300 samples: 40, 30, 25, then 33 (1.32x its best).
    def scored(fids: list[float], stderr: float | None) -> list[dict]:
        extra = {} if stderr is None else {"fid_stderr": stderr}
        return [{"step": 200 * (i + 1), "fid": f, **extra} for i, f in enumerate(fids)]

    def regression(history: list[dict]) -> bool:
        return "FIDRegression" in {f.kind for f in diagnose(history, "gan")}

    swing = [40.0, 30.0, 25.0, 33.0]
    assert not regression(scored(swing, 3.0)), "8 above the best, 2 x 4.2 of noise"
    assert regression(scored(swing, 1.0)), "8 above the best, 2 x 1.4 of noise"
    assert regression(scored(swing, None)), "without a standard error: the ratio alone"


def test_modes_lost_are_counted_against_the_number_of_modes() -> None:
    from tests.support.policy_runs import ring

    # 2 of the ring's 8 modes lost twice in a row is a collapse; 2 of a grid's 25 is a swing.
    ring_loss = [ring(1000, 8, high_quality_ratio=0.6), ring(1500, 6, high_quality_ratio=0.6)]
    ring_loss.append(ring(2000, 6, high_quality_ratio=0.6))
    assert "ModeCollapse" in {f.kind for f in diagnose(ring_loss, "gan")}
    grid_swing = [grid(1000, 25), grid(1500, 23), grid(2000, 23)]
    assert "ModeCollapse" not in {f.kind for f in diagnose(grid_swing, "gan")}
    grid_loss = [grid(1000, 25), grid(1500, 18), grid(2000, 18)]
    assert "ModeCollapse" in {f.kind for f in diagnose(grid_loss, "gan")}


def test_a_wide_latent_that_prunes_its_units_is_not_a_collapse() -> None:
    def vae(active: int, reconstruction: float) -> list[dict]:
        return [
            {"step": 1000, "active_units": active, "latent_dims": 64},
            {
                "step": 1500,
                "active_units": active,
                "latent_dims": 64,
                "reconstruction_loss": reconstruction,
                "reconstruction_baseline": 27.24,
            },
        ]

    def collapsed(history: list[dict]) -> bool:
        return "PosteriorCollapse" in {f.kind for f in diagnose(history, "vae")}

    assert not collapsed(vae(9, 20.1)), "9 of 64 units carry the images: pruning"
    assert collapsed(vae(0, 27.3)), "none active, reconstruction at the latent-free decoder's"
    assert collapsed(vae(2, 26.9)), "nearly none, reconstruction within 5% of it"
    without_baseline = [
        {k: v for k, v in m.items() if k != "reconstruction_baseline"} for m in vae(9, 20.1)
    ]
    assert collapsed(without_baseline), "an older trainer: the unit count alone decides"


def window(step: int, largest: float, median: float, clip: float) -> dict[str, object]:
    return {
        "step": step,
        "grad_norm_max": {"model": largest},
        "grad_norm_median": {"model": median},
        "grad_clip": clip,
    }


@pytest.mark.parametrize(
    ("history", "severity"),
    [
        # A 150x spike the clip of 1.0 cut to 2.5x the median: reported, not acted on.
        ([window(100, 60.0, 0.4, 1.0)], "info"),
        # ... unless the window before exploded too: a spike that recurs is acted on.
        ([window(100, 60.0, 0.4, 1.0), window(200, 60.0, 0.4, 1.0)], "warning"),
        # No clip in force (0): the whole spike reached the weights.
        ([window(100, 60.0, 0.4, 0.0)], "warning"),
        # A clip too loose to matter (100 against a median of 0.4) held nothing.
        ([window(100, 60.0, 0.4, 100.0)], "warning"),
    ],
)
def test_a_gradient_spike_the_clip_held_is_reported_not_acted_on(
    history: list[dict[str, object]], severity: str
) -> None:
    [finding] = [f for f in diagnose(history, "transformer") if f.kind == "ExplodingGradients"]
    assert finding.severity == severity
