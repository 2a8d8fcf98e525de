"""The cluster the integration tests run against, and small helpers over it.

By default the local control plane (`gentrain_localcluster`): reused when `make
cluster-up` already started it, otherwise started for the test session and stopped after.
With GENTRAIN_TEST_CLUSTER=kubeconfig the tests use whatever KUBECONFIG names instead
(kind, a real cluster).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    kubeconfig: Path
    api: client.ApiClient
    local: bool

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = shutil.which(
            "kubectl", path=f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        )
        assert binary is not None, "kubectl not found: run `make setup`"
        result = subprocess.run(
            [binary, f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str | None = None
    ) -> None:
        documents = manifest if isinstance(manifest, list) else [manifest]
        args = ["apply", "-f", "-"] + ([f"--namespace={namespace}"] if namespace else [])
        self.kubectl(*args, input_text=yaml.safe_dump_all(documents))

    def client_for_token(self, token: str) -> client.ApiClient:
        """An API client that authenticates with a bearer token (a ServiceAccount's)."""
        base = self.api.configuration
        configuration = client.Configuration()
        configuration.host = base.host
        configuration.ssl_ca_cert = base.ssl_ca_cert
        configuration.verify_ssl = base.verify_ssl
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(configuration)


def target() -> str:
    return os.environ.get("GENTRAIN_TEST_CLUSTER", "local")


def load(kubeconfig: Path, local: bool) -> Cluster:
    return Cluster(
        kubeconfig=kubeconfig, api=config.new_client_from_config(str(kubeconfig)), local=local
    )


def point_clients_at(cluster: Cluster, monkeypatch: Any) -> None:
    """Makes kopf's and the operator's client find the test cluster's kubeconfig.

    The kubernetes library reads KUBECONFIG once, when it is imported; the suite imports it
    before any test sets the variable, so its default location is patched as well."""
    import kubernetes.config.kube_config

    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig)
    )
