"""The built-in trainer writes the run's history — each milestone's figures, each
configuration change and each command — as TensorBoard event files beside its checkpoints,
read back here by TensorBoard's own reader, and to an MLflow run on a real tracking server
(MLFLOW_TRACKING_URI), read back by MLflow's client."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from gentrain_contract import program
from gentrain_sdk import tensorboard
from gentrain_sdk.mlflow_run import RUN_ID_FILE
from gentrain_sdk.tensorboard import EventLog
from tests.trainer.conftest import MakeTrainer, tiny

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_milestones_a_change_and_a_command_are_in_the_event_files_and_the_mlflow_run(
    make_trainer: MakeTrainer, tmp_path: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv(program.JOB_VARIABLE, "gan-ring-history")
    config = tiny("gan-ring", training={"max_steps": 200}, checkpoints={"interval": 100})
    trainer = make_trainer(config)  # evaluated: its samples are pictures in the history
    trainer.run()  # to 200
    # The operator's remediation: a lower rate and a rollback, taken up at the next milestone.
    rate = float(trainer.hp["lr_d"])
    config["generation"] = 2
    config["training"]["max_steps"] = 300
    config["hyperparameters"] = {**config.get("hyperparameters", {}), "lr_d": rate / 2}
    config["commands"] = [{"id": "rb-1", "action": "rollback", "step": 100}]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    trainer.max_steps = 300
    trainer.run()
    assert trainer.history.tracker(EventLog) is not None
    trainer.close()

    read = event_accumulator.EventAccumulator(
        str(tmp_path / "run" / tensorboard.DIRECTORY), {event_accumulator.IMAGES: 0}
    )
    read.Reload()
    steps = [e.step for e in read.Scalars("loss_mean/discriminator")]
    assert steps[:2] == [100, 200] and steps[-1] == 300, steps
    assert [e.step for e in read.Scalars("hyperparameter/lr_d")][-1] >= 200
    said = [
        t.tensor_proto.string_val[0].decode() for t in read.Tensors("configuration/text_summary")
    ]
    assert any(s.startswith("generation 2: lr_d ") for s in said), said
    assert [e.step for e in read.Images("samples/samples")] == steps
    commands = [
        t.tensor_proto.string_val[0].decode() for t in read.Tensors("commands/text_summary")
    ]
    assert commands == ["rb-1 (rollback): applied"], commands

    client = MlflowClient(mlflow_server)
    run_id = (tmp_path / "run" / RUN_ID_FILE).read_text()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "gan-ring-history"
    assert run.data.tags["gentrain.job"] == "gan-ring-history"
    assert float(run.data.params["lr_d"]) == pytest.approx(rate)
    history = client.get_metric_history(run_id, "loss_mean/discriminator")
    assert sorted(m.step for m in history) == steps
    assert run.data.tags["gentrain.generation.2"].startswith("step 200: lr_d ")
    assert run.data.tags["gentrain.command.rb-1"] == "rollback at step 100: applied"
    images = [f.path for f in client.list_artifacts(run_id, "images")]
    pictured = sorted(
        int(n.split("+")[2])
        for n in images
        if n.startswith("images/samples~samples+step+") and n.endswith(".png")
    )
    assert pictured == steps, images
