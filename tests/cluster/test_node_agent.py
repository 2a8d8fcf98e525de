"""The node agent behaves like a kubelet where the operator can tell the difference:
pod networking, volumes, restarts, exit codes and messages, graceful deletion, GPUs."""

from __future__ import annotations

import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from gentrain_localcluster.nodeagent import memory
from tests.support.kube import Cluster
from tests.support.nodes import extra_node
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def pod(name: str, script: str, restart: str = "Never", **extra: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "python:3.11-slim",
        "command": ["python", "-u", "-c", textwrap.dedent(script)],
    }
    container.update(extra.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": restart, "containers": [container], **extra},
    }


def status(cluster: Cluster, namespace: str, name: str) -> Any:
    return cluster.core.read_namespaced_pod(name, namespace).status


def gone(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        cluster.core.read_namespaced_pod(name, namespace)
    except ApiException as error:
        return error.status == 404
    return False


def test_pods_get_distinct_addresses_and_can_listen_on_the_same_port(
    cluster: Cluster, namespace: str
) -> None:
    server = """
        import http.server, os
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = os.environ["POD_NAME"].encode()
                self.send_response(200); self.end_headers(); self.wfile.write(body)
        http.server.HTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
    """
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    probe = {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 1}
    for name in ("web-a", "web-b"):
        cluster.apply(pod(name, server, container={"env": env, "readinessProbe": probe}), namespace)
    ips = {}
    for name in ("web-a", "web-b"):
        ready = wait_for(
            lambda n=name: status(cluster, namespace, n),
            lambda s: bool(s.container_statuses and s.container_statuses[0].ready),
            f"{name} to pass its readiness probe",
        )
        ips[name] = ready.pod_ip
    assert ips["web-a"] != ips["web-b"]
    if cluster.local:
        for name, ip in ips.items():
            with urllib.request.urlopen(f"http://{ip}:8000/", timeout=5) as response:
                assert response.read().decode() == name


def test_a_pod_resolves_its_own_name_to_its_address_as_a_kubelets_pods_do(
    cluster: Cluster, namespace: str
) -> None:
    """A kubelet writes each pod's /etc/hosts with the pod's name at its IP. torchrun and
    gloo resolve their host name to learn the address their peers reach: without that
    entry the lookup went to a DNS server the pod network cannot reach, and failed after
    10 s (twice at each join of a two-pod job: 40 s)."""
    script = """
        import socket
        print("own", socket.gethostbyname(socket.gethostname()))
    """
    cluster.apply(pod("named", script), namespace)
    final = wait_for(
        lambda: status(cluster, namespace, "named"),
        lambda s: s.phase in ("Succeeded", "Failed"),
        "the pod to finish",
    )
    log = cluster.core.read_namespaced_pod_log("named", namespace)
    assert final.phase == "Succeeded", log
    assert f"own {final.pod_ip}" in log, log


def test_failure_reports_exit_code_and_termination_message(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        pod(
            "fails",
            """
        import sys
        open("/dev/termination-log", "w").write("config field model.family is missing")
        sys.exit(2)
    """,
        ),
        namespace,
    )
    final = wait_for(
        lambda: status(cluster, namespace, "fails"),
        lambda s: s.phase == "Failed",
        "the pod to fail",
    )
    terminated = final.container_statuses[0].state.terminated
    assert terminated.exit_code == 2
    assert terminated.message == "config field model.family is missing"


def test_on_failure_restarts_the_container_until_it_succeeds(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        pod(
            "flaky",
            """
        import pathlib, sys
        marker = pathlib.Path("/scratch/tried")
        if not marker.exists():
            marker.write_text("once")
            sys.exit(1)
        print("second try works")
    """,
            restart="OnFailure",
            container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
            volumes=[{"name": "scratch", "emptyDir": {}}],
        ),
        namespace,
    )
    final = wait_for(
        lambda: status(cluster, namespace, "flaky"),
        lambda s: s.phase == "Succeeded",
        "the restarted pod to succeed",
        timeout=60,
    )
    assert final.container_statuses[0].restart_count == 1
    assert final.container_statuses[0].last_state.terminated.exit_code == 1


def test_graceful_deletion_and_persistent_volume(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace,
    )
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    cluster.apply(
        pod(
            "saver",
            """
        import pathlib, signal, sys, time
        def save(*_):
            pathlib.Path("/data/saved").write_text("saved on SIGTERM")
            sys.exit(0)
        signal.signal(signal.SIGTERM, save)
        print("running", flush=True)
        while True:
            time.sleep(0.1)
    """,
            container=mount,
            terminationGracePeriodSeconds=30,
            **volume,
        ),
        namespace,
    )
    wait_for(
        lambda: status(cluster, namespace, "saver").phase,
        lambda p: p == "Running",
        "the pod to run (its claim bound by the provisioner)",
        timeout=60,
    )
    wait_for(
        lambda: cluster.core.read_namespaced_pod_log("saver", namespace),
        lambda log: "running" in log,
        "the process to install its SIGTERM handler",
    )
    started = time.monotonic()
    cluster.core.delete_namespaced_pod("saver", namespace)
    wait_for(lambda: gone(cluster, namespace, "saver"), bool, "the pod to be deleted")
    assert time.monotonic() - started < 15, (
        "the pod exited on SIGTERM, not at the end of its grace period"
    )
    cluster.apply(
        pod("reader", 'print(open("/data/saved").read())', container=mount, **volume), namespace
    )
    wait_for(
        lambda: status(cluster, namespace, "reader").phase,
        lambda p: p == "Succeeded",
        "the second pod to read the volume",
        timeout=60,
    )
    assert cluster.core.read_namespaced_pod_log("reader", namespace).strip() == "saved on SIGTERM"


def test_a_container_ignoring_sigterm_is_killed_after_its_grace_period(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        pod(
            "stubborn",
            """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        while True:
            time.sleep(0.1)
    """,
            terminationGracePeriodSeconds=2,
        ),
        namespace,
    )
    wait_for(
        lambda: cluster.core.read_namespaced_pod_log("stubborn", namespace),
        lambda log: "ignoring SIGTERM" in log,
        "the process to ignore SIGTERM",
    )
    started = time.monotonic()
    cluster.core.delete_namespaced_pod("stubborn", namespace)
    wait_for(
        lambda: gone(cluster, namespace, "stubborn"),
        bool,
        "the pod to be killed and deleted",
        timeout=30,
    )
    assert 2 <= time.monotonic() - started < 15


def test_a_process_in_a_session_of_its_own_ends_with_its_container(
    cluster: Cluster, namespace: str
) -> None:
    """torchrun starts each rank in a session of its own: when the agent killed torchrun's
    process group, a rank blocked in a collective (deaf to SIGTERM) lived on with parent 1,
    two of them after a whole test run. A container's processes end with it, as they do
    under a runtime (its PID namespace goes): every process left in its cgroup is killed."""
    if not cluster.local:
        pytest.skip("the node agent's containers; a runtime's PID namespace does this")
    if not memory.available():
        pytest.skip("no writable cgroup v1 memory controller: the agent makes no cgroups")
    cluster.apply(
        pod(
            "spawner",
            """
        import signal, subprocess, sys, time
        deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        child = subprocess.Popen([sys.executable, "-c", deaf], start_new_session=True)
        print(f"child {child.pid}", flush=True)
        time.sleep(2)
    """,
            container={"resources": {"limits": {"memory": "256Mi"}}},
        ),
        namespace,
    )
    log = wait_for(
        lambda: cluster.core.read_namespaced_pod_log("spawner", namespace),
        lambda text: "child " in text,
        "the container to start its child",
    )
    child = int(log.split("child ", 1)[1].split()[0])
    wait_for(
        lambda: status(cluster, namespace, "spawner").phase,
        lambda phase: phase == "Succeeded",
        "the container to exit",
    )
    wait_for(lambda: running(child), lambda alive: not alive, "its child to end with it", 15)


def running(pid: int) -> bool:
    """Whether a process of this host runs (a zombie nobody reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_second_deletion_with_a_shorter_grace_period_kills_sooner(
    cluster: Cluster, namespace: str
) -> None:
    """As a kubelet does: a pod being deleted with 60 s of grace, deleted again with 1 s,
    is killed after about 1 s. The operator relies on it when a JobSet's own deletion of
    rank 0 (its full grace) is overtaken by the operator's (a gang that lost a pod)."""
    cluster.apply(
        pod(
            "overtaken",
            """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        while True:
            time.sleep(0.1)
    """,
            terminationGracePeriodSeconds=60,
        ),
        namespace,
    )
    wait_for(
        lambda: cluster.core.read_namespaced_pod_log("overtaken", namespace),
        lambda log: "ignoring SIGTERM" in log,
        "the process to ignore SIGTERM",
    )
    cluster.core.delete_namespaced_pod("overtaken", namespace)
    time.sleep(2)  # the node agent is stopping it with 60 s of grace
    started = time.monotonic()
    cluster.core.delete_namespaced_pod("overtaken", namespace, grace_period_seconds=1)
    wait_for(
        lambda: gone(cluster, namespace, "overtaken"),
        bool,
        "the pod to be killed and deleted",
        timeout=50,
    )
    assert time.monotonic() - started < 20


@pytest.fixture
def gpu_node(cluster: Cluster) -> Iterator[str]:
    """A second node agent that advertises two nvidia.com/gpu."""
    if not cluster.local:
        pytest.skip("starts a node agent of the local cluster")
    with extra_node(cluster, "gentrain-gpu-node", gpus=2) as name:
        wait_for(
            lambda: cluster.core.read_node(name).status.allocatable.get("nvidia.com/gpu"),
            lambda gpus: gpus == "2",
            "the GPU node to offer its GPUs",
        )
        yield name


def test_gpu_pods_are_scheduled_only_where_gpus_are_free(
    cluster: Cluster, namespace: str, gpu_node: str
) -> None:
    def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
        return pod(
            name, "print('trained')", container={"resources": {"limits": {"nvidia.com/gpu": gpus}}}
        )

    cluster.apply(gpu_pod("fits", 1), namespace)
    cluster.apply(gpu_pod("too-big", 4), namespace)
    done = wait_for(
        lambda: cluster.core.read_namespaced_pod("fits", namespace),
        lambda p: p.status.phase == "Succeeded",
        "the 1-GPU pod to run",
    )
    assert done.spec.node_name == gpu_node
    unschedulable = wait_for(
        lambda: status(cluster, namespace, "too-big").conditions or [],
        lambda conditions: any(
            c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions
        ),
        "the 4-GPU pod to be reported unschedulable",
    )
    message = next(c.message for c in unschedulable if c.type == "PodScheduled")
    assert "Insufficient nvidia.com/gpu" in message


def test_a_pod_on_a_second_node_runs_the_projects_programs(
    cluster: Cluster, namespace: str, second_node: str
) -> None:
    """A second node agent gives its pods what the first's have: the checkout, wherever it
    lives. Started with another environment, it hid a checkout under /tmp (a pod's own
    /tmp covers it), and the trainer of a pod placed there could not be imported (a fresh
    clone's job of two pods failed at every attempt)."""
    script = """
        import gentrain_trainer
        print("imported", gentrain_trainer.__file__)
    """
    cluster.apply(pod("elsewhere", script, nodeName=second_node), namespace)
    final = wait_for(
        lambda: status(cluster, namespace, "elsewhere"),
        lambda s: s.phase in ("Succeeded", "Failed"),
        "the pod on the second node to finish",
        timeout=60,
    )
    log = cluster.core.read_namespaced_pod_log("elsewhere", namespace)
    assert final.phase == "Succeeded", log
    assert "imported" in log, log


def test_an_exec_probe_runs_inside_the_container_as_a_kubelets_does(
    cluster: Cluster, namespace: str
) -> None:
    """With the container's environment, files (its own /etc/hosts) and user: the trainer's
    rendezvous probe reads PET_MASTER_ADDR and resolves names the pod's way. Run from the
    node's side with the node's environment, it never passed."""
    check = (
        "import os, sys; "
        "ok = os.environ.get('WANTED') == 'yes' and 'probed' in open('/etc/hosts').read() "
        "and os.getuid() == 1234; sys.exit(0 if ok else 1)"
    )
    cluster.apply(
        pod(
            "probed",
            "import time; time.sleep(120)",
            hostname="probed",
            securityContext={"runAsUser": 1234, "runAsGroup": 1234},
            container={
                "env": [{"name": "WANTED", "value": "yes"}],
                "readinessProbe": {
                    "exec": {"command": ["python", "-c", check]},
                    "periodSeconds": 1,
                    "timeoutSeconds": 5,
                },
            },
        ),
        namespace,
    )
    wait_for(
        lambda: status(cluster, namespace, "probed").conditions or [],
        lambda conditions: any(c.type == "Ready" and c.status == "True" for c in conditions),
        "the pod Ready by its exec probe",
        timeout=40,
    )
