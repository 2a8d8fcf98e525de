"""Users' own Trainers under the real operator, through gentrain-sdk's callbacks: a
Hugging Face Trainer (examples/custom-huggingface-gpt2.yaml: a 2-layer GPT-2 built from a
config, no weights downloaded, learning CPython's documentation) and a Lightning Trainer
(examples/custom-lightning-regression.yaml), each at a learning rate far too high. The
operator diagnoses NotLearning from what the callback reports and climbs its ladder with
the actions the callback declared; the changes and commands reach the framework's model,
optimizer and scheduler through the callback (a fresh start, a range test on the
program's own data, clipping), the run recovers, and the remediations are in status; once
recovered, the operator's rate check runs in the Trainer on its held-out data."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.operator.test_families_cluster import finished
from tests.operator.test_operator_cluster import GROUP, PLURAL, VERSION, events
from tests.support.kube import Cluster
from tests.support.programs import EXAMPLES, final_validation_loss

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.integrations]
REPO = Path(__file__).resolve().parents[2]
HEALTHY_RATE = "0.003"  # both examples' default: it trains either model well


@dataclass(frozen=True)
class Adapter:
    job: str
    program: str
    framework: str  # the module the program needs
    args: tuple[str, ...] = ()  # beside the manifest's
    timeout: float = 300
    # The final validation loss must be below this share of the learned-nothing loss.
    recovered_below: float = 0.5
    # Whether the run, once recovered, must have had the operator's rate check (the
    # callback's probe on the framework's held-out data): where the ladder's path is one
    # rung, so the check is due well before the run's last 30%.
    rate_checked: bool = False


ADAPTERS = [
    Adapter(
        "custom-huggingface-gpt2",
        "huggingface_gpt2.py",
        "transformers",
        timeout=600,
        # Measured in three runs: 2.48 remediated when the range test chose x0.1, 2.88 and
        # 2.93 when it chose x0.3 (a rate that still learned nothing: three rungs); 3.15
        # untouched, 2.38 at the healthy rate; learned-nothing 3.26.
        recovered_below=0.95,
    ),
    # Its steps take a millisecond: paced so that each milestone is scraped (as a bigger
    # model's would be) before the next.
    Adapter(
        "custom-lightning-regression",
        "lightning_regression.py",
        "lightning",
        ("--pause", "0.04"),
        rate_checked=True,
    ),
]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.framework)
def test_a_trainer_at_a_far_too_high_rate_is_remediated_through_its_callback(
    cluster: Cluster,
    namespace: str,
    operator: None,
    monkeypatch: pytest.MonkeyPatch,
    adapter: Adapter,
) -> None:
    pytest.importorskip(adapter.framework)
    program = EXAMPLES / adapter.program
    manifest = yaml.safe_load((REPO / "examples" / f"{adapter.job}.yaml").read_text())
    spec = manifest["spec"]
    # The node agent runs no images: the program runs from this checkout, with the
    # environment's python (which holds torch, the framework and gentrain-sdk).
    spec["command"] = ["python", str(program)]
    spec["args"] = [*spec["args"], *adapter.args]
    spec["monitoring"] = {"scrapeIntervalSeconds": 1}
    spec["resources"] = {"cpu": "1", "memory": "2Gi"}
    cluster.apply(manifest, namespace)

    final = finished(cluster, namespace, adapter.job, timeout=adapter.timeout)
    assert final["phase"] == "Succeeded", final.get("message")
    remediations = final["remediations"]
    first = remediations[0]
    assert first["finding"] == "NotLearning"
    assert first["actions"] == ["reinitialize", "search_learning_rate", "enable_clipping"]
    assert first["search"]["factor"] < 1, first  # the search ran in the Trainer, on its data
    milestones = final["milestones"]
    assert any(m.get("origin_step", 0) > 0 for m in milestones), "never started afresh"
    configured = spec["training"]["hyperparameters"]["learningRate"]
    job = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, adapter.job
    )
    rate = job["spec"]["training"]["hyperparameters"]["learningRate"]
    assert rate < configured / 10, rate
    baseline = milestones[-1]["baseline_loss"]
    recovered = milestones[-1]["validation_loss"]
    untouched, healthy = (
        final_validation_loss(monkeypatch, program, *spec["args"], "--learning-rate", run_at)
        for run_at in (str(configured), HEALTHY_RATE)
    )
    # The figures, for the README (kopf's test runner holds sys.stdout while it runs).
    print(
        f"{adapter.framework}: validation loss {recovered:.4f} remediated, "
        f"{untouched:.4f} untouched, {healthy:.4f} at the healthy rate {HEALTHY_RATE}, "
        f"{baseline:.4f} "
        f"learned-nothing; rate {configured:g} -> {rate:.3g}; "
        f"{[(r['finding'], r['actions'], r.get('search', {}).get('factor')) for r in remediations]}",
        file=sys.__stderr__,
    )
    assert recovered < adapter.recovered_below * baseline, (recovered, baseline)
    assert recovered < untouched, (recovered, untouched)
    assert {"NotLearning", "Remediating"} <= set(events(cluster, namespace, adapter.job))
    if adapter.rate_checked:
        checks = [r for r in remediations if r["finding"] == "LearningRateCheck"]
        assert checks and "factor" in checks[0]["search"], remediations
