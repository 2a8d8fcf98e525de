"""The remediation policy and the milestone step, table-driven (pure, no cluster)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_contract.commands import ACTIONS as COMMAND_ACTIONS
from gentrain_operator import policy
from gentrain_operator.diagnosis import Finding
from gentrain_operator.trainer_config import FAMILY_DEFAULTS
from tests.support.policy_runs import gan_job, ring, run_milestones


def test_mode_collapse_climbs_the_ladder_while_it_persists() -> None:
    job, outcomes = run_milestones(
        gan_job(),
        [
            ring(250, 5),  # sharp on 5 of 8 once: could be a healthy run's dip
            ring(500, 5),  # ... twice in a row: mode collapse -> lower D's learning rate
            ring(750, 5, generation=5),  # the trainer took the change up here
            ring(1000, 4, generation=5),  # still there after a window with it: persisting
        ],
    )
    first = outcomes[1].record
    assert first is not None and first["actions"] == ["lower_discriminator_lr"]
    assert first["changes"] == [
        {"field": "training.hyperparameters.discriminatorLearningRate", "from": 1e-3, "to": 5e-4}
    ]
    assert outcomes[2].record is None, "an action in flight is judged before another is taken"
    second = outcomes[3].record
    assert second is not None and second["actions"] == ["switch_gan_loss"]
    assert job["spec"]["training"]["hyperparameters"]["ganLoss"] == "non_saturating"
    assert job["status"]["remediations"][0]["outcome"] == "persisting"
    assert job["status"]["health"] == "Remediating"


def test_a_collapsed_generator_gets_its_discriminator_reset_not_a_learning_rate_tweak() -> None:
    job, outcomes = run_milestones(gan_job(), [ring(250, 8), ring(500, 1)])
    record = outcomes[1].record
    assert record is not None and record["actions"] == ["reset_discriminator"]
    assert job["spec"]["commands"] == [{"id": "r1-0", "action": "reset_discriminator"}]
    hp = job["spec"]["training"]["hyperparameters"]
    assert (
        hp["ganLoss"] == "non_saturating"
        and hp["discriminatorLearningRate"] == hp["generatorLearningRate"]
    )


def test_resolved_actions_clear_and_the_last_healthy_checkpoint_moves() -> None:
    job, _outcomes = run_milestones(
        gan_job(),
        [ring(250, 5), ring(500, 5), ring(750, 7, generation=5), ring(1000, 8, generation=5)],
    )
    assert job["status"]["remediations"][0]["outcome"] == "resolved"
    assert job["status"]["health"] == "Healthy"
    assert job["status"]["lastHealthyCheckpoint"] == 1000
    assert len(job["status"]["remediations"]) == 1


def test_non_finite_loss_rolls_back_to_the_last_healthy_checkpoint_with_lower_lr_and_clipping() -> (
    None
):
    job = {
        "metadata": {"name": "t", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "dataset": {"name": "pydoc"},
            "training": {
                "maxSteps": 1000,
                "hyperparameters": {"learningRate": 0.01, "gradientClip": 0},
            },
            "checkpoints": {"interval": 100},
        },
        "status": {},
    }
    healthy = {
        "step": 100,
        "time": 1.0,
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"model": 3.0},
    }
    broken = {
        "step": 200,
        "time": 2.0,
        "generation": 1,
        "nonfinite": 12,
        "loss_mean": {"model": float("nan")},
    }
    job, outcomes = run_milestones(job, [healthy, broken])
    record = outcomes[1].record
    assert record is not None and record["finding"] == "NonFiniteLoss"
    assert job["spec"]["commands"] == [
        {"id": "r1-0", "action": "rollback", "step": 100, "skipBatches": 0}
    ]
    hp = job["spec"]["training"]["hyperparameters"]
    assert hp == {"learningRate": 0.005, "gradientClip": 1.0}


def test_recommend_mode_records_but_never_patches() -> None:
    job, outcomes = run_milestones(gan_job(mode="recommend"), [ring(250, 5), ring(500, 5)])
    assert outcomes[1].spec is None
    assert outcomes[1].record is not None and outcomes[1].record["outcome"] == "recommended"
    assert job["spec"]["training"]["hyperparameters"]["discriminatorLearningRate"] == 1e-3
    assert any(reason == "RemediationRecommended" for _, reason, _ in outcomes[1].events)


def test_off_mode_and_disabled_rules_take_no_action() -> None:
    _, outcomes = run_milestones(gan_job(mode="off"), [ring(250, 5), ring(500, 5)])
    assert outcomes[1].record is None and outcomes[1].findings
    _, outcomes = run_milestones(
        gan_job(rules={"ModeCollapse": {"enabled": False}}), [ring(250, 5), ring(500, 5)]
    )
    assert outcomes[1].record is None


def test_the_cap_on_actions_exhausts_remediation() -> None:
    job, _outcomes = run_milestones(
        gan_job(maxActions=1),
        [ring(250, 5), ring(500, 5), ring(750, 5, generation=5), ring(1000, 5, generation=5)],
    )
    assert job["status"]["health"] == "Exhausted"
    healthy = next(c for c in job["status"]["conditions"] if c["type"] == "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "RemediationExhausted"


def test_no_action_sets_a_field_back_to_a_value_an_earlier_action_left() -> None:
    finding = Finding("ModeCollapse", "warning", "", {"collapsed": True})
    spec = gan_job()["spec"]
    spec["training"]["hyperparameters"]["ganLoss"] = "hinge"
    earlier = [
        {
            "id": "r1",
            "step": 0,
            "finding": "DiscriminatorOverpowering",
            "rung": 1,
            "outcome": "persisting",
            "changes": [
                {
                    "field": "training.hyperparameters.ganLoss",
                    "from": "non_saturating",
                    "to": "hinge",
                }
            ],
        }
    ]
    decision = policy.decide(
        [finding],
        earlier,
        spec,
        {"step": 1000},
        FAMILY_DEFAULTS["gan"],
        {"last_healthy_checkpoint": None, "interval": 250},
    )
    # Resetting D would switch the loss back to non_saturating, which r1 moved away from,
    # and rolling back needs a healthy checkpoint: nothing is left.
    assert decision.plan is None and decision.exhausted


@pytest.mark.parametrize("lr, possible", [(1e-3, True), (1.5e-6, False)])
def test_learning_rates_never_drop_below_the_floor(lr: float, possible: bool) -> None:
    spec = copy.deepcopy(gan_job()["spec"])
    spec["training"]["hyperparameters"]["discriminatorLearningRate"] = lr
    finding = Finding("DiscriminatorOverpowering", "warning", "", {})
    spec["remediation"]["rules"] = {
        "DiscriminatorOverpowering": {"actions": ["lower_discriminator_lr"]}
    }
    decision = policy.decide(
        [finding], [], spec, {"step": 500}, FAMILY_DEFAULTS["gan"], {"interval": 250}
    )
    assert (decision.plan is not None) is possible


def test_the_api_accepts_every_action_and_command_the_operator_and_trainer_know() -> None:
    crd = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "crds" / "generativetrainingjobs.gentrain.io.yaml"
        ).read_text()
    )
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["properties"]["remediation"]["properties"]["rules"]["additionalProperties"]
    actions = set(rules["properties"]["actions"]["items"]["enum"])
    used = {a for ladder in policy.LADDERS.values() for rung in ladder for a in rung}
    assert used <= actions, used - actions
    commands = set(spec["properties"]["commands"]["items"]["properties"]["action"]["enum"])
    assert commands == set(COMMAND_ACTIONS)


def test_several_discriminator_steps_are_undone_first_unless_the_loss_is_wgan() -> None:
    finding = Finding("DiscriminatorOverpowering", "warning", "", {})

    def first_plan(remaining: float = 0.9, **hyperparameters: Any) -> policy.Plan | None:
        spec = gan_job()["spec"]
        spec["training"]["hyperparameters"].update(hyperparameters)
        decision = policy.decide(
            [finding],
            [],
            spec,
            {"step": 500},
            FAMILY_DEFAULTS["gan"],
            {"last_healthy_checkpoint": None, "interval": 500, "remaining_fraction": remaining},
        )
        return decision.plan

    # Afresh while half the run remains: undone in place at 500, the calibration ring with
    # five discriminator steps stayed on 4 of 8 modes; afresh, 8 (session 36).
    plan = first_plan(ganLoss="minimax", discriminatorSteps=5)
    assert plan is not None and plan.actions == ["reinitialize", "one_discriminator_step"]
    assert [(c.field, c.old, c.new) for c in plan.changes] == [
        ("training.hyperparameters.discriminatorSteps", 5, 1)
    ]
    assert plan.commands == [{"action": "reinitialize"}]
    # Later, in place.
    plan = first_plan(remaining=0.4, ganLoss="minimax", discriminatorSteps=5)
    assert plan is not None and plan.actions == ["one_discriminator_step"]
    # WGAN's critic takes several steps by design; one step per step needs nothing undone.
    for hyperparameters in (
        {"ganLoss": "wgan_gp", "discriminatorSteps": 5},
        {"ganLoss": "minimax"},
    ):
        plan = first_plan(**hyperparameters)
        assert plan is not None and "one_discriminator_step" not in plan.actions, hyperparameters


def test_nothing_is_changed_at_the_last_milestone_of_a_run() -> None:
    # Seen on a loaded machine: a second action decided at the final milestone was patched
    # into the spec, its status write failed, and no later milestone could record it.
    finding = Finding("DiscriminatorOverpowering", "warning", "", {})
    decision = policy.decide(
        [finding],
        [],
        gan_job()["spec"],
        {"step": 3000},
        FAMILY_DEFAULTS["gan"],
        {"last_healthy_checkpoint": None, "interval": 500, "remaining_fraction": 0.0},
    )
    assert decision.plan is None and decision.waiting == "the run has reached its last step"
