"""The chart as shipped, on the real node: `helm install` with the built images and only
documented values; the operator runs as its Deployment (its ServiceAccount, its probes,
its security context), two replicas peer, and when the acting one is deleted the other
takes over; a job's trainer pod runs the trainer image to Succeeded."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.chart.test_chart import CHART, helm
from tests.operator.test_operator_cluster import gtj
from tests.realnode.conftest import OPERATOR_IMAGE, TRAINER_IMAGE
from tests.support import kube
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.slow]


# The release's namespace is fixed: the chart's CRD outlives `helm uninstall` (it is
# kept, with the jobs), and Helm adopts it again only into the same release and namespace.
SYSTEM = "gentrain-system"


@pytest.fixture
def release(real_node: kube.Cluster, namespace: str) -> Iterator[str]:
    """The chart installed in its own namespace, watching only the test's namespace."""
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    helm(
        "install", "gentrain", str(CHART), "--kubeconfig", str(real_node.kubeconfig),
        "--namespace", SYSTEM, "--create-namespace", "--wait", "--timeout", "180s",
        "--set", f"operator.image.repository={repository},operator.image.tag={tag}",
        "--set", f"trainer.image={TRAINER_IMAGE},operator.replicas=2",
        "--set", f"operator.scope=namespace,operator.watchNamespaces={{{namespace}}}",
        timeout=240,
    )  # fmt: skip
    try:
        yield SYSTEM
    finally:
        helm("uninstall", "gentrain", "--kubeconfig", str(real_node.kubeconfig),
             "--namespace", SYSTEM, "--wait", check=False)  # fmt: skip
        real_node.core.delete_namespace(SYSTEM)
        wait_for(
            lambda: [n.metadata.name for n in real_node.core.list_namespace().items],
            lambda names: SYSTEM not in names,
            f"namespace {SYSTEM} to be deleted (the next install recreates it)",
        )


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
        lambda: real_node.core.list_namespaced_pod(namespace, label_selector="gentrain.io/job=first").items,
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
