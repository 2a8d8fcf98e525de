"""The weights' growth in their first steps at the full rate: a component's weight norm
GROWTH_STEPS steps past its warm-up over its norm at initialisation — measured once per
initialisation, exported from then on, kept across a restart, measured afresh after a
fresh start or a reset discriminator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from gentrain_contract import metrics
from gentrain_trainer.weight_growth import GROWTH_STEPS, WeightGrowth, weight_norm
from tests.trainer.conftest import MakeTrainer, tiny


def linear(scale: float) -> torch.nn.Module:
    module = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.full((2, 2), scale))
    return module


def test_measured_once_at_its_step_past_the_warm_up() -> None:
    model = linear(1.0)
    growth = WeightGrowth()
    growth.begin({"model": model}, step=30)
    with torch.no_grad():
        model.weight.mul_(1.5)
    for step in range(31, 30 + 20 + GROWTH_STEPS):  # warm-up 20: not yet
        growth.observe({"model": model}, step, warmup=20)
    assert growth.growth == {}
    growth.observe({"model": model}, 30 + 20 + GROWTH_STEPS, warmup=20)
    assert growth.growth == {"model": pytest.approx(1.5)}
    with torch.no_grad():
        model.weight.mul_(2.0)  # later growth is a healthy run's too: not measured
    growth.observe({"model": model}, 31 + 20 + GROWTH_STEPS, warmup=20)
    assert growth.growth == {"model": pytest.approx(1.5)}


def test_a_reset_component_is_measured_afresh_and_the_state_round_trips() -> None:
    generator, discriminator = linear(1.0), linear(2.0)
    components = {"generator": generator, "discriminator": discriminator}
    growth = WeightGrowth()
    growth.begin(components, step=0)
    growth.observe(components, GROWTH_STEPS, warmup=0)
    assert growth.growth == {"generator": 1.0, "discriminator": 1.0}
    growth.begin(components, step=500, only={"discriminator"})
    assert growth.growth == {"generator": 1.0}
    assert growth.started["discriminator"] == (500, pytest.approx(weight_norm(discriminator)))
    restored = WeightGrowth()
    restored.load(yaml.safe_load(yaml.safe_dump(growth.state())))
    assert restored.started == growth.started and restored.growth == growth.growth
    # A checkpoint from before the trainer measured it: no figure, never a wrong one.
    restored.load(None)
    assert restored.growth == {}


def test_exported_at_milestones_kept_across_a_restart_and_dropped_by_a_fresh_start(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    config = tiny(
        "vae-digits",
        training={"max_steps": 150},
        checkpoints={"interval": 50, "keep": 5},
        hyperparameters={"lr": 0.01, "kl_weight": 1.0},
    )
    trainer = make_trainer(config, name="grow", evaluate=False)
    name = metrics.MILESTONE_WEIGHT_GROWTH.name
    for _ in range(50):
        trainer.train_one()
    trainer.milestone()
    assert name not in trainer.collector.milestone  # 50 steps in: not measured yet
    for _ in range(50):
        trainer.train_one()
    trainer.milestone()
    exported = trainer.collector.milestone[name]
    (figure,) = exported.values()
    (component,) = trainer.family.components()  # the VAE's one network
    assert list(exported) == [(component,)] and figure > 1.0

    restarted = make_trainer(config, name="grow", evaluate=False)
    assert restarted.step == 100 and restarted.weight_growth.growth == {component: figure}

    config["commands"] = [{"id": "r1-0", "action": "reinitialize"}]
    (tmp_path / "grow.yaml").write_text(yaml.safe_dump(config))
    for _ in range(50):
        restarted.train_one()
    restarted.milestone()  # takes up the fresh start at step 150's milestone
    assert restarted.origin == 150 and restarted.weight_growth.growth == {}
    assert restarted.weight_growth.started[component][0] == 150


def test_a_rate_far_too_high_grows_the_weights_far_more(make_trainer: MakeTrainer) -> None:
    grown = {}
    for lr in (0.001, 0.02):
        config = tiny(
            "vae-digits",
            training={"max_steps": GROWTH_STEPS},
            checkpoints={"interval": GROWTH_STEPS, "keep": 1},
            hyperparameters={"lr": lr, "kl_weight": 1.0},
        )
        trainer = make_trainer(config, name=f"lr{lr}", evaluate=False)
        trainer.run()
        (grown[lr],) = trainer.weight_growth.growth.values()
    assert grown[0.02] > 1.5 * grown[0.001]


def test_a_component_updated_k_times_per_step_is_measured_after_its_own_updates() -> None:
    # A discriminator at five steps per generator step makes GROWTH_STEPS updates in a
    # fifth of the trainer steps; measured at 100 trainer steps it read 500 updates at a
    # healthy rate as a rate too high (evaluation zoo's ring GAN, 1.23-1.32).
    generator, discriminator = linear(1.0), linear(1.0)
    components = {"generator": generator, "discriminator": discriminator}
    growth = WeightGrowth()
    growth.begin(components, step=0)
    with torch.no_grad():
        discriminator.weight.mul_(1.1)
    growth.observe(components, GROWTH_STEPS // 5, warmup=0, updates_per_step={"discriminator": 5})
    assert growth.growth == {"discriminator": pytest.approx(1.1)}
    with torch.no_grad():
        discriminator.weight.mul_(2.0)
    growth.observe(components, GROWTH_STEPS, warmup=0, updates_per_step={"discriminator": 5})
    assert growth.growth == {"discriminator": pytest.approx(1.1), "generator": 1.0}


def test_the_gan_reports_its_discriminator_steps(make_trainer: MakeTrainer) -> None:
    config = tiny("gan-ring", hyperparameters={"d_steps": 5})
    trainer = make_trainer(config, name="gan5", evaluate=False)
    assert trainer.family.updates_per_step() == {"discriminator": 5}
