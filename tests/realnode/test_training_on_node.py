"""Training as users run it: the chart's operator (a pod) starts each job's trainer pod
from the trainer image, under the chart's security context, with its checkpoint claim;
every family's example trains to Succeeded; a trainer pod deleted mid-run is replaced
and resumes from its checkpoint; a rollback a user asks for is carried out once, inside
the container, on the checkpoint claim; the demo job, asking for a GPU the node does not have,
falls back to CPU and is remediated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.recorder import merged
from tests.faults.test_rollback_restarts import checkpoint_volume
from tests.operator.test_operator_cluster import events, status
from tests.realnode.conftest import TRAINER_IMAGE
from tests.support import kube
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Each family's example, shortened to two checkpoints (the image, not the model, is what
# is under test here).
SHORT = {
    "transformer-text": 120,
    "vae-digits": 200,
    "diffusion-digits": 120,
    "gan-digits": 200,
}
RESOURCES = {"cpu": "500m", "memory": "1536Mi"}


def example(name: str, **overrides: Any) -> dict[str, Any]:
    return merged(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()), overrides)


def finished(cluster: kube.Cluster, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    return wait_for(
        lambda: status(cluster, namespace, name),
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        f"{name} to finish",
        timeout=timeout,
    )


def trainer_pods(cluster: kube.Cluster, namespace: str, job: str) -> list[Any]:
    return cluster.core.list_namespaced_pod(
        namespace, label_selector=f"gentrain.io/job={job}"
    ).items


def print_trainer_logs(
    cluster: kube.Cluster, namespace: str, job: str, final: dict[str, Any]
) -> None:
    """What each trainer pod of a job that ended short said, and the job's status."""
    print(f"--- {job}: {json.dumps(final, default=str)[:3000]}")
    for pod in trainer_pods(cluster, namespace, job):
        logs = cluster.kubectl("logs", "-n", namespace, pod.metadata.name).stdout
        print(f"--- {pod.metadata.name} ({pod.status.phase}):\n{logs[-6000:]}")


def test_every_family_trains_in_the_trainer_image_and_a_lost_pod_resumes(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    for name, steps in SHORT.items():
        spec = {"training": {"maxSteps": steps}, "checkpoints": {"interval": steps // 2}}
        real_node.apply(example(name, spec={**spec, "resources": RESOURCES}), namespace)

    # The transformer's pod is deleted once it has saved its first checkpoint.
    first = wait_for(
        lambda: status(real_node, namespace, "transformer-text"),
        lambda s: int(s.get("checkpointStep") or 0) >= SHORT["transformer-text"] // 2,
        "the transformer's first checkpoint",
        timeout=600,
    )
    lost = trainer_pods(real_node, namespace, "transformer-text")[0].metadata.name
    real_node.core.delete_namespaced_pod(lost, namespace, grace_period_seconds=0)

    for name, steps in SHORT.items():
        final = finished(real_node, namespace, name, timeout=900)
        if final.get("checkpointStep") != steps:
            print_trainer_logs(real_node, namespace, name, final)
        assert final["phase"] == "Succeeded", (name, final.get("message"))
        assert final["checkpointStep"] == steps, name
    for pod in trainer_pods(real_node, namespace, "vae-digits"):
        container = pod.spec.containers[0]
        assert container.image == TRAINER_IMAGE
        assert container.security_context.read_only_root_filesystem is True
        assert pod.spec.security_context.run_as_non_root is True

    replacement = [
        p.metadata.name
        for p in trainer_pods(real_node, namespace, "transformer-text")
        if p.metadata.name != lost
    ]
    assert replacement, "no replacement trainer pod"
    log = real_node.kubectl("logs", "-n", namespace, replacement[-1]).stdout
    print(f"deleted {lost} after checkpoint {first['checkpointStep']}; {replacement[-1]}:")
    print("\n".join(line for line in log.splitlines() if "resumed" in line))
    # The newest checkpoint when the pod was lost: the first, or a later one saved while
    # the deletion was on its way.
    assert "resumed from checkpoint step" in log


def test_a_rollback_a_user_asks_for_runs_once_in_the_trainer_container(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    # The command reaches the trainer once the operator has seen the change and the kubelet
    # has synced the ConfigMap, so the run must outlast that on a quick machine: CI's trained 1,000 of these
    # steps in 15 s, between two of the default 15 s scrapes, and finished before the
    # command was sent. Scraped every second and long enough here (every checkpoint kept).
    steps, target = 2500, 200
    spec = {
        "training": {"maxSteps": steps},
        "checkpoints": {"interval": 100, "keep": 30},
        "monitoring": {"scrapeIntervalSeconds": 1},
        "resources": RESOURCES,
    }
    real_node.apply(example("vae-digits", spec=spec), namespace)
    wait_for(
        lambda: status(real_node, namespace, "vae-digits"),
        lambda s: int(s.get("checkpointStep") or 0) >= target + 100,
        "the VAE's checkpoint after the rollback's target",
        timeout=600,
    )
    command = {"id": "user-rollback", "action": "rollback", "step": target}
    real_node.kubectl("patch", "generativetrainingjobs", "vae-digits", "-n", namespace,
                      "--type=merge", "-p", json.dumps({"spec": {"commands": [command]}}))  # fmt: skip

    final = finished(real_node, namespace, "vae-digits", timeout=900)
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["checkpointStep"] == steps
    pods = trainer_pods(real_node, namespace, "vae-digits")
    log = "\n".join(
        real_node.kubectl("logs", "-n", namespace, p.metadata.name).stdout for p in pods
    )
    rolled = [line for line in log.splitlines() if "command user-rollback" in line]
    print(f"{len(pods)} trainer pod(s); {rolled}")
    assert len(rolled) == 1 and f"rolled back to step {target}" in rolled[0], rolled
    # The trainer, as its image's user, moved the abandoned timeline aside on the claim.
    volume = checkpoint_volume(real_node, namespace, "vae-digits")
    aside = sorted(volume.glob("abandoned-*"))
    assert aside, f"no abandoned checkpoints under {volume}: {sorted(volume.iterdir())}"
    assert {p.stat().st_uid for p in aside} == {65532}, [(p, p.stat().st_uid) for p in aside]


def test_a_users_own_image_runs_as_shipped_and_is_remediated(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    """examples/custom-plain-loop.yaml as shipped: the user's image (examples/sdk/Dockerfile,
    built by `make images` on the trainer image as its torch base), its own command, a
    plain PyTorch loop reporting through gentrain-sdk at a rate 300 times too high."""
    real_node.apply(example("custom-plain-loop", spec={"resources": RESOURCES}), namespace)
    final = finished(real_node, namespace, "custom-plain-loop", timeout=600)
    print(f"the user's image on the real node: {final['phase']}, remediations "
          f"{[(r['finding'], r['actions']) for r in final.get('remediations', [])]}, "
          f"final validation loss {final['milestones'][-1].get('validation_loss')}")  # fmt: skip
    assert final["phase"] == "Succeeded", final.get("message")
    first = final["remediations"][0]
    assert (first["finding"], first["actions"]) == ("NotLearning", ["reinitialize", "cut_lr"])
    assert any(m.get("origin_step", 0) > 0 for m in final["milestones"]), "never started afresh"
    (pod,) = trainer_pods(real_node, namespace, "custom-plain-loop")
    container = pod.spec.containers[0]
    assert container.image == "localhost/plain-loop:dev"
    assert container.security_context.read_only_root_filesystem is True


def test_the_demo_job_falls_back_to_cpu_and_is_remediated(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    real_node.apply(example("gan-ring-unstable"), namespace)
    final = finished(real_node, namespace, "gan-ring-unstable", timeout=1200)
    seen = events(real_node, namespace, "gan-ring-unstable")
    print(f"demo on the real node: {final['phase']}, remediations "
          f"{[(r['finding'], r['actions']) for r in final.get('remediations', [])]}")  # fmt: skip
    assert final["phase"] == "Succeeded", final.get("message")
    assert "GPUFallback" in seen
    assert final.get("remediations"), "the unstable GAN drew no remediation"
    # The remediation reached the trainer while it ran: a later milestone was trained
    # under the configuration it wrote. (Left to the kubelet's periodic sync it did not:
    # the run, 8,000 steps in about 80 s, ended first.)
    first = final["remediations"][0]
    applied = [
        m["step"] for m in final["milestones"] if int(m.get("generation", 0)) >= first["generation"]
    ]
    print(f"remediation at step {first['step']} (generation {first['generation']}); first "
          f"milestone under it: {applied[:1]}")  # fmt: skip
    assert applied, "the remediation never reached the trainer"
