"""A custom job's configuration, rendered by the operator, reaches a plain PyTorch loop
through gentrain-sdk: the new learning rate lands in the optimizer, a reinitialize
command resets the model once (never again, even after a restart), a command the program
has no handler for is refused by name, and the operator reads all of it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from gentrain_operator import snapshot, trainer_config
from gentrain_sdk import Reporter, follow

SPEC: dict[str, Any] = {
    "model": {"family": "custom"},
    "training": {"maxSteps": 100, "hyperparameters": {"learningRate": 0.5}},
    "image": "localhost/mine:dev",
    "command": ["python", "train.py"],
}


def write(path: Path, generation: int, commands: list[dict[str, Any]] | None = None) -> None:
    spec = {**SPEC, "commands": commands or []}
    spec["training"] = {
        **SPEC["training"],
        "hyperparameters": {"learningRate": 0.5 / generation},
    }
    path.write_text(yaml.safe_dump(trainer_config.render(spec, generation)))


def read_back(reporter: Reporter) -> Any:
    record = snapshot.milestone(snapshot.parse(reporter.exposition(), 0.0))
    assert record is not None
    return record


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Reporter, Any, Any, Path]:
    monkeypatch.setenv("GENTRAIN_CHECKPOINT_DIR", str(tmp_path))
    config = tmp_path / "config.yaml"
    write(config, 1)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    reporter = Reporter(0, config=config)
    follow(reporter, optimizer, model)
    return reporter, model, optimizer, config


def test_the_configured_rate_and_its_changes_reach_the_optimizer(loop: Any) -> None:
    reporter, _, optimizer, config = loop
    assert optimizer.param_groups[0]["lr"] == 0.5  # the job's, from the start
    reporter.step(10, 1.0)
    write(config, 2)  # the operator halves the rate: generation 2
    reporter.step(20, 1.0)
    assert optimizer.param_groups[0]["lr"] == 0.5  # taken up at the milestone, not before
    reporter.milestone(20)
    assert optimizer.param_groups[0]["lr"] == 0.25
    record = read_back(reporter)
    assert record["generation"] == 2
    assert record["hyperparameters"]["learningRate"] == 0.25
    assert set(record["supported_actions"]) == {"lower_lr", "cut_lr", "reinitialize"}


def test_a_reinitialize_command_resets_the_model_once(loop: Any, tmp_path: Path) -> None:
    reporter, model, optimizer, config = loop
    with torch.no_grad():
        model.weight.fill_(7.0)
    reporter.step(10, 1.0)
    reporter.milestone(10)
    assert read_back(reporter)["origin_step"] == 0
    write(config, 2, [{"id": "r1-reinitialize", "action": "reinitialize"}])
    reporter.step(20, 1.0)
    reporter.milestone(20)
    assert not torch.all(model.weight == 7.0)
    assert read_back(reporter)["origin_step"] == 0  # the window just ended: old weights
    reporter.step(30, 1.0)
    reporter.milestone(30)
    assert read_back(reporter)["origin_step"] == 20
    assert 'gentrain_commands_applied_total{action="reinitialize"} 1.0' in reporter.exposition()
    # A restarted program (same checkpoint volume) does not apply it a second time.
    with torch.no_grad():
        model.weight.fill_(7.0)
    again = Reporter(0, config=config)
    follow(again, optimizer, model)
    again.step(40, 1.0)
    again.milestone(40)
    assert torch.all(model.weight == 7.0)


def test_a_damaged_record_of_applied_commands_never_repeats_one(loop: Any, tmp_path: Path) -> None:
    """A record cut short by a full volume used to read as "nothing applied": a restarted
    program started afresh a second time on the same command (the built-in trainer
    already counted every configured command as applied; both now share that record)."""
    reporter, model, optimizer, config = loop
    write(config, 2, [{"id": "r1-reinitialize", "action": "reinitialize"}])
    reporter.step(20, 1.0)
    reporter.milestone(20)
    record = tmp_path / "commands-applied.json"
    assert record.read_text() == '["r1-reinitialize"]'
    record.write_text('["r1-reini')  # cut short
    with torch.no_grad():
        model.weight.fill_(7.0)
    again = Reporter(0, config=config)
    follow(again, optimizer, model)
    again.step(40, 1.0)
    again.milestone(40)
    assert torch.all(model.weight == 7.0)  # not started afresh a second time


def test_a_bad_command_is_refused_by_field_and_the_others_applied(loop: Any) -> None:
    reporter, model, _, config = loop
    with torch.no_grad():
        model.weight.fill_(7.0)
    write(
        config,
        2,
        [
            {"id": "r1-rollback", "action": "rollback"},  # no step to return to
            {"id": "r2-reinitialize", "action": "reinitialize"},
        ],
    )
    reporter.step(20, 1.0)
    reporter.milestone(20)
    assert not torch.all(model.weight == 7.0)
    exposition = reporter.exposition()
    assert 'gentrain_config_rejected_total{field="commands[0].step"} 1.0' in exposition
    assert 'gentrain_commands_applied_total{action="reinitialize"} 1.0' in exposition


def test_a_command_without_a_handler_is_refused_by_name(loop: Any) -> None:
    reporter, _, _, config = loop
    write(config, 2, [{"id": "r2-rollback", "action": "rollback", "step": 10}])
    reporter.step(20, 1.0)
    reporter.milestone(20)
    assert read_back(reporter)["refused_commands"] == {"r2-rollback": "unsupported"}
    reporter.step(30, 1.0)
    reporter.milestone(30)
    assert "refused_commands" not in read_back(reporter)  # reported once


def test_a_handler_that_fails_is_refused_not_fatal(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    write(config, 1, [{"id": "r3-reinitialize", "action": "reinitialize"}])
    reporter = Reporter(0, config=config)

    def broken(command: Any) -> None:
        raise RuntimeError("the program's own bug")

    reporter.on_command("reinitialize", broken)
    reporter.step(5, 1.0)
    reporter.milestone(5)
    assert read_back(reporter)["refused_commands"] == {"r3-reinitialize": "failed: RuntimeError"}


def test_a_bad_configuration_value_is_refused_and_the_old_one_kept(loop: Any) -> None:
    reporter, _, optimizer, config = loop
    config.write_text(yaml.safe_dump({"generation": 3, "hyperparameters": {"learningRate": -1}}))
    reporter.step(10, 1.0)
    reporter.milestone(10)
    assert optimizer.param_groups[0]["lr"] == 0.5
    assert 'gentrain_config_rejected_total{field="learningRate"} 1.0' in reporter.exposition()


def test_unknown_actions_and_commands_are_named() -> None:
    with pytest.raises(ValueError, match="supports: fly is not an action"):
        Reporter(0, supports=["fly"])
    with pytest.raises(ValueError, match="'fly' is not a command gentrain sends"):
        Reporter(0).on_command("fly", lambda command: None)
