"""The real-node tier: tests that need pods to run their images (a real kubelet and
container runtime). They run on the local real node (`make test-realnode`, which starts
it with GENTRAIN_NODE=kubelet) or on any cluster KUBECONFIG names (kind: `make e2e-kind`),
and are skipped, with the reason, on the node agent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.chart.test_chart import CHART, helm
from tests.support import kube
from tests.support.waiting import wait_for

OPERATOR_IMAGE = "localhost/gentrain-operator:dev"
TRAINER_IMAGE = "localhost/gentrain-trainer:dev"


@pytest.fixture(scope="session")
def real_node(cluster: kube.Cluster) -> kube.Cluster:
    if cluster.local:
        from gentrain_localcluster.layout import ClusterState

        node = ClusterState.load(kube.REPO / ".cluster" / "state.json").node
        if node != "kubelet":
            pytest.skip(
                "needs the real node: `make test-realnode` (GENTRAIN_NODE=kubelet) starts it; "
                "this session's cluster runs pods on the node agent"
            )
    return cluster


# The release's namespace is fixed: the chart's CRD outlives `helm uninstall` (it is
# kept, with the jobs), and Helm adopts it again only into the same release and namespace.
SYSTEM = "gentrain-system"


@contextmanager
def installed(real_node: kube.Cluster, namespace: str, *values: str) -> Iterator[str]:
    """The chart installed in its own namespace with the built images, watching only the
    test's namespace, with further `--set` values; uninstalled after, jobs first."""
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    sets = [f"--set={v}" for v in values]
    helm(
        "install", "gentrain", str(CHART), "--kubeconfig", str(real_node.kubeconfig),
        "--namespace", SYSTEM, "--create-namespace", "--wait", "--timeout", "180s",
        "--set", f"operator.image.repository={repository},operator.image.tag={tag}",
        "--set", f"trainer.image={TRAINER_IMAGE}",
        "--set", f"operator.scope=namespace,operator.watchNamespaces={{{namespace}}}",
        *sets,
        timeout=240,
    )  # fmt: skip
    try:
        yield SYSTEM
    finally:
        # What the operators did, shown with a failing test's output.
        for pod in real_node.core.list_namespaced_pod(SYSTEM).items:
            log = real_node.kubectl("logs", "-n", SYSTEM, pod.metadata.name, check=False)
            print(f"--- operator {pod.metadata.name}:\n{log.stdout[-20000:]}")
        # The jobs first, while the operator runs: it holds a finalizer on each, and a job
        # left behind would keep the test's namespace terminating for ever (as documented
        # for `helm uninstall`).
        # (An operator a test scaled to nothing is brought back for that.)
        real_node.kubectl("scale", "deployment", "--all", "-n", SYSTEM, "--current-replicas=0",
                          "--replicas=1", check=False)  # fmt: skip
        real_node.kubectl("delete", "generativetrainingjobs", "--all", "-n", namespace,
                          "--wait", "--timeout=120s", check=False)  # fmt: skip
        helm("uninstall", "gentrain", "--kubeconfig", str(real_node.kubeconfig),
             "--namespace", SYSTEM, "--wait", check=False)  # fmt: skip
        real_node.core.delete_namespace(SYSTEM)
        wait_for(
            lambda: [n.metadata.name for n in real_node.core.list_namespace().items],
            lambda names: SYSTEM not in names,
            f"namespace {SYSTEM} to be deleted (the next install recreates it)",
        )


@pytest.fixture
def release(real_node: kube.Cluster, namespace: str) -> Iterator[str]:
    """The chart as shipped, two replicas (one acts)."""
    with installed(real_node, namespace, "operator.replicas=2") as system:
        yield system
