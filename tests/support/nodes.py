"""Another node of the local cluster: a second node agent on this machine, registered as
its own Node, with its own pod subnet on the shared bridge (as each node of a cluster has
its own pod CIDR)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.kube import REPO, Cluster
from tests.support.waiting import wait_for


@contextmanager
def extra_node(
    cluster: Cluster, name: str, *, gpus: int = 0, subnet: int = 1, log_port: int = 10251
) -> Iterator[str]:
    """Runs the node agent `name` (advertising `gpus` nvidia.com/gpu) until the block
    ends; then stops it and deletes its Node."""
    from gentrain_localcluster.cluster import agent_env
    from gentrain_localcluster.kubeconfig import write_kubeconfig
    from gentrain_localcluster.layout import ClusterState, Layout
    from gentrain_localcluster.pki import CertificateAuthority, node_identity

    layout = Layout(REPO / ".cluster", REPO / ".tools" / "bin")
    # The cluster's own node agent's: its pods must see the checkout wherever it lives
    # (under /tmp, which a pod's own /tmp hides, the trainer could not be imported).
    env = agent_env(layout)
    identity = node_identity(name)
    ca = CertificateAuthority(layout.pki)
    cert, key = ca.ensure_client(identity)
    write_kubeconfig(
        layout.component_kubeconfig(identity.file_stem),
        ClusterState.load(layout.state_file).server,
        ca.cert_path,
        cert,
        key,
        identity.user,
    )
    log = (layout.state_dir / "logs" / f"{name}.log").open("ab")
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gentrain_localcluster.nodeagent",
            f"--node-name={name}",
            f"--gpus={gpus}",
            f"--log-port={log_port}",
            f"--pod-subnet={subnet}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: cluster.core.read_node(name).status.conditions or [],
            lambda conditions: any(c.type == "Ready" and c.status == "True" for c in conditions),
            f"node {name} to register, Ready",
        )
        yield name
    finally:
        agent.terminate()
        agent.wait(30)
        log.close()
        cluster.core.delete_node(name)
