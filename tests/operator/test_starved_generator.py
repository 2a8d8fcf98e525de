"""A minimax generator starved by a faster discriminator: found from the first milestone
though the discriminator is only ahead, not winning outright; not found where the rates
are balanced or the loss does not saturate. Figures from the calibration zoo's 25-mode
grid (bench/zoo/calibration/gan-grid25-minimax-fast-discriminator.yaml, seeds 0-2) and
the same runs with the rates balanced (session 42). What it leads to — a fresh start with
a fair game — is in test_fresh_start.py."""

from __future__ import annotations

from typing import Any

import pytest

from gentrain_operator.diagnosis import diagnose
from tests.support.policy_runs import ring


def grid(
    step: int, accuracy: float, generator: float, discriminator: float, loss: str | None
) -> dict[str, Any]:
    said = {} if loss is None else {"gan_loss": loss}
    return ring(
        step,
        0,
        modes=25,
        high_quality_ratio=0.016,
        discriminator_accuracy_ratio=accuracy,
        update_ratio={"generator": generator, "discriminator": discriminator},
        **said,
    )


@pytest.mark.parametrize(
    ("accuracy", "generator", "discriminator", "loss", "found"),
    [
        (0.7172, 0.001007, 0.008542, "minimax", True),  # discriminator at 10x, seed 1, step 500
        (0.7837, 0.0009018, 0.002574, "minimax", True),  # ... its generator at its fastest (0.35)
        (0.7071, 0.009589, 0.00885, "minimax", False),  # rates balanced (ring), seed 0, 500
        (0.6232, 0.001979, 0.003931, "minimax", False),  # ... its slowest generator (0.50)
        (0.5273, 0.0009678, 0.002413, "minimax", False),  # ... slower still, the game even
        (0.7172, 0.001007, 0.008542, "non_saturating", False),  # a loss that does not saturate
        (0.7172, 0.001007, 0.008542, None, False),  # a program that does not say its loss
    ],
)
def test_a_discriminator_ahead_of_a_starved_minimax_generator_overpowers_it(
    accuracy: float, generator: float, discriminator: float, loss: str | None, found: bool
) -> None:
    milestone = grid(500, accuracy, generator, discriminator, loss)
    kinds = [f.kind for f in diagnose([milestone], "gan")]
    assert ("DiscriminatorOverpowering" in kinds) == found
