"""The Node object and its heartbeats: status conditions and the node Lease."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KUBELET_VERSION = "v1.36.3"
LEASE_SECONDS = 40


def _memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def capacity(gpus: int) -> dict[str, str]:
    values = {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_memory_bytes() // 1024}Ki",
        "pods": "110",
        "ephemeral-storage": "50Gi",
    }
    if gpus:
        values["nvidia.com/gpu"] = str(gpus)
    return values


def node_manifest(name: str, gpus: int) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
        "gentrain.io/node-agent": "true",
    }
    if gpus:
        labels["nvidia.com/gpu.present"] = "true"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def node_status(host_ip: str, gpus: int, log_port: int, started: str) -> dict[str, Any]:
    now = _now()

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": started,
        }

    resources = capacity(gpus)
    uname = os.uname()
    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "enough memory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "enough PIDs"),
            condition(
                "Ready", "True", "KubeletReady", "gentrain node agent is posting ready status"
            ),
        ],
        "addresses": [
            {"type": "InternalIP", "address": host_ip},
            {"type": "Hostname", "address": uname.nodename},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "nodeInfo": {
            "machineID": _machine_id(),
            "systemUUID": _machine_id(),
            "bootID": _boot_id(),
            "kernelVersion": uname.release,
            "osImage": "gentrain local node (processes, no images)",
            "containerRuntimeVersion": "gentrain-nodeagent://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": node_manifest("x", 0)["metadata"]["labels"]["kubernetes.io/arch"],
        },
    }


def lease_manifest(name: str, node_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def _machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except FileNotFoundError:
        return "gentrain-local"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except FileNotFoundError:
        return "unknown"
