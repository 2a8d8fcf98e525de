"""Every family through the real cluster: the zoo's healthy references (one per family)
draw no action, and a VAE whose posterior collapsed gets its latent units back as it does
in the in-process closed loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.closed_loop import run
from bench.recorder import merged
from tests.operator.test_operator_cluster import events, gtj, status
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ZOO = Path(__file__).resolve().parents[2] / "bench" / "zoo" / "calibration"
# One healthy reference per family, each shortened to a few milestones.
HEALTHY = {
    "gan": ("gan-minimax-strong-discriminator", 2000),
    # 8 milestones: a run this fast can pass several between two scrapes on a loaded
    # machine (a fresh clone's CI saw 1 of 4 at 1,000 steps).
    "vae": ("vae-kl-weight-too-high", 2000),
    "transformer": ("transformer-no-warmup", 400),
    "diffusion": ("diffusion-learning-rate-too-high", 600),
}


def zoo(case: str, which: str, **overrides: Any) -> dict[str, Any]:
    spec = yaml.safe_load((ZOO / f"{case}.yaml").read_text())
    return merged(merged(spec["base"], spec[which]), overrides)


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = gtj(name)
    body["spec"] = {
        **spec,
        "remediation": spec.get("remediation") or {"mode": "auto"},
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": {"cpu": "500m", "memory": "1Gi"},
    }
    return body


def finished(cluster: Cluster, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    return wait_for(
        lambda: status(cluster, namespace, name),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        f"{name} to finish",
        timeout=timeout,
    )


def test_a_healthy_run_of_every_family_draws_no_action(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    for family, (case, steps) in HEALTHY.items():
        spec = zoo(case, "healthy", training={"maxSteps": steps})
        cluster.apply(manifest(family, spec), namespace)
    for family in HEALTHY:
        final = finished(cluster, namespace, family, timeout=420)
        assert final["phase"] == "Succeeded", (family, final.get("message"))
        # The rate check may probe the rate (transformer, DDPM, VAE); it must keep it.
        acted = [
            r
            for r in final.get("remediations", [])
            if r["finding"] != "LearningRateCheck" or (r.get("search") or {}).get("factor") != 1.0
        ]
        assert acted == [], (family, final["remediations"])
        assert final["health"] == "Healthy", (family, final.get("findings"))
        # Diagnosed more than once (a fast GAN can pass a milestone between two scrapes;
        # its NaN and spike counts still reach the next one) and to the end.
        # (A fresh clone once saw the VAE's final milestone alone, cause unknown: the
        # failure shows what the monitor said of its scrapes.)
        assert len(final["milestones"]) >= 2, (
            family,
            [m.get("step") for m in final["milestones"]],
            final.get("conditions"),
            events(cluster, namespace, family),
        )
        assert final["checkpointStep"] == HEALTHY[family][1], family
        assert "Remediating" not in events(cluster, namespace, family), family


def decisions(remediations: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(r["finding"], r["actions"]) for r in remediations]


def test_a_collapsed_vae_gets_its_latent_units_back_on_the_cluster_as_in_process(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    # (Without the rate check, which may come after the ladder, when depends on timing.)
    spec = zoo(
        "vae-kl-weight-too-high",
        "broken",
        remediation={"mode": "auto", "rules": {"LearningRateCheck": {"enabled": False}}},
    )
    cluster.apply(manifest("collapsed", spec), namespace)
    # The in-process run trains while the pod does: the two are independent.
    in_process = run(spec)
    expected = decisions(in_process.remediations)
    assert expected == [
        ("PosteriorCollapse", ["kl_annealing"]),
        ("PosteriorCollapse", ["free_bits"]),
    ]

    final = finished(cluster, namespace, "collapsed", timeout=300)
    assert final["phase"] == "Succeeded", final.get("message")
    # The same ladder; where a change lands depends on how soon the pod reads it.
    assert decisions(final["remediations"]) == expected
    units = [m["active_units"] for m in final["milestones"] if "active_units" in m]
    assert units[0] == 0 and units[-1] >= 8, units
    assert final["remediations"][-1]["outcome"] == "resolved"
    assert final["health"] == "Healthy", final.get("findings")
    assert {"PosteriorCollapse", "Remediating"} <= set(events(cluster, namespace, "collapsed"))
