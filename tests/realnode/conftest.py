"""The real-node tier: tests that need pods to run their images (a real kubelet and
container runtime). They run on the local real node (`make test-realnode`, which starts
it with GENTRAIN_NODE=kubelet) or on any cluster KUBECONFIG names (kind: `make e2e-kind`),
and are skipped, with the reason, on the node agent."""

from __future__ import annotations

import pytest

from tests.support import kube

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
