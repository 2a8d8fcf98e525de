"""Whether a job of several pods can ever fit the cluster: how many pods of its shape the
nodes could hold if nothing else ran there. A job asking for more pods than that is never
started — not one pod made, nothing held — and says why; one that fits in principle is
started, and waits for room like any pod (Kueue admits a gang whole, where the cluster
has it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity


def requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What one pod asks for (its containers' requests, limits where a request is unset:
    extended resources such as nvidia.com/gpu are given as limits)."""
    asked: dict[str, Decimal] = {}
    for container in pod["spec"]["containers"]:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, amount in merged.items():
            asked[name] = asked.get(name, Decimal(0)) + parse_quantity(amount)
    return asked


def pods_that_fit(nodes: Sequence[Mapping[str, Any]], pod: Mapping[str, Any]) -> int:
    """How many pods like `pod` the nodes could hold at most: per node its allocatable over
    the pod's requests (every resource), over the nodes its nodeSelector allows and that
    take pods. Taints and affinity are not weighed: the bound is never too low."""
    asked = {name: amount for name, amount in requests(pod).items() if amount > 0}
    selector = pod["spec"].get("nodeSelector") or {}
    total = 0
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        if any(labels.get(key) != value for key, value in selector.items()):
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        bounds = [
            int(parse_quantity(allocatable.get(name, "0")) // amount)
            for name, amount in asked.items()
        ]
        if "pods" in allocatable:  # each pod takes one of the node's pod slots
            bounds.append(int(parse_quantity(allocatable["pods"])))
        total += min(bounds, default=0)
    return total


def describe(pod: Mapping[str, Any]) -> str:
    """A pod's requests, as a person reads them: cpu 500m, memory 1Gi, nvidia.com/gpu 1."""
    resources = pod["spec"]["containers"][0].get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return ", ".join(f"{name} {amount}" for name, amount in sorted(merged.items()))
