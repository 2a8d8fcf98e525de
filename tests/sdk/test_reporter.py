"""gentrain-sdk on a plain PyTorch loop (examples/sdk/plain_loop.py): its expositions,
parsed by the operator's own parser, make milestones the operator diagnoses — a run at a
far too high learning rate draws a finding, a healthy one none — and bad input is refused
naming the field."""

from __future__ import annotations

import math
import runpy
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import torch

from gentrain_contract import metrics
from gentrain_operator import snapshot
from gentrain_operator.diagnosis import diagnose
from gentrain_operator.milestones import process
from gentrain_sdk import Reporter
from gentrain_sdk.reporter import MAX_COMPONENTS

REPO = Path(__file__).resolve().parents[2]
PLAIN_LOOP = REPO / "examples" / "sdk" / "plain_loop.py"


def run_plain_loop(monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[str]:
    """The example run to its end; what a scrape read right after each milestone."""
    seen: list[str] = []
    publish = Reporter.milestone

    def milestone_then_scrape(self: Reporter, step: int, figures: Any = None) -> None:
        publish(self, step, figures)
        seen.append(self.exposition())

    monkeypatch.setattr(Reporter, "milestone", milestone_then_scrape)
    main = runpy.run_path(str(PLAIN_LOOP))["main"]
    main(["--port", "0", *argv])
    return seen


def custom_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "plain", "namespace": "ns", "generation": 1},
        "spec": {
            "model": {"family": "transformer"},
            "training": {"maxSteps": 600},
            "remediation": {"mode": "off"},
        },
        "status": {},
    }


def milestones(expositions: list[str]) -> list[Any]:
    records = [snapshot.milestone(snapshot.parse(text, 0.0)) for text in expositions]
    assert all(r is not None for r in records)
    return records


def test_the_plain_loop_adds_at_most_ten_lines() -> None:
    added = [line for line in PLAIN_LOOP.read_text().splitlines() if "# gentrain" in line]
    assert 1 <= len(added) <= 10, added


def test_a_healthy_plain_loop_is_read_as_the_trainer_is_and_draws_no_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = milestones(run_plain_loop(monkeypatch, "--learning-rate", "0.003"))
    assert [r["step"] for r in records] == [100, 200, 300, 400, 500, 600]
    last = records[-1]
    assert last["loss_mean"].keys() == {"total"} and last["nonfinite"] == 0
    assert last["validation_loss"] < 0.5 * last["baseline_loss"]  # it learned
    job = custom_job()
    for record in records:  # through the operator's own milestone handling
        outcome = process(record, job, now=record["time"])
        job["status"] = {**job["status"], **outcome.status}
        assert not [f for f in outcome.findings if f.severity != "info"], outcome.findings


def test_a_far_too_high_learning_rate_draws_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    records = milestones(run_plain_loop(monkeypatch, "--learning-rate", "3"))
    # Adam at 3 leaves the net saturated: no better than predicting the mean, which the
    # baseline the program gave lets the operator see at the first milestone.
    assert "NotLearning" in {f.kind for f in diagnose(records[:1], "transformer")}


def test_the_reporter_serves_the_contracts_series_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reporter = Reporter(port, max_steps=10)
    reporter.step(1, torch.tensor(0.5), grad_norms=1.0, learning_rates=1e-3)
    reporter.step(2, {"generator": 0.7, "discriminator": 0.6})
    reporter.milestone(2, {"validation_loss": 0.4, "fid": 12.5, "bleu": 0.31})
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    parsed = snapshot.parse(body, 0.0)
    assert parsed.get(metrics.STEP.name) == 2
    assert parsed.get(metrics.CHECKPOINT_STEP.name) == 2
    record = snapshot.milestone(parsed)
    assert record is not None
    assert record["figures"] == {"bleu": 0.31}  # a figure of the program's own
    assert record["validation_loss"] == 0.4
    assert (record["fid"], record["extractor"]) == (12.5, "program")  # its own features
    assert set(record["loss_mean"]) == {"total", "generator", "discriminator"}


def test_a_nonfinite_loss_is_counted_not_refused() -> None:
    reporter = Reporter(0)
    reporter.step(1, math.nan)
    reporter.step(2, 1.0)
    reporter.milestone(2)
    record = snapshot.milestone(snapshot.parse(reporter.exposition(), 0.0))
    assert record is not None and record["nonfinite"] == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.step(1, "0.5"), "losses: expected a number"),
        (lambda r: r.step(1, {"total": "abc"}), "losses['total']: expected a number"),
        (lambda r: r.step(1, {"g": 1.0}, learning_rates={"g": math.inf}), "learning_rates['g']"),
        (lambda r: r.step(1, {f"c{i}": 1.0 for i in range(10**6)}), "at most 64"),
        (lambda r: r.step(1, {"a b": 1.0}), "losses: the name 'a b'"),
        (lambda r: r.step(1, torch.ones(3)), "losses: expected a number"),
        (lambda r: r.step(-1, 1.0), "step: expected a non-negative int"),
        (lambda r: r.step(1, {}), "losses: at least one component"),
        (lambda r: r.milestone(1), "report at least one step()"),
    ],
)
def test_bad_input_is_refused_naming_the_field(call: Any, message: str) -> None:
    reporter = Reporter(0)
    with pytest.raises(ValueError, match=None) as refused:
        call(reporter)
    assert message in str(refused.value)


def test_component_names_are_bounded_across_steps() -> None:
    reporter = Reporter(0)
    for step in range(MAX_COMPONENTS):
        reporter.step(step, {f"step{step}": 1.0})
    with pytest.raises(ValueError, match="by role"):
        reporter.step(MAX_COMPONENTS, {"one-too-many": 1.0})


def test_a_milestone_figure_must_be_finite_and_at_the_last_step() -> None:
    reporter = Reporter(0)
    reporter.step(5, 1.0)
    with pytest.raises(ValueError, match=r"figures\['fid'\]: must be finite"):
        reporter.milestone(5, {"fid": math.nan})
    with pytest.raises(ValueError, match="last step reported"):
        reporter.milestone(4)
