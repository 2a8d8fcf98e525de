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
from gentrain_operator.milestones import process
from gentrain_operator.trainer_config import FAMILY_DEFAULTS


def gan_job(**remediation: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "n", "generation": 4},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring8"},
            "training": {
                "maxSteps": 5000,
                "hyperparameters": {
                    "ganLoss": "minimax",
                    "generatorLearningRate": 1e-4,
                    "discriminatorLearningRate": 1e-3,
                },
            },
            "checkpoints": {"interval": 250},
            "remediation": {
                "mode": "auto",
                "cooldownMilestones": 1,
                "maxActions": 8,
                **remediation,
            },
        },
        "status": {},
    }


def ring(step: int, covered: int, generation: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "step": step,
        "time": float(step),
        "generation": generation,
        "nonfinite": 0,
        "loss_mean": {"discriminator": 1.0, "generator": 1.0},
        "modes_covered": covered,
        "modes": 8,
        "high_quality_ratio": 0.5,
        **extra,
    }


def run_milestones(
    job: dict[str, Any], milestones: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Any]]:
    """Feeds milestones to `process` as the operator would, applying its spec patches."""
    outcomes = []
    for record in milestones:
        outcome = process(record, job, now=0.0)
        job["status"] = {**job["status"], **outcome.status}
        if outcome.spec is not None:
            job["spec"] = outcome.spec
            job["metadata"]["generation"] += 1
        outcomes.append(outcome)
    return job, outcomes


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


def test_a_probe_that_kept_the_rate_is_judged_where_it_ran_and_one_that_moved_it_is_not() -> None:
    finding = Finding("PosteriorCollapse", "critical", "", {})
    probe = {"id": "r1", "finding": "PosteriorCollapse", "actions": ["probe_learning_rate"]}
    kept = {**probe, "outcome": "pending", "appliedAtStep": 750, "search": {"factor": 1.0}}
    moved = {**kept, "search": {"factor": 10.0}}
    at_750 = {"step": 750}
    assert policy.judge([kept], [finding], at_750) == {"r1": "persisting"}
    assert policy.judge([moved], [finding], at_750) == {}
    assert policy.judge([moved], [finding], {"step": 1000}) == {"r1": "persisting"}
    changed = {**kept, "actions": ["probe_learning_rate", "enable_clipping"]}
    assert policy.judge([changed], [finding], at_750) == {}


def test_a_fresh_start_in_force_for_the_window_that_shows_it_is_judged_there() -> None:
    """The built-in trainer takes a change up between milestones: a fresh start decided at
    500 and taken up at step 500 trained the whole window 500-750 from its own weights, so
    750 shows whether it worked, not 1,000. Taken up late in the window (at 700), or with
    no step said (a program that takes changes up at its milestones), it waits for the
    next window; so does a change made in place, whose window starts from weights the old
    setting trained (a discriminator's lead outlasts the step ratio that gave it)."""
    finding = Finding("NotLearning", "critical", "", {})
    record = {
        "id": "r1",
        "finding": "NotLearning",
        "actions": ["reinitialize", "search_learning_rate"],
        "outcome": "pending",
        "appliedAtStep": 750,
    }
    at_750 = {"step": 750}
    whole = {**record, "appliedFromStep": 500}
    assert policy.judge([whole], [finding], at_750, interval=250) == {"r1": "persisting"}
    assert policy.judge([whole], [], at_750, interval=250) == {"r1": "resolved"}
    late = {**record, "appliedFromStep": 700}
    assert policy.judge([late], [finding], at_750, interval=250) == {}
    assert policy.judge([record], [finding], at_750, interval=250) == {}
    assert policy.judge([whole], [finding], at_750) == {}, "no interval: as before"
    assert policy.judge([late], [finding], {"step": 1000}, interval=250) == {"r1": "persisting"}
    in_place = {**whole, "actions": ["one_discriminator_step"]}
    assert policy.judge([in_place], [finding], at_750, interval=250) == {}
    assert policy.judge([in_place], [finding], {"step": 1000}, interval=250) == {"r1": "persisting"}


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


def custom_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "mine", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "custom"},
            "training": {"maxSteps": 600, "hyperparameters": {"learningRate": 3.0}},
            "checkpoints": {"interval": 100},
            "remediation": {"mode": "auto"},
        },
        "status": {},
    }


def not_learning(step: int, supported: list[str] | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "step": step,
        "time": float(step),
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"total": 0.6},
        "loss_last": {"total": 0.6},
        "baseline_loss": 0.5,
        **extra,
    }
    if supported is not None:
        record["supported_actions"] = supported
    return record


@pytest.mark.parametrize(
    ("supported", "actions"),
    [
        (None, ["reinitialize", "search_learning_rate", "enable_clipping"]),  # every action
        (["reinitialize", "cut_lr", "lower_lr"], ["reinitialize", "cut_lr"]),
        (["cut_lr", "lower_lr"], ["cut_lr"]),
    ],
)
def test_a_program_is_given_only_actions_it_supports(
    supported: list[str] | None, actions: list[str]
) -> None:
    _, outcomes = run_milestones(custom_job(), [not_learning(100, supported)])
    assert [f.kind for f in outcomes[0].findings] == ["NotLearning"]
    assert outcomes[0].record is not None, outcomes[0].status.get("conditions")
    assert outcomes[0].record["actions"] == actions


def test_when_no_supported_action_fits_the_operator_says_so() -> None:
    job, outcomes = run_milestones(custom_job(), [not_learning(100, ["enable_clipping"])])
    assert outcomes[0].record is None and outcomes[0].spec is None
    healthy = next(c for c in job["status"]["conditions"] if c["type"] == "Healthy")
    assert "no action for NotLearning is one the training program supports" in healthy["message"]
    assert "enable_clipping" in healthy["message"]
