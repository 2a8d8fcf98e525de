"""Pod start latency on the local cluster's node: create -> Running, as a watch sees it.

The same pod each time (the operator image, non-root, read-only root, limits, a
`python` that sleeps), created one after another on an idle node, so that the figure is
the node's own start path: the node agent forks a sandboxed process; the real node
(GENTRAIN_NODE=kubelet) has the kubelet set up a pod sandbox (pause container, CNI
network), then containerd and runc start the container from its image.

    python -m bench.pod_start [--pods 5]

Uses the running local cluster (started on $GENTRAIN_NODE, and stopped after, if none
runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench import machine

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "gentrain-bench-pods"
IMAGE = "localhost/gentrain-operator:dev"


def sleeper(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "pod-start-bench"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
            "containers": [
                {
                    "name": "sleeper",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(300)"],
                    "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def start_once(core: client.CoreV1Api, name: str, timeout: float = 120) -> float:
    """Seconds from the create call to the first watch event with phase Running."""
    stream = watch.Watch()
    created = time.monotonic()
    core.create_namespaced_pod(NAMESPACE, sleeper(name))
    try:
        for event in stream.stream(
            core.list_namespaced_pod,
            NAMESPACE,
            field_selector=f"metadata.name={name}",
            timeout_seconds=int(timeout),
        ):
            pod = event["object"]
            if pod.status.phase == "Running":
                return time.monotonic() - created
            if pod.status.phase in ("Failed", "Succeeded"):
                raise RuntimeError(f"pod {name} ended {pod.status.phase} before running")
    finally:
        stream.stop()
    raise TimeoutError(f"pod {name} was not Running after {timeout} s")


def measure(kubeconfig: Path, node: str, pods: int) -> None:
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except client.ApiException as error:
        if error.status != 409:
            raise
    latencies = []
    try:
        for i in range(pods):
            name = f"sleeper-{i}"
            latencies.append(start_once(core, name))
            core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    finally:
        core.delete_namespace(NAMESPACE)
    shown = ", ".join(f"{s:.2f}" for s in latencies)
    print(
        f"pod create -> Running on the {node} node: median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s ({pods} pods, one at a time: {shown})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(f"measured on: {machine.line()}")
    from gentrain_localcluster import cluster as localcluster
    from gentrain_localcluster.layout import ClusterState, Layout

    layout = Layout(ROOT / ".cluster", ROOT / ".tools" / "bin")
    started = not all(localcluster.status(layout).values())
    if started:
        localcluster.up(layout, node=os.environ.get("GENTRAIN_NODE", "agent"))
    try:
        node = ClusterState.load(layout.state_file).node
        measure(
            layout.kubeconfig,
            "real (kubelet + containerd)" if node == "kubelet" else "agent",
            args.pods,
        )
    finally:
        if started:
            localcluster.down(layout)


if __name__ == "__main__":
    main()
