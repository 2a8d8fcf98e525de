"""A container's environment, resolved the way the kubelet resolves it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .quantities import parse_quantity

# Reads a key of a ConfigMap or Secret: (kind, namespace, name, key) -> value or None.
KeyReader = Callable[[str, str, str, str | None], Mapping[str, str] | None]

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class ContainerConfigError(ValueError):
    """A reference in env or envFrom cannot be resolved: the container cannot start."""


def field_value(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(f"fieldRef {path!r} is not supported")


def resource_value(container: Mapping[str, Any], resource: str, divisor: str | None) -> str:
    """resourceFieldRef: limits or requests of the container, rounded up like the kubelet."""
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return "0"
    scaled = parse_quantity(value) / parse_quantity(divisor or "1")
    return str(math.ceil(scaled))


def expand(value: str, env: Mapping[str, str]) -> str:
    """$(VAR) expansion as in the kubelet: unknown references stay as written, $$ escapes."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, value)


def container_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    read: KeyReader,
    base: Mapping[str, str],
) -> dict[str, str]:
    env: dict[str, str] = dict(base)
    namespace = pod["metadata"]["namespace"]
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind in ("configMapRef", "secretRef"):
            ref = source.get(kind)
            if ref is None:
                continue
            data = read(kind, namespace, ref["name"], None)
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f"envFrom {kind} {ref['name']!r} not found")
            env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom") or {}
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            env[name] = resource_value(container, ref["resource"], ref.get("divisor"))
        else:
            for kind, ref_kind in (
                ("configMapKeyRef", "configMapRef"),
                ("secretKeyRef", "secretRef"),
            ):
                ref = source.get(kind)
                if ref is None:
                    continue
                data = read(ref_kind, namespace, ref["name"], ref["key"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        break
                    raise ContainerConfigError(
                        f"env {name}: {kind} {ref['name']}/{ref['key']} not found"
                    )
                env[name] = data[ref["key"]]
        if name not in env:
            env[name] = ""
    return env
