"""A zoo pathology through the real cluster: the operator (scraping a trainer pod, patching
the job, the ConfigMap reaching the pod) makes the decisions the in-process closed loop of
the efficacy study makes, from the same diagnosis and policy code."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.closed_loop import run
from bench.recorder import merged
from gentrain_trainer.learning_rate_search import FACTORS
from tests.operator.test_operator_cluster import events, gtj, job, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ZOO = Path(__file__).resolve().parents[2] / "bench" / "zoo" / "calibration"


def decisions(remediations: list[dict[str, Any]]) -> list[tuple[str, list[str], int]]:
    return [(r["finding"], r["actions"], r["step"]) for r in remediations]


def test_a_transformer_that_learns_nothing_starts_afresh_on_the_cluster_as_in_process(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    case = yaml.safe_load((ZOO / "transformer-no-warmup.yaml").read_text())
    spec = merged(
        merged(case["base"], case["broken"]),
        # Without the routine rate check: a fresh start is judged on the window that shows
        # it when the trainer took it up at that window's start — at once in process, a
        # ConfigMap sync later in a pod (then a window later) — and the check falls due
        # once the fresh start is judged, so its step would differ between the two.
        {
            "training": {"maxSteps": 300},
            "remediation": {"mode": "auto", "rules": {"LearningRateCheck": {"enabled": False}}},
        },
    )
    manifest = gtj("fresh")
    manifest["spec"] = {
        **spec,
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": {"cpu": "1", "memory": "2Gi"},
    }
    cluster.apply(manifest, namespace)
    final = wait_for(
        lambda: status(cluster, namespace, "fresh"),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        "the job to finish",
        timeout=300,
    )
    # The in-process run trains afterwards, not beside the pod: in this process, beside
    # the operator's thread, it once delayed the operator's verdict on milestone 100 by
    # 16 s (an Intel host, 2 cores), the trainer had reached 200 by then and its fresh
    # start came a whole interval late.
    in_process = run(spec)
    expected = decisions(in_process.remediations)
    fresh_start = [
        "reinitialize",
        "search_learning_rate",
        "enable_clipping",
        "enable_warmup",
        "lower_beta2",
    ]
    assert expected == [("NotLearning", fresh_start, 100)]

    assert final["phase"] == "Succeeded"
    assert decisions(final["remediations"]) == expected
    # Whether the window after the fresh start already counts as learning depends on the
    # run's path, which the CPU decides (the suite never asserts a trajectory): on the
    # AMD hosts before, "resolved"; on an Intel host, "persisting" twice, its mean
    # training loss 1-2% above the threshold while the validation loss fell (3.00 -> 2.69,
    # 2.91 -> 2.82). NotLearning averages in the new weights' first, untrained steps;
    # issue 12 carries that rule. The efficacy study measures outcomes.
    assert final["remediations"][0]["outcome"] in ("resolved", "persisting")
    assert {"NotLearning", "Remediating", "LearningRateSearched"} <= set(
        events(cluster, namespace, "fresh")
    )
    # The trainer searched the rate and the operator wrote its choice into the job.
    search = final["remediations"][0]["search"]
    # A candidate, or the rate halfway between two neighbours (log scale).
    between = {math.sqrt(a * b) for a, b in itertools.pairwise(sorted(FACTORS))}
    chosen = search["factor"]
    assert chosen < 1 and any(math.isclose(chosen, f) for f in {*FACTORS, *between}), search
    assert search["stepsTrained"] == 25 * len(FACTORS)
    rates = job(cluster, namespace, "fresh")["spec"]["training"]["hyperparameters"]
    assert rates["learningRate"] == pytest.approx(0.05 * search["factor"])
    assert rates["gradientClip"] == 1.0 and rates["warmupSteps"] >= 10
    # The trainer started afresh where the operator's change reached it.
    origins = {m.get("origin_step", 0) for m in final["milestones"]}
    assert len(origins - {0}) == 1, final["milestones"]
