"""A user's own training program under the real operator (examples/custom-plain-loop.yaml):
a plain PyTorch loop, reporting through gentrain-sdk at a learning rate 300 times too
high, is diagnosed (NotLearning), given the one rung of the ladder it supports (start
afresh at a tenth of the rate: it declared reinitialize, lower_lr and cut_lr), takes the
change up through the SDK's callback and handler, and ends far better than it would have
untouched. A program that serves no metrics, or serves garbage, is said so in the job's
MetricsAvailable condition, in words that tell its author where to look, and nothing is
decided on it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.test_families_cluster import finished
from tests.operator.test_operator_cluster import events, status
from tests.support.kube import Cluster
from tests.support.programs import final_validation_loss
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.integrations]
REPO = Path(__file__).resolve().parents[2]
PLAIN_LOOP = REPO / "examples" / "sdk" / "plain_loop.py"
STEPS, INTERVAL = 800, 100


def test_a_plain_loop_at_a_far_too_high_rate_is_started_afresh_and_recovers(
    cluster: Cluster, namespace: str, operator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / "custom-plain-loop.yaml").read_text())
    spec = manifest["spec"]
    # The node agent runs no images: the program runs from this checkout, with the
    # environment's python (which holds torch and gentrain-sdk), as the image would.
    spec["command"] = ["python", str(PLAIN_LOOP)]
    spec["args"] = ["--steps", str(STEPS), "--interval", str(INTERVAL), "--pause", "0.04"]
    spec["training"]["maxSteps"] = STEPS
    spec["checkpoints"]["interval"] = INTERVAL
    spec["monitoring"] = {"scrapeIntervalSeconds": 1}
    spec["resources"] = {"cpu": "500m", "memory": "1Gi"}
    cluster.apply(manifest, namespace)

    final = finished(cluster, namespace, "custom-plain-loop", timeout=300)
    assert final["phase"] == "Succeeded", final.get("message")
    first = final["remediations"][0]
    assert (first["finding"], first["actions"]) == ("NotLearning", ["reinitialize", "cut_lr"])
    assert [c["to"] for c in first["changes"]] == [pytest.approx(0.1)]
    milestones = final["milestones"]
    assert any(m.get("origin_step", 0) > 0 for m in milestones), "never started afresh"
    assert set(milestones[-1]["loss_mean"]) == {"total"}
    recovered = milestones[-1]["validation_loss"]
    untouched = final_validation_loss(
        monkeypatch, PLAIN_LOOP, "--learning-rate", "1", "--steps", str(STEPS)
    )
    baseline = milestones[-1]["baseline_loss"]
    # Untouched, Adam at 1 ends worse than predicting the mean; started afresh at 0.1 the
    # program learns.
    # The figures, for the README (kopf's test runner holds sys.stdout while it runs).
    print(
        f"validation loss: {recovered:.4f} remediated, {untouched:.4f} untouched, "
        f"{baseline:.4f} baseline",
        file=sys.__stderr__,
    )
    assert untouched > baseline
    assert recovered < 0.6 * baseline < untouched, (recovered, baseline, untouched)
    assert {"NotLearning", "Remediating"} <= set(events(cluster, namespace, "custom-plain-loop"))


# A program that serves something that is not gentrain's exposition on its metrics port.
GARBAGE = """
import http.server, os
class Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'gentrain_step{{{ "a string" not a sample\\n' * 1000)
port = int(os.environ["GENTRAIN_METRICS_PORT"])
http.server.HTTPServer(("0.0.0.0", port), Garbage).serve_forever()
"""
SILENT = "import time; time.sleep(600)"


@pytest.mark.parametrize(
    ("program", "said"),
    [
        (SILENT, "nothing answers on port 9090 of the pod"),
        (GARBAGE, "unparsable exposition"),
    ],
    ids=["never-reports", "reports-garbage"],
)
def test_a_program_that_reports_nothing_usable_is_said_so_and_left_alone(
    cluster: Cluster, namespace: str, operator: None, program: str, said: str
) -> None:
    manifest = yaml.safe_load((REPO / "examples" / "custom-plain-loop.yaml").read_text())
    manifest["metadata"]["name"] = "mute"
    spec = manifest["spec"]
    spec["command"] = [sys.executable, "-c", program]
    spec["args"] = []
    spec["monitoring"] = {"scrapeIntervalSeconds": 1}
    spec["resources"] = {"cpu": "250m", "memory": "256Mi"}
    cluster.apply(manifest, namespace)

    def metrics_condition() -> dict[str, Any]:
        conditions = status(cluster, namespace, "mute").get("conditions") or []
        return next((c for c in conditions if c["type"] == "MetricsAvailable"), {})

    # (Until its program's server is up, a garbage-serving pod answers nothing at all.)
    condition = wait_for(
        metrics_condition,
        lambda c: c.get("status") == "False" and said in c.get("message", ""),
        f"MetricsAvailable=False saying {said!r}",
        120,
    )
    print(f"MetricsAvailable False: {condition['message']}", file=sys.__stderr__)
    time.sleep(5)  # a few more scrapes: still running, nothing decided, nothing crashed
    final = status(cluster, namespace, "mute")
    assert final["phase"] == "Running", final
    assert not final.get("remediations"), final["remediations"]
    assert metrics_condition()["status"] == "False"
