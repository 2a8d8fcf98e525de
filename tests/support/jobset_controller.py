"""JobSet v0.11 (built from its Go module by `scripts/setup.sh jobset`, with its CRD) run
against the test cluster, as a cluster that has JobSet runs it.

The controller runs on the host with the local cluster's admin kubeconfig (as Kueue does
for its tests). Its JobSet webhooks, which default and validate every JobSet, are
registered with the API server by URL (the API server runs on this host too), so a
JobSet the operator makes passes JobSet's own admission. Its pod webhooks (exclusive
placement) are not registered: the operator asks for no exclusive placement.

Leaving the block removes the CRD (and with it every JobSet): later tests of the session
see a cluster without JobSet, as most are."""

from __future__ import annotations

import base64
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from gentrain_localcluster.pki import CertificateAuthority
from gentrain_localcluster.processes import free_port
from tests.support import kube, processes
from tests.support.waiting import wait_for

TOOLS = kube.REPO / ".tools"
BINARY = TOOLS / "bin" / "jobset"
CRDS = TOOLS / "jobset-crds"
CRD = "jobsets.jobset.x-k8s.io"
WEBHOOKS = "gentrain-test-jobset"


def missing() -> list[str]:
    """What running JobSet needs that this machine lacks, each with how to get it."""
    return [
        f"{path.relative_to(kube.REPO)} (scripts/setup.sh jobset)"
        for path in (BINARY, CRDS)
        if not path.exists()
    ]


def configuration(cert_dir: Path, webhook_port: int, health_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},  # not what is tested
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
    }


def webhook_configurations(port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """JobSet's defaulting and validating webhooks for JobSets (its manifests', by URL)."""

    def webhook(name: str, path: str, operations: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_bundle).decode(),
            },
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "rules": [
                {
                    "apiGroups": ["jobset.x-k8s.io"],
                    "apiVersions": ["v1alpha2"],
                    "operations": operations,
                    "resources": ["jobsets"],
                }
            ],
        }

    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOKS},
            "webhooks": [
                webhook("mjobset.kb.io", "/mutate-jobset-x-k8s-io-v1alpha2-jobset", ["CREATE"])
            ],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": WEBHOOKS},
            "webhooks": [
                webhook(
                    "vjobset.kb.io",
                    "/validate-jobset-x-k8s-io-v1alpha2-jobset",
                    ["CREATE", "UPDATE"],
                )
            ],
        },
    ]


@contextmanager
def running(cluster: kube.Cluster, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """JobSet's CRD installed, its controller running and its webhooks registered until
    the block ends; then all of it removed."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    wait_for(
        lambda: (
            cluster.kubectl(
                "get",
                "crd",
                CRD,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            ).stdout
        ),
        lambda established: established == "True",
        "JobSet's CRD to be established",
    )
    directory.mkdir(parents=True, exist_ok=True)
    authority = CertificateAuthority(kube.REPO / ".cluster" / "pki")
    cert, key = authority.ensure_serving("jobset", ["127.0.0.1", "localhost"])
    certs = directory / "webhook-certs"
    certs.mkdir(exist_ok=True)
    (certs / "tls.crt").write_bytes(cert.read_bytes())
    (certs / "tls.key").write_bytes(key.read_bytes())
    webhook_port, health_port = free_port(), free_port()
    config = directory / "jobset.yaml"
    config.write_text(yaml.safe_dump(configuration(certs, webhook_port, health_port)))
    log_path = directory / "jobset.log"
    log = log_path.open("ab")
    controller = subprocess.Popen(
        [str(BINARY), f"--config={config}", "--zap-log-level=info"],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if controller.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"JobSet's controller exited ({controller.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    manifests = directory / "webhooks.yaml"
    manifests.write_text(
        yaml.safe_dump_all(webhook_configurations(webhook_port, authority.cert_path.read_bytes()))
    )
    try:
        wait_for(ready, bool, "JobSet's controller to be ready", timeout=90)
        cluster.kubectl("apply", "-f", str(manifests))
        yield controller
    finally:
        cluster.kubectl("delete", "-f", str(manifests), "--ignore-not-found", check=False)
        cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=true", check=False)
        processes.stop(controller)
        log.close()
