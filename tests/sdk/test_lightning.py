"""Lightning's `Trainer` under gentrain through its GentrainCallback
(examples/sdk/lightning_regression.py): a far too high rate is read by the operator's
parser and diagnosed at the first milestone; the job's rate, clipping and commands reach
the Trainer's optimizer through the callback, and a search picks a rate that learns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_operator import trainer_config
from gentrain_operator.diagnosis import diagnose
from tests.support.programs import (
    EXAMPLES,
    Job,
    final_validation_loss,
    rate_checked_after_first_milestone,
    rates_reported,
    rollbacks,
    run_program,
)

pytest.importorskip("lightning")
EXAMPLE = EXAMPLES / "lightning_regression.py"


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, between: Any = None) -> list[Any]:
    """The example to its end; the milestones a scrape read after each."""
    return run_program(monkeypatch, EXAMPLE, *argv, between=between)


def test_a_far_too_high_rate_is_diagnosed_at_the_first_milestone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = run(monkeypatch, "--learning-rate", "1", "--steps", "200")
    assert [r["step"] for r in records] == [100, 200]  # one milestone per validation
    first = records[0]
    assert first["loss_mean"].keys() == {"total"} and "validation_loss" in first
    assert first["grad_norm_median"]["total"] > 0
    assert "NotLearning" in {f.kind for f in diagnose(records[:1], "custom")}


def test_the_jobs_changes_and_a_search_reach_the_trainer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    spec: dict[str, Any] = {
        "model": {"family": "custom"},
        "training": {"maxSteps": 400, "hyperparameters": {"learningRate": 1.0}},
    }
    config.write_text(yaml.safe_dump(trainer_config.render(spec, 1)))
    monkeypatch.setenv("GENTRAIN_CONFIG", str(config))

    def remediate(milestones: int) -> None:  # as the operator's first NotLearning rung
        if milestones == 1:
            spec["training"]["hyperparameters"]["gradientClip"] = 1.0
            spec["commands"] = [
                {"id": "r1-reinitialize", "action": "reinitialize"},
                {"id": "r1-search", "action": "search_learning_rate"},
            ]
            config.write_text(yaml.safe_dump(trainer_config.render(spec, 2)))

    rates = rates_reported(monkeypatch)
    records = run(monkeypatch, "--steps", "400", between=remediate)
    assert rates[50] == pytest.approx(1.0)  # the job's rate from the start
    assert records[0]["supported_actions"] == [
        "cut_lr",
        "enable_clipping",
        "lower_lr",
        "probe_learning_rate",
        "reinitialize",
        "rollback",
        "rollback_skip_batches",
        "search_learning_rate",
    ]
    searched = records[1]["learning_rate_search"]
    assert searched["factor"] <= 0.03, searched  # 1.0 -> 0.03 or below
    assert rates[250] == pytest.approx(searched["factor"])
    assert records[2]["origin_step"] == 200  # started afresh at the second milestone
    assert records[1]["hyperparameters"]["gradientClip"] == 1.0
    assert records[-1]["validation_loss"] < 0.3 * records[-1]["baseline_loss"]


def test_a_rate_check_moves_a_rate_far_too_low_up_through_the_trainer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator's rate check on a Lightning module at a hundredth of the rate that
    trains it well: judged on the validation data, ten times the rate wins, and so does a
    hundred times; the Trainer trains on at the rate chosen."""
    check = rate_checked_after_first_milestone(monkeypatch, tmp_path, 400, 0.00003)

    rates = rates_reported(monkeypatch)
    records = run(monkeypatch, "--steps", "400", between=check)
    probed = records[1]["learning_rate_search"]
    assert set(probed["losses"]) == {"10", "1", "100"}, probed
    assert probed["factor"] == 100.0, probed
    assert probed["steps"] == 20 * 3
    assert rates[150] == pytest.approx(0.00003)
    assert rates[250] == pytest.approx(0.003)
    assert "origin_step" not in records[2] or records[2]["origin_step"] == 0  # not afresh
    checked = records[-1]["validation_loss"]
    untouched = final_validation_loss(
        monkeypatch, EXAMPLE, "--steps", "400", "--learning-rate", "0.00003"
    )
    assert checked < 0.5 * untouched, (checked, untouched)


def test_a_rollback_loads_the_checkpoint_at_its_step_and_keeps_the_jobs_rate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    from gentrain_sdk import lightning as adapter

    job = Job(
        monkeypatch,
        tmp_path,
        {
            "model": {"family": "custom"},
            "training": {"maxSteps": 400, "hyperparameters": {"learningRate": 0.003}},
        },
    )
    checkpoints = job.checkpoints

    def remediate(milestones: int) -> None:  # a rollback and a lower rate, as one rung
        if milestones == 2:
            job.spec["training"]["hyperparameters"]["learningRate"] = 0.001
            job.spec["commands"] = rollbacks(50, 150)
            job.write(2)

    after: list[Any] = []
    roll_back = adapter.GentrainCallback._roll_back

    def roll_back_and_look(self: Any, command: Any) -> None:
        roll_back(self, command)
        adam = self.trainer.optimizers[0]
        after.append(
            (
                {k: v.clone() for k, v in self.module.state_dict().items()},
                {
                    i: {k: v.clone() for k, v in s.items()}
                    for i, s in adam.state_dict()["state"].items()
                },
                [group["lr"] for group in adam.param_groups],
            )
        )

    monkeypatch.setattr(adapter.GentrainCallback, "_roll_back", roll_back_and_look)
    records = run(monkeypatch, "--steps", "400", between=remediate)
    assert {"rollback", "rollback_skip_batches"} <= set(records[0]["supported_actions"])
    assert records[2]["refused_commands"] == {"r1-early": "no_checkpoint"}
    assert len(after) == 1, "the rollback to 150 ran once"
    weights, moments, rates = after[0]
    saved = torch.load(checkpoints / "step=100.ckpt", weights_only=False)
    assert weights.keys() == saved["state_dict"].keys()
    assert all(torch.equal(weights[k], saved["state_dict"][k]) for k in weights)
    first = saved["optimizer_states"][0]["state"][0]
    assert torch.equal(moments[0]["exp_avg"], first["exp_avg"])
    assert rates == [pytest.approx(0.001)]  # the job's rate, not the checkpoint's 0.003
    assert records[-1]["validation_loss"] < 0.3 * records[-1]["baseline_loss"]
