"""The run's history in MLflow (MLFLOW_TRACKING_URI set), written to a real tracking server
and read back with MLflow's own client: every milestone's figures as metrics, the first
configuration as params, each change (the operator's remediation) and each command as a
tag; one run per job across restarts; a server that is not there, or fails mid-run, never
stops training."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from gentrain_contract import program
from gentrain_sdk import Reporter
from gentrain_sdk.mlflow_run import RUN_ID_FILE, MlflowRun
from tests.sdk.test_tensorboard import write


@pytest.fixture
def job(tmp_path: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A program run as a job: its checkpoint directory, tracking to the server."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "gentrain-tests")
    monkeypatch.setenv(program.CHECKPOINT_DIR_VARIABLE, str(checkpoints))
    # Not GENTRAIN_JOB: under it a Reporter waits at exit (up to 120 s) for the operator's
    # final scrape. The run's name from the job is tested with the built-in trainer.
    return checkpoints


def train(
    reporter: Reporter, milestones: range, config: Path | None = None, pictures: Path | None = None
) -> None:
    for index in milestones:
        step = index * 100
        if config is not None and index == 2:  # the operator's remediation, at the next milestone
            write(config, 2, 0.05, [{"id": "r1-reinitialize", "action": "reinitialize"}])
        reporter.step(step, {"total": 3.0 / index})
        shown = []
        if pictures is not None:  # a sample grid, darker at each milestone
            shown = [pictures / "grid.png"]
            Image.new("RGB", (8, 4), (255 - 10 * index, 0, 0)).save(shown[0])
        reporter.milestone(step, {"validation_loss": 2.0 / index, "bleu": 0.1 * index}, shown)


def test_milestones_a_remediation_and_a_command_reach_the_mlflow_run(
    job: Path, tmp_path: Path, mlflow_server: str
) -> None:
    config = tmp_path / "config.yaml"
    write(config, 1, 0.5)
    reporter = Reporter(0, max_steps=2500, config=config)
    reporter.on_command("reinitialize", lambda command: None)
    train(reporter, range(1, 26), config, tmp_path)  # more milestones than the status keeps
    reporter.close()

    client = MlflowClient(mlflow_server)
    run_id = (job / RUN_ID_FILE).read_text()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["learningRate"] == "0.5"  # the configuration it started with
    losses = client.get_metric_history(run_id, "loss_mean/total")
    assert sorted(m.step for m in losses) == [i * 100 for i in range(1, 26)]
    assert {m.step: m.value for m in losses}[2500] == pytest.approx(3.0 / 25)
    assert {m.step: m.value for m in client.get_metric_history(run_id, "figure/bleu")}[
        2500
    ] == pytest.approx(2.5)
    rates = client.get_metric_history(run_id, "hyperparameter/learningRate")
    assert sorted((m.step, m.value) for m in rates) == [(0, 0.5), (200, pytest.approx(0.05))]
    assert run.data.tags["gentrain.generation"] == "2"
    assert run.data.tags["gentrain.generation.2"] == "step 200: learningRate 0.5 -> 0.05"
    assert run.data.tags["gentrain.command.r1-reinitialize"] == "reinitialize at step 200: applied"
    # Each milestone's picture, as an MLflow image at its step (uploaded through the server).
    images = [f.path for f in client.list_artifacts(run_id, "images")]
    # MLflow names them <key with / as ~>+step+<step>+...png (and a compressed preview).
    grids = [n for n in images if n.startswith("images/samples~grid+step+") and n.endswith(".png")]
    assert len(grids) == 25, images


def test_an_attempt_that_resumes_continues_the_same_run(job: Path, mlflow_server: str) -> None:
    first = Reporter(0, max_steps=400)
    train(first, range(1, 3))
    first.close()  # stopped before its end (a SIGTERM, a lost node)
    client = MlflowClient(mlflow_server)
    run_id = (job / RUN_ID_FILE).read_text()
    assert client.get_run(run_id).info.status == "KILLED"

    second = Reporter(0, max_steps=400)
    assert client.get_run(run_id).info.status == "RUNNING"
    train(second, range(3, 5))
    second.close()

    assert (job / RUN_ID_FILE).read_text() == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(run_id, "validation_loss"))
    assert steps == [100, 200, 300, 400]


def test_no_server_there_leaves_training_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.mlflow_server import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv(program.CHECKPOINT_DIR_VARIABLE, str(tmp_path))
    with caplog.at_level(logging.WARNING, "gentrain_sdk"):
        reporter = Reporter(0, max_steps=200)
        train(reporter, range(1, 3))
        reporter.close()
    assert reporter.history.tracker(MlflowRun) is None
    assert "no MLflow history" in caplog.text
    assert "gentrain_milestone_loss_mean" in reporter.exposition()


def test_a_run_the_server_stops_taking_is_given_up_after_a_few_failures(
    job: Path, mlflow_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = Reporter(0, max_steps=1000)
    tracker = reporter.history.tracker(MlflowRun)
    assert tracker is not None
    MlflowClient(mlflow_server).delete_run(tracker.run_id)  # its writes now fail, server-side
    with caplog.at_level(logging.WARNING, "gentrain_sdk"):
        train(reporter, range(1, 11))
        reporter.close()
    assert tracker.given_up
    failures = [r for r in caplog.records if "a write to run" in r.getMessage()]
    assert len(failures) == 3, [r.getMessage() for r in failures]
    assert "gentrain_milestone_loss_mean" in reporter.exposition()
