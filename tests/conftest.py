"""Fixtures shared by the whole suite: the cluster, a fresh namespace per test."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support import kube


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
        localcluster.up(layout)
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
