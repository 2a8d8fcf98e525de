"""Self-tests that prove the control plane is real: schema validation, scheduling,
garbage collection, namespace deletion, RBAC, kubelet-like volumes and pod lifecycle."""

from __future__ import annotations

import subprocess
import textwrap
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.kube import Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.selftest.gentrain.io"},
    "spec": {
        "group": "selftest.gentrain.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.size <= 10",
                                        "message": "size must be at most 10",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def _pod(
    name: str, script: str, mounts: list[dict[str, str]] | None = None, **spec: object
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "command": ["python", "-c", textwrap.dedent(script)],
                    "volumeMounts": mounts or [],
                }
            ],
            **spec,
        },
    }


def _phase(cluster: Cluster, namespace: str, name: str) -> str:
    return str(cluster.core.read_namespaced_pod(name, namespace).status.phase)


def test_crd_schema_rejects_invalid_objects_naming_the_field(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(WIDGET_CRD)
    wait_for(
        lambda: (
            cluster.kubectl(
                "get",
                "crd",
                "widgets.selftest.gentrain.io",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            ).stdout
        ),
        lambda s: s == "True",
        "the Widget CRD to be established",
    )

    def apply_widget(name: str, spec: str) -> subprocess.CompletedProcess[str]:
        manifest = f"apiVersion: selftest.gentrain.io/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        return cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", check=False, input_text=manifest
        )

    bad_type = apply_widget("w1", '{size: "big"}')
    assert bad_type.returncode != 0
    assert "spec.size" in bad_type.stderr
    too_big = apply_widget("w2", "{size: 11}")
    assert too_big.returncode != 0
    assert "size must be at most 10" in too_big.stderr
    strict = apply_widget("w3", "{size: 3, colour: blue}")
    assert strict.returncode != 0 and 'unknown field "spec.colour"' in strict.stderr
    # Without strict field validation, unknown fields are pruned by the structural schema.
    cluster.kubectl(
        "apply",
        "--validate=ignore",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=textwrap.dedent("""
        apiVersion: selftest.gentrain.io/v1
        kind: Widget
        metadata: {name: w3}
        spec: {size: 3, colour: blue}
    """),
    )
    stored = cluster.kubectl(
        "get", "widget", "w3", "-n", namespace, "-o", "jsonpath={.spec}"
    ).stdout
    assert "colour" not in stored and '"size":3' in stored


def test_job_runs_a_real_process_and_its_pods_are_garbage_collected(
    cluster: Cluster, namespace: str
) -> None:
    batch = client.BatchV1Api(cluster.api)
    cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "sum"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "sum",
                                "image": "python:3.11-slim",
                                "command": ["python", "-c", "print(sum(range(101)))"],
                            }
                        ],
                    }
                },
            },
        },
        namespace,
    )
    wait_for(
        lambda: batch.read_namespaced_job_status("sum", namespace).status.succeeded,
        lambda n: n == 1,
        "the Job to succeed",
        timeout=90,
    )
    pods = cluster.core.list_namespaced_pod(namespace, label_selector="job-name=sum").items
    assert len(pods) == 1
    assert pods[0].spec.node_name
    logs = cluster.core.read_namespaced_pod_log(pods[0].metadata.name, namespace)
    assert logs.strip() == "5050"
    batch.delete_namespaced_job("sum", namespace, propagation_policy="Background")
    wait_for(
        lambda: cluster.core.list_namespaced_pod(namespace, label_selector="job-name=sum").items,
        lambda items: not items,
        "the garbage collector to delete the Job's pod",
        timeout=60,
    )


def test_namespace_deletion_completes(cluster: Cluster) -> None:
    name = f"t-doomed-{int(time.time())}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    cluster.core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
    )
    cluster.core.delete_namespace(name)

    def gone() -> bool:
        try:
            cluster.core.read_namespace(name)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, bool, f"namespace {name} to be deleted", timeout=90)


def test_service_account_is_denied_what_its_role_does_not_grant(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "cm-reader"},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "cm-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "cm-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ],
        namespace,
    )
    token = cluster.core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    as_reader = client.CoreV1Api(cluster.client_for_token(token))
    assert isinstance(
        wait_for(
            lambda: as_reader.list_namespaced_config_map(namespace),
            lambda _: True,
            "the reader to list configmaps",
        ),
        client.V1ConfigMapList,
    )
    with pytest.raises(ApiException) as denied:
        as_reader.list_namespaced_pod(namespace)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as denied_write:
        as_reader.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="y"))
        )
    assert denied_write.value.status == 403


def test_config_map_volume_sees_an_update(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"mode": "first"},
        },
        namespace,
    )
    cluster.apply(
        _pod(
            "watcher",
            """
        import pathlib, time
        path = pathlib.Path("/etc/settings/mode")
        print("start:", path.read_text(), flush=True)
        while path.read_text() != "second":
            time.sleep(0.2)
        print("updated:", path.read_text(), flush=True)
    """,
            mounts=[{"name": "settings", "mountPath": "/etc/settings"}],
            volumes=[{"name": "settings", "configMap": {"name": "settings"}}],
        ),
        namespace,
    )
    wait_for(
        lambda: _phase(cluster, namespace, "watcher"), lambda p: p == "Running", "the pod to run"
    )
    cluster.core.patch_namespaced_config_map("settings", namespace, {"data": {"mode": "second"}})
    wait_for(
        lambda: _phase(cluster, namespace, "watcher"),
        lambda p: p == "Succeeded",
        "the pod to see the new value and exit",
        timeout=60,
    )
    assert "updated: second" in cluster.core.read_namespaced_pod_log("watcher", namespace)
