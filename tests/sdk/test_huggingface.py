"""Hugging Face's `Trainer` under gentrain through GentrainCallback
(examples/sdk/huggingface_gpt2.py: a 2-layer GPT-2 built from a config, no weights
downloaded, on CPython's documentation): a far too high learning rate is read by the
operator's parser and diagnosed at the first milestone, and a change of the job's spec
reaches the Trainer's optimizer and scheduler (the schedule keeps its shape)."""

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
    rate_checked_after_first_milestone,
    rates_reported,
    rollbacks,
    run_program,
)

EXAMPLE = EXAMPLES / "huggingface_gpt2.py"


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, between: Any = None) -> list[Any]:
    """The example to its end; the milestones a scrape read after each."""
    return run_program(monkeypatch, EXAMPLE, *argv, between=between)


def test_a_far_too_high_rate_is_diagnosed_at_the_first_milestone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = run(monkeypatch, "--learning-rate", "0.5", "--steps", "200")
    assert [r["step"] for r in records] == [100, 200]
    first = records[0]
    assert first["loss_mean"].keys() == {"total"} and "validation_loss" in first
    assert first["hyperparameters"] == {}  # no job: nothing configured
    assert "NotLearning" in {f.kind for f in diagnose(records[:1], "custom")}


def test_the_jobs_rate_reaches_the_optimizer_and_scheduler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    spec: dict[str, Any] = {
        "model": {"family": "custom"},
        "training": {"maxSteps": 300, "hyperparameters": {"learningRate": 0.5}},
    }

    def write(generation: int, rate: float) -> None:
        spec["training"]["hyperparameters"]["learningRate"] = rate
        config.write_text(yaml.safe_dump(trainer_config.render(spec, generation)))

    write(1, 0.5)
    monkeypatch.setenv("GENTRAIN_CONFIG", str(config))
    rates = rates_reported(monkeypatch)
    # The operator cuts the rate tenfold after the first milestone; the program takes the
    # change up at its next milestone, as the built-in trainer does.
    records = run(
        monkeypatch,
        "--learning-rate",
        "0.5",
        "--steps",
        "300",
        between=lambda n: write(2, 0.05) if n == 1 else None,
    )
    assert [r["generation"] for r in records] == [1, 2, 2]
    assert records[1]["hyperparameters"]["learningRate"] == pytest.approx(0.05)
    # The Trainer's rate follows its schedule (10 warm-up steps, then linear decay to 0
    # at step 300) from the job's peak rate: 0.5 until the change, 0.05 after.
    for step, peak in ((50, 0.5), (150, 0.5), (250, 0.05)):
        assert rates[step] == pytest.approx(peak * (300 - step) / 290, rel=0.03), step
    assert records[1]["supported_actions"] == [
        "cut_lr",
        "enable_clipping",
        "lower_lr",
        "probe_learning_rate",
        "reinitialize",
        "rollback",
        "rollback_skip_batches",
        "search_learning_rate",
    ]
    assert records[2]["loss_mean"]["total"] < records[0]["loss_mean"]["total"]


def test_a_rate_check_moves_a_rate_far_too_low_up_through_the_trainer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator's rate check on a Trainer at a hundredth of the rate that trains its
    model well: judged on the first batches of the Trainer's evaluation data, a higher
    rate wins clearly; the optimizer and scheduler train on at the rate chosen."""
    check = rate_checked_after_first_milestone(monkeypatch, tmp_path, 150, 0.00003)

    rates = rates_reported(monkeypatch)
    records = run(monkeypatch, "--steps", "150", "--interval", "50", between=check)
    probed = records[1]["learning_rate_search"]
    assert probed["factor"] >= 10.0, probed
    assert probed["steps"] == 20 * len(probed["losses"])
    # The schedule (10 warm-up steps, then linear decay to 0 at step 150) from the new
    # peak; the rate logged at a step is the one its update used (the step before's).
    for step, peak in ((75, 0.00003), (125, 0.00003 * probed["factor"])):
        assert rates[step] == pytest.approx(peak * (151 - step) / 140, rel=0.01), step
    assert records[2].get("origin_step", 0) == 0  # trained on, not afresh


def test_a_rollback_loads_the_checkpoint_at_its_step_and_keeps_the_rates_in_force(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from gentrain_sdk import huggingface as adapter

    job = Job(
        monkeypatch,
        tmp_path,
        {
            "model": {"family": "custom"},
            "training": {"maxSteps": 300, "hyperparameters": {"learningRate": 0.003}},
        },
    )
    checkpoints = job.checkpoints

    def remediate(milestones: int) -> None:
        if milestones == 2:
            job.spec["commands"] = rollbacks(50, 150)
            job.write(2)

    looked: list[Any] = []
    roll_back = adapter.GentrainCallback._roll_back

    def roll_back_and_look(self: Any, command: Any) -> None:
        rates = [group["lr"] for group in self.optimizer.param_groups]
        roll_back(self, command)
        state = self.optimizer.state_dict()["state"]
        looked.append(
            (
                {k: v.clone() for k, v in self.model.state_dict().items()},
                {i: {k: v.clone() for k, v in s.items()} for i, s in state.items()},
                rates,
                [group["lr"] for group in self.optimizer.param_groups],
            )
        )

    monkeypatch.setattr(adapter.GentrainCallback, "_roll_back", roll_back_and_look)
    records = run(monkeypatch, "--steps", "300", between=remediate)
    assert {"rollback", "rollback_skip_batches"} <= set(records[0]["supported_actions"])
    assert records[2]["refused_commands"] == {"r1-early": "no_checkpoint"}
    assert len(looked) == 1, "the rollback to 150 ran once"
    weights, moments, before, after = looked[0]
    saved = load_file(checkpoints / "checkpoint-100" / "model.safetensors")
    assert saved and all(torch.equal(weights[k], saved[k]) for k in saved)
    # The output embedding, left out of the file, is the input's again.
    assert torch.equal(weights["lm_head.weight"], saved["transformer.wte.weight"])
    optimizer = torch.load(checkpoints / "checkpoint-100" / "optimizer.pt", weights_only=True)
    assert torch.equal(moments[0]["exp_avg"], optimizer["state"][0]["exp_avg"])
    assert after == before  # the schedule's rate in force, not the checkpoint's
