"""FID's standard error: it shrinks as the generated sample grows, and covers the spread
of FID between independent samples of the same model (what a swing between two
milestones of a healthy run looks like)."""

from __future__ import annotations

import statistics

import torch

from gentrain_trainer.evaluation import distances


def features(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 16, generator=g) * 1.3 + shift


def test_fid_standard_error_matches_the_spread_between_samples() -> None:
    real = features(5000, 0)
    estimates = [distances.fid_with_stderr(real, features(300, s, 0.2)) for s in range(1, 9)]
    values = [v for v, _ in estimates]
    errors = [e for _, e in estimates]
    assert values[0] == distances.fid(real, features(300, 1, 0.2))
    spread = statistics.stdev(values)
    # Bootstrap of one sample against the real spread between eight samples.
    assert 0.5 * spread < statistics.mean(errors) < 2.0 * spread, (errors, spread)
    larger = distances.fid_with_stderr(real, features(3000, 1, 0.2))[1]
    assert larger < 0.5 * statistics.mean(errors)
    assert distances.fid_with_stderr(real, features(300, 1), resamples=0)[1] != 0  # NaN
