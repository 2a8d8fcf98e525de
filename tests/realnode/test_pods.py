"""Pods on the real node run their image, as the user they ask for, on a read-only root,
under limits the kernel enforces; `kubectl logs` and `exec` are served by the kubelet and
the API server reaches pods through the Service network (kube-proxy)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.realnode.conftest import OPERATOR_IMAGE
from tests.support import kube
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

# What the container reports about itself, read from the kernel, not from its spec.
PROBE = r"""
import json, os, urllib.request, ssl
def read(path):
    try:
        return open(path).read().strip()
    except OSError as error:
        return f"unreadable: {error}"
try:
    open("/written-by-the-pod", "w")
    root = "writable"
except OSError as error:
    root = f"read-only: {error.strerror}"
token = open("/var/run/secrets/kubernetes.io/serviceaccount/token").read()
context = ssl.create_default_context(cafile="/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
request = urllib.request.Request(f"https://{host}:{port}/version", headers={"Authorization": f"Bearer {token}"})
version = json.load(urllib.request.urlopen(request, context=context, timeout=10))["gitVersion"]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "root": root,
    "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "cpu_period": read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    "api_server": f"{host}:{port} {version}",
}), flush=True)
import time; time.sleep(600)
"""


def probe_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
            "containers": [
                {
                    "name": "probe",
                    "image": OPERATOR_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", PROBE],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "96Mi"},
                    },
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def test_a_pod_runs_its_image_as_its_user_read_only_under_enforced_limits(
    real_node: kube.Cluster, namespace: str
) -> None:
    created = time.monotonic()
    real_node.apply(probe_pod("probe"), namespace=namespace)
    wait_for(
        lambda: real_node.core.read_namespaced_pod("probe", namespace).status.phase,
        lambda phase: phase == "Running",
        "the probe pod to run",
        timeout=120,
    )
    running = time.monotonic() - created
    logs = wait_for(
        lambda: real_node.kubectl("logs", "-n", namespace, "probe", check=False).stdout,
        lambda out: out.strip().startswith("{"),
        "the probe's report in `kubectl logs` (served by the kubelet)",
        timeout=60,
    )
    seen = json.loads(logs.strip().splitlines()[0])
    print(f"create -> Running: {running:.1f} s; the pod saw {seen}")
    assert (seen["uid"], seen["gid"]) == (65532, 65532)
    assert seen["root"].startswith("read-only"), seen["root"]
    assert int(seen["memory_limit"]) == 96 * 1024 * 1024
    assert int(seen["cpu_quota"]) == int(seen["cpu_period"]) // 2  # 500m
    # Through the `kubernetes` Service's ClusterIP, which only kube-proxy's rules route.
    assert seen["api_server"].startswith("10.96.0.1:443 v1.36."), seen["api_server"]

    exec_out = real_node.kubectl("exec", "-n", namespace, "probe", "--", "id", "-u", check=False)
    assert exec_out.returncode == 0 and exec_out.stdout.strip() == "65532", exec_out.stderr
