"""Kueue v0.17 (built from its Go module by `scripts/setup.sh kueue`, with its CRDs) run
against the test cluster, with GenerativeTrainingJob among its external frameworks.

Kueue runs on the host with the local cluster's admin kubeconfig, as prometheus-operator
does for the monitoring tier. Its webhooks are served but not registered with the API
server (that needs a Service the API server can reach: Kueue's own manifests, a cluster
with cluster networking on the host): Kueue's controllers and scheduler, which admit,
evict and account quota, are the ones a cluster runs; its admission-time validation and
defaulting of the objects are not exercised here."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support import kube, processes
from tests.support.waiting import wait_for

TOOLS = kube.REPO / ".tools"
BINARY = TOOLS / "bin" / "kueue"
CRDS = TOOLS / "kueue-crds"
NAMESPACE = "kueue-system"
# Kueue reads the metrics server's certificate from this fixed path when it does not
# manage its certificates itself (cmd/kueue/main.go); nothing else is written outside the
# test's own directory.
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
EXTERNAL_FRAMEWORK = "GenerativeTrainingJob.v1alpha1.gentrain.io"


def missing() -> list[str]:
    """What running Kueue needs that this machine lacks, each with how to get it."""
    needs = [
        f"{path.relative_to(kube.REPO)} (scripts/setup.sh kueue)"
        for path in (BINARY, CRDS)
        if not path.exists()
    ]
    if not METRICS_CERTS.exists() and os.geteuid() != 0:
        needs.append(f"{METRICS_CERTS}: Kueue reads its metrics certificate there (run as root)")
    return needs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificates(directory: Path) -> None:
    """A serving certificate for Kueue's webhook server (in `directory`) and its metrics
    server (METRICS_CERTS, made once), issued by the local cluster's CA."""
    from gentrain_localcluster.pki import CertificateAuthority

    authority = CertificateAuthority(kube.REPO / ".cluster" / "pki")
    cert, key = authority.ensure_serving("kueue", ["127.0.0.1", "localhost"])
    for target in (directory, METRICS_CERTS):
        target.mkdir(parents=True, exist_ok=True)
        if target == METRICS_CERTS and (target / "tls.crt").exists():
            continue
        (target / "tls.crt").write_bytes(cert.read_bytes())
        (target / "tls.key").write_bytes(key.read_bytes())


def configuration(directory: Path, health_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": f"127.0.0.1:{_free_port()}"},
        "webhook": {"host": "127.0.0.1", "port": _free_port(), "certDir": str(directory)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {
            "frameworks": ["batch/job"],
            "externalFrameworks": [EXTERNAL_FRAMEWORK],
        },
    }


@contextmanager
def running(cluster: kube.Cluster, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Kueue's CRDs installed and its manager running until the block ends."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for crd in ("workloads", "clusterqueues", "localqueues", "resourceflavors"):
        wait_for(
            lambda crd=crd: (
                cluster.kubectl(
                    "get",
                    "crd",
                    f"{crd}.kueue.x-k8s.io",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Established')].status}",
                ).stdout
            ),
            lambda established: established == "True",
            f"Kueue's {crd} CRD to be established",
        )
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    directory.mkdir(parents=True, exist_ok=True)
    _certificates(directory / "webhook-certs")
    health = _free_port()
    config = directory / "kueue.yaml"
    config.write_text(yaml.safe_dump(configuration(directory / "webhook-certs", health)))
    log = (directory / "kueue.log").open("ab")
    manager = subprocess.Popen(
        [
            str(BINARY),
            f"--config={config}",
            # Its on-demand visibility API is an aggregated API server: not what is tested.
            "--feature-gates=VisibilityOnDemand=false",
        ],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if manager.poll() is not None:
            tail = (directory / "kueue.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"Kueue exited ({manager.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, bool, "Kueue to be ready", timeout=90)
        yield manager
    finally:
        processes.stop(manager)
        log.close()


def queue_objects(namespace: str, queue: str, quota: dict[str, str]) -> list[dict[str, Any]]:
    """A ResourceFlavor, a ClusterQueue with this quota on it, and a LocalQueue for the
    namespace (the names carry the namespace: tests share the cluster)."""
    flavor, cluster_queue = f"{namespace}-flavor", f"{namespace}-cq"
    return [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ResourceFlavor",
            "metadata": {"name": flavor},
            "spec": {},
        },
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": sorted(quota),
                        "flavors": [
                            {
                                "name": flavor,
                                "resources": [
                                    {"name": resource, "nominalQuota": amount}
                                    for resource, amount in sorted(quota.items())
                                ],
                            }
                        ],
                    }
                ],
            },
        },
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": queue, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue},
        },
    ]
