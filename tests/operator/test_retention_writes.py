"""The monitor's verdicts reach the trainer's ConfigMap without undoing a spec change
rendered at the same moment (issue 11, faults 3-4). Against the real API server."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from gentrain_contract import program
from gentrain_operator import kube, names
from tests.support.kube import Cluster, point_clients_at

pytestmark = [pytest.mark.cluster]


def trainer_config(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    found = cluster.core.read_namespaced_config_map(names.configmap_name(job), namespace)
    config: dict[str, Any] = yaml.safe_load(found.data[program.CONFIG_KEY])
    return config


def test_a_verdict_written_while_a_spec_change_is_rendered_keeps_both(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_clients_at(cluster, monkeypatch)
    rendered = {"generation": 1, "hyperparameters": {"generator_lr": 1e-3}}
    rendered["checkpoints"] = {"keep": 2, "pinned": [], "judged_through": 0}
    name = names.configmap_name("verdicts")
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name),
            data={program.CONFIG_KEY: yaml.safe_dump(rendered)},
        ),
    )
    real_read = kube.read_config_map
    reads = 0

    def read_then_spec_change(ns: str, configmap: str) -> dict[str, Any] | None:
        """The lifecycle handler renders generation 2 just after the monitor's first read."""
        nonlocal reads
        found = real_read(ns, configmap)
        reads += 1
        if reads == 1:
            changed = {**rendered, "generation": 2, "hyperparameters": {"generator_lr": 5e-4}}
            body = {"data": {program.CONFIG_KEY: yaml.safe_dump(changed)}}
            cluster.core.patch_namespaced_config_map(configmap, ns, body)
        return found

    monkeypatch.setattr(kube, "read_config_map", read_then_spec_change)
    assert kube.write_retention(namespace, "verdicts", [400], 600)
    assert reads == 2, "the conflict is retried on a fresh read"
    config = trainer_config(cluster, namespace, "verdicts")
    assert config["generation"] == 2 and config["hyperparameters"] == {"generator_lr": 5e-4}
    assert config["checkpoints"] == {"keep": 2, "pinned": [400], "judged_through": 600}
    # The same verdict again writes nothing.
    assert not kube.write_retention(namespace, "verdicts", [400], 600)
    assert reads == 3


def test_the_trainer_pod_is_told_which_configuration_to_refresh(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubelet refreshes a pod's ConfigMap volume when the pod is updated, otherwise only
    on its periodic sync (a minute or more): on the real node a remediation reached the
    demo's trainer only after its run had ended. The write marks the pod (tests/realnode
    checks that the trainer then applies it in time)."""
    point_clients_at(cluster, monkeypatch)
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=names.configmap_name("nudged")),
            data={program.CONFIG_KEY: yaml.safe_dump({"generation": 1, "checkpoints": {}})},
        ),
    )
    cluster.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="nudged-trainer-1"),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="trainer", image="none", command=["true"])],
                node_name="nowhere",  # never runs: only its metadata is under test
            ),
        ),
    )
    version = kube.write_retention(namespace, "nudged", [200], 200)
    assert version
    kube.nudge_trainer(namespace, "nudged-trainer-1", version)
    pod = cluster.core.read_namespaced_pod("nudged-trainer-1", namespace)
    assert pod.metadata.annotations[names.CONFIG_VERSION_ANNOTATION] == version
    kube.nudge_trainer(namespace, "gone-trainer-1", version)  # a pod gone: nothing to do
