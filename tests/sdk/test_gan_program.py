"""A user's own GAN through gentrain-sdk (examples/sdk/gan_loop.py: a plain PyTorch GAN on
a ring of eight Gaussians): its expositions, parsed by the operator's own parser, make
milestones the operator handles as a custom program's. Under the saturating (minimax)
loss with the discriminator at 10x the generator's rate, the program's discriminator is
right more often than the built-in GAN's threshold (0.82) and is found overpowering; the
finding is reported, not acted on. The healthy program stays under it and draws nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runs import run_milestones
from tests.support.programs import EXAMPLES, run_program

GAN_LOOP = EXAMPLES / "gan_loop.py"


def run_gan_loop(monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[dict[str, Any]]:
    """The example run to its end; the milestone a scrape read right after each."""
    records = run_program(monkeypatch, GAN_LOOP, "--steps", "500", "--interval", "250", *argv)
    return [dict(r) for r in records]


def handled(records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """The milestones through the operator's own handling of a custom job in `auto`."""
    job = {
        "metadata": {"name": "my-gan", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "custom"},
            "training": {"maxSteps": 500},
            "checkpoints": {"interval": 250},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }
    return run_milestones(job, records)


def test_a_users_gan_whose_discriminator_overpowers_is_told_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = run_gan_loop(
        monkeypatch, "--loss", "minimax", "--generator-rate", "1e-4", "--discriminator-rate", "1e-3"
    )
    assert [r["step"] for r in records] == [250, 500]
    assert set(records[-1]["loss_mean"]) == {"generator", "discriminator"}
    _, outcomes = handled(records)
    assert [f.kind for f in outcomes[-1].findings if f.severity != "info"] == [
        "DiscriminatorOverpowering"
    ]
    assert all(o.record is None and o.spec is None for o in outcomes)  # reported, not acted on
    said = [next(c for c in o.status["conditions"] if c["type"] == "Healthy") for o in outcomes]
    assert [c["status"] for c in said] == ["False", "False"]
    assert said[0]["message"] == (
        "no action for DiscriminatorOverpowering is possible for this job's spec: it is reported"
    )


def test_a_users_healthy_gan_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    records = run_gan_loop(monkeypatch)
    assert records[-1]["discriminator_accuracy_ratio"] < 0.82
    _, outcomes = handled(records)
    assert not [f for o in outcomes for f in o.findings if f.severity != "info"]
    assert all(o.record is None for o in outcomes)
