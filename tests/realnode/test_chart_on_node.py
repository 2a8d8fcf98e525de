"""The chart as shipped, on the real node: `helm install` with the built images and only
documented values; the operator runs as its Deployment (its ServiceAccount, its probes,
its security context), two replicas peer, and when the acting one is deleted the other
takes over; a job's trainer pod runs the trainer image to Succeeded."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.chart.test_chart import helm
from tests.operator.test_operator_cluster import gtj
from tests.realnode.conftest import OPERATOR_IMAGE
from tests.support import kube
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.slow]


def operator_pods(cluster: kube.Cluster, system: str) -> list[client.V1Pod]:
    pods = cluster.core.list_namespaced_pod(
        system, label_selector="app.kubernetes.io/name=gentrain-operator"
    ).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def acting_replica(cluster: kube.Cluster, system: str, job: str) -> str:
    """The replica whose log shows it handling `job` (kopf peering lets one act)."""

    def handling() -> list[str]:
        return [
            pod.metadata.name
            for pod in operator_pods(cluster, system)
            if job in cluster.kubectl("logs", "-n", system, pod.metadata.name, check=False).stdout
        ]

    return wait_for(handling, lambda names: len(names) == 1, f"one replica to handle {job}",
                    timeout=120)[0]  # fmt: skip


def test_the_chart_runs_two_peering_operators_and_one_takes_over(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    pods = operator_pods(real_node, release)
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.containers[0].image == OPERATOR_IMAGE
        assert pod.spec.service_account_name == "gentrain-operator"
        ready = [c for c in pod.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True"  # the kubelet ran the readiness probe

    real_node.apply(gtj("first", max_steps=20, interval=10), namespace=namespace)
    first = acting_replica(real_node, release, "first")
    wait_for(
        lambda: (
            real_node.core.list_namespaced_pod(
                namespace, label_selector="gentrain.io/job=first"
            ).items
        ),
        lambda items: len(items) == 1,
        "the acting replica to start the first job's trainer pod",
    )
    real_node.core.delete_namespaced_pod(first, release, grace_period_seconds=1)
    started = time.monotonic()
    real_node.apply(gtj("second", max_steps=20, interval=10), namespace=namespace)
    second = acting_replica(real_node, release, "second")
    print(f"replica {first} deleted; {second} handled the next job after "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    assert second != first


def test_helm_test_finds_the_operator_answering_and_the_notes_say_what_was_installed(
    real_node: kube.Cluster, namespace: str, release: str
) -> None:
    kubeconfig = ("--kubeconfig", str(real_node.kubeconfig), "--namespace", release)
    result = helm("test", "gentrain", *kubeconfig, "--logs", "--timeout", "120s", check=False)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "gentrain-operator-test-metrics" in result.stdout and "Succeeded" in result.stdout
    assert "the operator's metrics answer" in result.stdout
    notes = helm("get", "notes", "gentrain", *kubeconfig).stdout
    assert "Deployment gentrain-operator (2 replica(s)" in notes, notes
    assert f"watching {namespace}" in notes and "helm test gentrain" in notes, notes
