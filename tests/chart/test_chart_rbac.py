"""The chart's RBAC on the real API server: the operator, run as a separate process that
authenticates with the chart's ServiceAccount token, does its whole job (sufficient), and
that identity is refused what the operator must never do (minimal). Also a server-side
dry-run of the whole rendered chart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.chart.test_chart import CHART, VALUE_SETS, render
from tests.operator.test_operator_cluster import GROUP, PLURAL, VERSION, unstable_gtj
from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
RELEASE_NAMESPACE = "gentrain"  # the namespace test_chart.render() renders for


def chart_objects(*args: str) -> list[dict[str, Any]]:
    return [d for d in render(*args) if d["kind"] != "CustomResourceDefinition"]


def test_the_rendered_chart_passes_a_server_side_dry_run(cluster: Cluster, gtj_crd: None) -> None:
    cluster.kubectl("create", "namespace", RELEASE_NAMESPACE, check=False)
    # What Helm installs first, from the chart's crds/: the peering object needs them.
    cluster.kubectl("apply", "-f", str(CHART / "crds"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    for name in ("defaults", "namespaced"):
        docs = yaml.safe_dump_all(chart_objects(*VALUE_SETS[name]))
        cluster.kubectl(
            "apply", "--dry-run=server", "-n", RELEASE_NAMESPACE, "-f", "-", input_text=docs
        )


@pytest.fixture
def operator_as_service_account(
    cluster: Cluster, gtj_crd: None, tmp_path: Path
) -> Iterator[client.ApiClient]:
    cluster.kubectl("create", "namespace", RELEASE_NAMESPACE, check=False)
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    objects = [d for d in chart_objects() if d["kind"] in wanted]
    cluster.apply(objects, RELEASE_NAMESPACE)
    account = next(d for d in objects if d["kind"] == "ServiceAccount")["metadata"]["name"]
    token = cluster.core.create_namespaced_service_account_token(
        account,
        RELEASE_NAMESPACE,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    base = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": base["clusters"],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "sa",
                        "context": {"cluster": base["clusters"][0]["name"], "user": "sa"},
                    }
                ],
            }
        )
    )
    log = (tmp_path / "operator.log").open("w")
    # The chart's own settings, as the Deployment passes them (the NetworkPolicy's too).
    [deployment] = [d for d in chart_objects() if d["kind"] == "Deployment"]
    chart_env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e and e["name"] in ("GENTRAIN_NETWORK_POLICY", "GENTRAIN_METRICS_FROM")
    }
    env = {
        **os.environ,
        **chart_env,
        "GENTRAIN_OPERATOR_NAMESPACE": RELEASE_NAMESPACE,
        "KUBECONFIG": str(kubeconfig),
        "GENTRAIN_METRICS_PORT": "0",
        "GENTRAIN_HEALTH_PORT": "18099",
    }
    env["GENTRAIN_METRICS_PORT"] = "18098"
    process = subprocess.Popen(
        [sys.executable, "-m", "gentrain_operator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    as_operator = cluster.client_for_token(token)
    try:
        yield as_operator
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        text = (tmp_path / "operator.log").read_text()
        # A missing RBAC rule shows up as a 403 Forbidden from the API server: the
        # kubernetes client logs "(403)" and "Reason: Forbidden", kopf "Forbidden". Bare
        # digits are no evidence: namespace names and log timestamps contain them. Nor is
        # an Event refused in a namespace another test is deleting (the operator watches
        # the whole cluster): that is not an RBAC rule.
        denied = [
            line
            for line in text.splitlines()
            if re.search(r"Forbidden|\(403\)", line) and "is being terminated" not in line
        ]
        assert not denied, "\n".join(denied[:5]) + "\n" + text[-3000:]


def test_the_chart_rbac_is_enough_to_run_and_remediate(
    cluster: Cluster, namespace: str, operator_as_service_account: client.ApiClient
) -> None:
    cluster.apply(unstable_gtj("rbac"), namespace)
    custom = client.CustomObjectsApi(cluster.api)
    final = wait_for(
        lambda: (
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "rbac").get(
                "status"
            )
            or {}
        ),
        lambda s: s.get("phase") == "Running" and s.get("remediationCount", 0) >= 1,
        "the job to run and be remediated by the operator under the chart's ServiceAccount",
        timeout=180,
    )
    assert final["remediations"][0]["mode"] == "auto"
    # Only the operator's pods and Prometheus reach the trainer, on its metrics port.
    policy = client.NetworkingV1Api(cluster.api).read_namespaced_network_policy(
        "rbac-trainer", namespace
    )
    assert policy.spec.pod_selector.match_labels["gentrain.io/job"] == "rbac"
    [rule] = policy.spec.ingress
    assert [(p.protocol, p.port) for p in rule.ports] == [("TCP", 9090)]
    operator_peer, prometheus_peer = rule._from
    assert operator_peer.namespace_selector.match_labels == {
        "kubernetes.io/metadata.name": RELEASE_NAMESPACE
    }
    assert prometheus_peer.pod_selector.match_labels == {"app.kubernetes.io/name": "prometheus"}


@pytest.mark.parametrize(
    "verb, resource, group",
    [
        ("list", "secrets", ""),
        ("get", "secrets", ""),
        ("create", "pods/exec", ""),
        ("delete", "namespaces", ""),
        ("create", "deployments", "apps"),
        ("patch", "nodes", ""),
        ("delete", "customresourcedefinitions", "apiextensions.k8s.io"),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
        ("delete", "persistentvolumeclaims", ""),
        ("update", "configmaps", ""),
    ],
)
def test_the_chart_rbac_denies_what_the_operator_must_not_do(
    cluster: Cluster,
    operator_as_service_account: client.ApiClient,
    verb: str,
    resource: str,
    group: str,
) -> None:
    review = client.AuthorizationV1Api(
        operator_as_service_account
    ).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb,
                    resource=resource.split("/")[0],
                    subresource=([*resource.split("/"), ""])[1] or None,
                    group=group,
                    namespace="default",
                )
            )
        )
    )
    assert review.status.allowed is False, f"the operator may {verb} {resource}"


def may(cluster: Cluster, user: str, verb: str, resource: str, namespace: str) -> bool:
    review = client.AuthorizationV1Api(cluster.api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb,
                    group=GROUP,
                    resource=resource.split("/")[0],
                    subresource=([*resource.split("/"), ""])[1] or None,
                    namespace=namespace,
                ),
            )
        )
    )
    return bool(review.status.allowed)


def test_users_with_the_default_edit_and_view_roles_can_use_jobs(
    cluster: Cluster, namespace: str, gtj_crd: None
) -> None:
    """Kubernetes' `edit`/`view` roles, bound in a namespace as platform teams bind them,
    reach GenerativeTrainingJobs through the chart's aggregated ClusterRoles (before, only
    cluster-admin could create a job)."""
    roles = [
        d
        for d in chart_objects()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith(("-edit", "-view"))
    ]
    assert len(roles) == 2
    assert not [d for d in chart_objects("--set", "userRoles.aggregate=false") if d in roles]
    cluster.apply(roles, namespace)
    for user, role in (("alice", "edit"), ("bob", "view")):
        cluster.kubectl(
            "create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
            f"--user={user}", "-n", namespace,
        )  # fmt: skip
    wait_for(
        lambda: may(cluster, "alice", "create", PLURAL, namespace),
        bool,
        "the controller-manager to aggregate the chart's rules into `edit`",
        timeout=60,
    )
    assert may(cluster, "alice", "delete", PLURAL, namespace)
    assert not may(cluster, "alice", "patch", f"{PLURAL}/status", namespace)  # the operator's
    assert not may(cluster, "alice", "create", PLURAL, "default")  # bound in one namespace
    wait_for(lambda: may(cluster, "bob", "list", PLURAL, namespace), bool, "`view`", timeout=60)
    assert may(cluster, "bob", "get", f"{PLURAL}/status", namespace)
    assert not may(cluster, "bob", "create", PLURAL, namespace)
    assert not may(cluster, "bob", "patch", PLURAL, namespace)
