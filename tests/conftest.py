"""Fixtures shared by the whole suite: the cluster, a fresh namespace per test, and a
guard that no test leaves logging switched off for the tests after it."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support import kube


@pytest.fixture(autouse=True)
def logging_left_on() -> Iterator[None]:
    """A test that leaves `logging.disable` set mutes every later test's log capture, and
    the test that then fails is one far away (a bench refusal once failed a trainer test's
    `caplog` in CI): fail the test that left it, and give logging back."""
    yield
    left = logging.root.manager.disable
    if left != logging.NOTSET:
        logging.disable(logging.NOTSET)
        pytest.fail(f"this test left logging disabled at level {left}: restore it when done")


@pytest.fixture(scope="session")
def cluster() -> Iterator[kube.Cluster]:
    if kube.target() == "kubeconfig":
        path = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        handle = kube.load(path, local=False)
        yield handle
        handle.api.close()
        return
    from gentrain_localcluster import cluster as localcluster
    from gentrain_localcluster.layout import Layout

    layout = Layout(state_dir=kube.REPO / ".cluster", tools_bin=kube.REPO / ".tools" / "bin")
    already_running = all(localcluster.status(layout).values())
    if not already_running:
        # GENTRAIN_NODE=kubelet: the real node (make test-realnode); else the node agent.
        localcluster.up(layout, node=os.environ.get("GENTRAIN_NODE", "agent"))
    handle = kube.load(layout.kubeconfig, local=True)
    try:
        yield handle
    finally:
        handle.api.close()
        if not already_running:
            localcluster.down(layout)


@pytest.fixture
def namespace(cluster: kube.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:5]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    # Deleting is asynchronous: the namespace controller finishes it after the test.
    cluster.core.delete_namespace(name)


@pytest.fixture(scope="session")
def gtj_crd(cluster: kube.Cluster) -> None:
    """The GenerativeTrainingJob CRD, installed and established."""
    from tests.support.waiting import wait_for

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kube.REPO / "crds"))
    wait_for(
        lambda: (
            cluster.kubectl(
                "get",
                "crd",
                "generativetrainingjobs.gentrain.io",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            ).stdout
        ),
        lambda s: s == "True",
        "the GenerativeTrainingJob CRD to be established",
    )


@pytest.fixture
def operator(
    cluster: kube.Cluster, gtj_crd: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The real operator (all its handlers) running inside the test via kopf's KopfRunner."""
    from kopf.testing import KopfRunner

    from gentrain_operator import jobset

    kube.point_clients_at(cluster, monkeypatch)
    # Whether the JobSet API is served is asked afresh: an earlier test's may be gone.
    monkeypatch.setattr(jobset, "_served", None)
    with KopfRunner(
        ["run", "--all-namespaces", "--standalone", "-m", "gentrain_operator.handlers"]
    ) as runner:
        yield
    assert runner.exception is None or isinstance(runner.exception, SystemExit), runner.exception


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server for the session (SQLite backend); its URI."""
    from tests.support.mlflow_server import serving

    with serving(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture
def second_node(cluster: kube.Cluster) -> Iterator[str]:
    """A second node of the local cluster (another node agent, its own pod subnet) for
    one test; its name."""
    from tests.support.nodes import extra_node

    if not cluster.local:
        pytest.skip("starts a node agent of the local cluster")
    with extra_node(cluster, "gentrain-node-2") as name:
        yield name


@pytest.fixture
def jobset_api(cluster: kube.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """JobSet (its controller, CRD and webhooks: tests/support/jobset_controller) on the
    local cluster for one test. Request it before `operator` (or a chart's release), so
    that the operator's first look finds the API."""
    from gentrain_localcluster.layout import ClusterState
    from tests.support import jobset_controller

    if not cluster.local:
        pytest.skip("runs a JobSet controller of its own: on the local cluster only")
    if not ClusterState.load(kube.REPO / ".cluster" / "state.json").pod_network:
        pytest.skip("a JobSet's pods find rank 0 through cluster DNS: needs the pod network (root)")
    lacking = jobset_controller.missing()
    if lacking:
        pytest.skip(f"JobSet is not built here: {', '.join(lacking)}")
    with jobset_controller.running(cluster, tmp_path_factory.mktemp("jobset")):
        yield
