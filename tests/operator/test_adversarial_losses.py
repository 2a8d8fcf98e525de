"""A program that plays a game is read as a GAN. Its players' losses are not read as a
single model's: each player's loss rises whenever the other gains, so a spike in it is the
game, not bad data. The built-in GAN family was always spared the loss-spike rule; a
user's GAN program (model.family custom, its losses reported through gentrain-sdk by role:
generator, discriminator or critic) was not, and a healthy one was rolled back for it. The
figures are the evaluation zoo's healthy ring GAN
(bench/zoo/evaluation/healthy-gan-ring-short-intervals.yaml, seed 0) as its program would
report them through the SDK: two spikes in the generator's loss at 200, fifteen at 400
(the window's other figures as at 400), while the run trains on to all 8 modes. And what
such a program reports of its game (its discriminator's accuracy) gets the GAN rules,
reported, not acted on."""

from __future__ import annotations

from typing import Any

from gentrain_operator import snapshot
from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process
from gentrain_sdk import Reporter
from tests.support.policy_runs import run_milestones


def gan_window(step: int, generator_spikes: float, *, names: tuple[str, str]) -> dict[str, Any]:
    first, second = names
    return {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {first: 1.30, second: 0.84},
        "loss_last": {first: 1.34, second: 0.84},
        "loss_max": {first: 1.58, second: 1.23},
        "spikes": {first: 0.0, second: generator_spikes},
        "grad_norm_max": {first: 1.34, second: 2.04},
        "grad_norm_median": {first: 0.59, second: 0.98},
    }


def users_program() -> dict[str, Any]:
    return {
        "metadata": {"name": "my-gan", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "custom"},
            "training": {"maxSteps": 3000},
            "checkpoints": {"interval": 200},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }


def spike_findings(history: list[dict[str, Any]], family: str) -> list[str]:
    return [f.severity for f in diagnose(history, family) if f.kind == "LossSpike"]


def test_a_users_gan_program_is_not_rolled_back_for_its_players_loss_swings() -> None:
    windows = [
        gan_window(s, n, names=("discriminator", "generator")) for s, n in ((200, 2), (400, 15))
    ]
    _, outcomes = run_milestones(users_program(), windows)
    assert all(o.record is None and o.spec is None for o in outcomes), outcomes
    critic = [gan_window(s, n, names=("critic", "generator")) for s, n in ((200, 2), (400, 15))]
    assert spike_findings(critic, "custom") == []


def test_the_same_spikes_in_a_models_own_loss_are_still_a_fault() -> None:
    """The rule still reads every other component: the same windows with the losses
    named as a single model's parts are a burst, acted on at once."""
    history = [
        gan_window(s, n, names=("reconstruction", "total")) for s, n in ((200, 2), (400, 15))
    ]
    assert spike_findings(history[:1], "custom") == ["info"]
    assert spike_findings(history, "custom") == ["critical"]


def reported(figures: dict[str, float], losses: dict[str, float]) -> dict[str, Any]:
    """A program's milestone as the operator reads it: through gentrain-sdk's exposition
    and the operator's own parser."""
    reporter = Reporter(0, max_steps=3000)
    reporter.step(200, losses)
    reporter.milestone(200, figures)
    record = snapshot.milestone(snapshot.parse(reporter.exposition(), 0.0))
    assert record is not None
    return dict(record)


def test_a_users_gan_program_gets_the_gan_diagnosis_reported_not_acted_on() -> None:
    """A program that plays a game and reports its discriminator's accuracy (the
    evaluation zoo's digits GAN under minimax, the discriminator at 10x: 0.99 at its first
    milestone) is told its discriminator is overpowering. The remedies are the built-in
    trainer's spec changes (loss, rates, discriminator steps), which a program's spec does
    not have: the finding is reported in the Healthy condition and nothing is changed."""
    record = reported(
        {"discriminator_accuracy_ratio": 0.99}, {"generator": 4.1, "discriminator": 0.02}
    )
    assert record["discriminator_accuracy_ratio"] == 0.99 and "figures" not in record
    job = users_program()
    outcome = process(record, job, now=0.0)
    assert [f.kind for f in outcome.findings] == ["DiscriminatorOverpowering"]
    assert outcome.record is None and outcome.spec is None
    healthy = next(c for c in outcome.status["conditions"] if c["type"] == "Healthy")
    assert healthy["status"] == "False"
    assert healthy["message"] == (
        "no action for DiscriminatorOverpowering is possible for this job's spec: it is reported"
    )


def test_a_program_that_plays_no_game_is_not_read_as_a_gan() -> None:
    record = reported({"discriminator_accuracy_ratio": 0.99}, {"total": 0.5})
    assert [f.kind for f in diagnose([record], "custom")] == []
