"""A live monitoring stack as kube-prometheus-stack installs it, on the real node:
prometheus-operator (built from its Go module by `setup.sh node`, with its CRDs) and the
Prometheus it makes — a StatefulSet whose pod runs our static prometheus and
config-reloader images (`images.sh monitoring`) — selecting monitors and rules by
kube-prometheus-stack's default selectors (label `release: kube-prometheus-stack`, every
namespace).

prometheus-operator itself runs on the host, with the local cluster's admin certificate:
its own image would need nothing the test looks at, while the Prometheus pod is what the
chart's objects configure."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gentrain_localcluster.realnode import oci_layout
from tests.support import kube, processes
from tests.support.waiting import wait_for

TOOLS = kube.REPO / ".tools"
NAMESPACE = "monitoring"
PROMETHEUS_VERSION = "v3.16.0"
PROMETHEUS_IMAGE = f"localhost/prometheus:{PROMETHEUS_VERSION}"
RELOADER_IMAGE = "localhost/prometheus-config-reloader:v0.85.0"
# kube-prometheus-stack's Prometheus selects what carries its release's label.
SELECTOR = {"release": "kube-prometheus-stack"}
# Scrapes and rule evaluations every few seconds: the tests wait on alerts, not on minutes.
INTERVAL = "5s"


def missing() -> list[str]:
    """What the stack needs that this checkout lacks, each with how to get it."""
    needs = {
        TOOLS / "bin" / "prometheus-operator": "scripts/setup.sh node",
        TOOLS / "prometheus-operator-crds": "scripts/setup.sh node",
    }
    absent = [
        f"{path.relative_to(kube.REPO)} ({how})" for path, how in needs.items() if not path.exists()
    ]
    layout = kube.REPO / ".images" / "oci"
    for image in (PROMETHEUS_IMAGE, RELOADER_IMAGE):
        if oci_layout.manifest_of(layout, image) is None:
            absent.append(f"{image} in .images/oci (scripts/images.sh monitoring)")
    return absent


@dataclass
class Stack:
    cluster: kube.Cluster
    operator: subprocess.Popen[bytes]
    url: str  # Prometheus's HTTP API, at its pod's address on the node's bridge
    service_url: str  # the same through its Service, as pods reach it

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.url}{path}{query}"  # http:// and the pod's address, made here
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            body = json.loads(response.read(8 << 20))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def alerts(self, state: str = "firing") -> list[dict[str, str]]:
        """The labels of each alert in that state (Prometheus's own view, before any
        Alertmanager)."""
        return [a["labels"] for a in self.get("/api/v1/alerts")["alerts"] if a["state"] == state]

    def active_targets(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/targets", state="active")["activeTargets"])


def prometheus_objects() -> list[dict[str, Any]]:
    """The Prometheus custom resource with kube-prometheus-stack's default selectors, and
    the RBAC its service discovery needs."""
    name = "kube-prometheus-stack-prometheus"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes", "services", "endpoints", "pods"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
        # The Service kube-prometheus-stack puts in front of its Prometheus.
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "selector": {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack"},
                "ports": [{"name": "http-web", "port": 9090, "targetPort": 9090}],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Prometheus",
            "metadata": {"name": "kube-prometheus-stack", "namespace": NAMESPACE},
            "spec": {
                "image": PROMETHEUS_IMAGE,
                "version": PROMETHEUS_VERSION,
                "replicas": 1,
                "serviceAccountName": name,
                "scrapeInterval": INTERVAL,
                "evaluationInterval": INTERVAL,
                # kube-prometheus-stack's defaults (*SelectorNilUsesHelmValues: true).
                "serviceMonitorSelector": {"matchLabels": SELECTOR},
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelector": {"matchLabels": SELECTOR},
                "podMonitorNamespaceSelector": {},
                "ruleSelector": {"matchLabels": SELECTOR},
                "ruleNamespaceSelector": {},
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            },
        },
    ]  # fmt: skip


def start(cluster: kube.Cluster, logs: Path) -> Stack:
    pki = kube.REPO / ".cluster" / "pki"
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(TOOLS / "prometheus-operator-crds")
    )
    for crd in ("prometheuses", "servicemonitors", "podmonitors", "prometheusrules"):
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            f"crd/{crd}.monitoring.coreos.com",
            "--timeout=60s",
        )
    logs.mkdir(parents=True, exist_ok=True)
    operator = subprocess.Popen(
        [
            str(TOOLS / "bin" / "prometheus-operator"),
            "--apiserver=https://127.0.0.1:6443",
            f"--ca-file={pki / 'ca.crt'}",
            f"--cert-file={pki / 'admin.crt'}",
            f"--key-file={pki / 'admin.key'}",
            f"--prometheus-config-reloader={RELOADER_IMAGE}",
            "--web.listen-address=127.0.0.1:0",
            "--log-level=info",
        ],
        stdout=(logs / "prometheus-operator.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        cluster.apply(prometheus_objects())
        pod = wait_for(
            lambda: _ready_prometheus_pod(cluster),
            lambda p: p is not None,
            "the Prometheus pod prometheus-operator makes to be Ready",
            timeout=240,
        )
    except BaseException:
        stop(cluster, operator)
        raise
    service = cluster.core.read_namespaced_service("kube-prometheus-stack-prometheus", NAMESPACE)
    return Stack(
        cluster=cluster,
        operator=operator,
        url=f"http://{pod.status.pod_ip}:9090",
        service_url=f"http://{service.spec.cluster_ip}:9090",
    )


def _ready_prometheus_pod(cluster: kube.Cluster) -> Any:
    pods = cluster.core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/name=prometheus"
    ).items
    for pod in pods:
        if pod.status.phase == "Failed":
            raise AssertionError(f"the Prometheus pod failed: {pod.status}")
        statuses = pod.status.container_statuses or []
        if statuses and all(s.ready for s in statuses):
            return pod
    return None


def stop(cluster: kube.Cluster, operator: subprocess.Popen[bytes]) -> None:
    # The Prometheus first, while its operator runs to let it go; then what the test made.
    cluster.kubectl(
        "delete", "prometheus", "--all", "-n", NAMESPACE, "--wait", "--timeout=60s", check=False
    )
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    name = "kube-prometheus-stack-prometheus"
    cluster.kubectl("delete", "clusterrolebinding,clusterrole", name, check=False)
    processes.stop(operator)


def wait_for_alert(
    stack: Stack, alertname: str, labels: dict[str, str], timeout: float
) -> tuple[dict[str, str], float]:
    """Waits until an alert with these labels fires; returns its labels and the seconds
    waited."""
    started = time.monotonic()
    found = wait_for(
        lambda: [
            a
            for a in stack.alerts()
            if a["alertname"] == alertname and all(a.get(k) == v for k, v in labels.items())
        ],
        bool,
        f"{alertname} {labels} to fire",
        timeout=timeout,
    )
    return found[0], time.monotonic() - started
