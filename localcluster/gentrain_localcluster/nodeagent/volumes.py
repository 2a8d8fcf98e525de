"""A pod's volumes, prepared as host directories and kept up to date like the kubelet does."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic_dir
from .environment import field_value

# Reads a ConfigMap or Secret's data (decoded) or None: (kind, namespace, name) -> data.
ObjectReader = Callable[[str, str, str], Mapping[str, bytes] | None]
# Requests a service-account token: (namespace, sa, audience, seconds, pod) -> token.
TokenRequester = Callable[[str, str, str | None, int, Mapping[str, Any]], str]
# Finds the host directory behind a claim: (namespace, claim) -> path.
ClaimResolver = Callable[[str, str], Path]


class VolumeError(RuntimeError):
    """A volume cannot be set up yet (missing ConfigMap, unbound claim): retried."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


def configmap_data(obj: Any) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (obj.data or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()})
    return data


def secret_data(obj: Any) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}


def _select(
    data: Mapping[str, bytes], items: list[dict[str, Any]] | None, what: str
) -> dict[str, bytes]:
    if not items:
        return dict(data)
    selected = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"{what} has no key {item['key']!r}")
        selected[item["path"]] = data[item["key"]]
    return selected


class PodVolumes:
    def __init__(
        self,
        pod: Mapping[str, Any],
        root: Path,
        read_object: ObjectReader,
        request_token: TokenRequester,
        resolve_claim: ClaimResolver,
    ) -> None:
        self.pod = pod
        self.root = root
        self.read_object = read_object
        self.request_token = request_token
        self.resolve_claim = resolve_claim
        self.namespace: str = pod["metadata"]["namespace"]
        self.paths: dict[str, Path] = {}

    def _object_files(self, kind: str, source: Mapping[str, Any]) -> dict[str, bytes] | None:
        name = source.get("name") or source.get("secretName")
        assert name is not None
        data = self.read_object(kind, self.namespace, name)
        if data is None:
            if source.get("optional"):
                return {}
            raise VolumeError(f"{kind} {self.namespace}/{name} not found")
        return _select(data, source.get("items"), f"{kind} {name}")

    def _downward_files(self, items: list[dict[str, Any]]) -> dict[str, bytes]:
        files = {}
        for item in items:
            if "fieldRef" in item:
                files[item["path"]] = field_value(self.pod, item["fieldRef"]["fieldPath"]).encode()
        return files

    def _projected_files(self, sources: list[dict[str, Any]]) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for source in sources:
            if "serviceAccountToken" in source:
                spec = source["serviceAccountToken"]
                token = self.request_token(
                    self.namespace,
                    self.pod["spec"].get("serviceAccountName") or "default",
                    spec.get("audience"),
                    int(spec.get("expirationSeconds", 3607)),
                    self.pod,
                )
                files[spec["path"]] = token.encode()
            elif "configMap" in source:
                files.update(self._object_files("configmap", source["configMap"]) or {})
            elif "secret" in source:
                files.update(self._object_files("secret", source["secret"]) or {})
            elif "downwardAPI" in source:
                files.update(self._downward_files(source["downwardAPI"].get("items") or []))
        return files

    def _files_for(self, volume: Mapping[str, Any]) -> dict[str, bytes] | None:
        """The files of a volume whose content comes from the API, or None for other kinds."""
        if "configMap" in volume:
            return self._object_files("configmap", volume["configMap"])
        if "secret" in volume:
            return self._object_files("secret", volume["secret"])
        if "projected" in volume:
            return self._projected_files(volume["projected"].get("sources") or [])
        if "downwardAPI" in volume:
            return self._downward_files(volume["downwardAPI"].get("items") or [])
        return None

    def prepare(self, owner_uid: int | None, group: int | None) -> None:
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            if "emptyDir" in volume:
                path = self.root / "volumes" / name
                path.mkdir(parents=True, exist_ok=True)
                if owner_uid is not None or group is not None:
                    os.chown(
                        path,
                        owner_uid if owner_uid is not None else -1,
                        group if group is not None else -1,
                    )
                    path.chmod(0o2775)
            elif "hostPath" in volume:
                path = Path(volume["hostPath"]["path"])
                if volume["hostPath"].get("type") == "DirectoryOrCreate":
                    path.mkdir(parents=True, exist_ok=True)
            elif "persistentVolumeClaim" in volume:
                path = self.resolve_claim(
                    self.namespace, volume["persistentVolumeClaim"]["claimName"]
                )
                if group is not None:
                    os.chown(path, -1, group)
                    path.chmod(0o2775)
            else:
                files = self._files_for(volume)
                if files is None:
                    raise VolumeError(f"volume {name!r}: this node agent does not support its type")
                path = self.root / "volumes" / name
                mode = next(
                    (
                        volume[k].get("defaultMode")
                        for k in ("configMap", "secret", "projected")
                        if k in volume and volume[k].get("defaultMode") is not None
                    ),
                    0o644,
                )
                atomic_dir.write(path, files, mode)
            self.paths[name] = path

    def refresh(self) -> list[str]:
        """Rewrites the API-backed volumes whose content changed; returns their names."""
        changed = []
        for volume in self.pod["spec"].get("volumes") or []:
            if "projected" in volume:
                # Tokens are refreshed by their own clock, not on every sync.
                continue
            try:
                files = self._files_for(volume)
            except VolumeError:
                continue
            if files is not None and atomic_dir.write(self.paths[volume["name"]], files):
                changed.append(volume["name"])
        return changed

    def mounts(self, container: Mapping[str, Any]) -> list[Mount]:
        mounts = []
        for mount in container.get("volumeMounts") or []:
            source = self.paths[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                if not source.exists():
                    source.mkdir(parents=True)
            mounts.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
        return mounts
