"""Thin helpers over the official Kubernetes client (blocking: call them from sync
handlers or `asyncio.to_thread`, never from the event loop)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from gentrain_contract import program

from . import names

# (connect, read) seconds for every call this module makes. Without them an API server
# that accepts a connection and never answers holds the calling thread for ever (the
# monitors' and handlers' threads are a small pool: a few such calls stop the operator).
REQUEST_TIMEOUT = (5.0, 30.0)
# Read-modify-write attempts against a ConfigMap others write too (the lifecycle handler).
CONFLICT_RETRIES = 3


class TimedApiClient(client.ApiClient):  # type: ignore[misc]  # the client is untyped here (see pyproject)
    """The official client with a timeout on every request that does not set its own."""

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        return super().call_api(
            method, url, header_params, body, post_params, _request_timeout or REQUEST_TIMEOUT
        )


@functools.cache
def api() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return TimedApiClient()


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api())


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def to_dict(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api().sanitize_for_serialization(obj)
    return result


class RejectedError(Exception):
    """The API server refused an object as invalid or forbidden by admission (400, 403,
    422): sending it again as it is cannot succeed. The message is the server's own, which
    names the field (`spec.affinity...: Unsupported value`, `no PriorityClass with name`)."""


def server_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body)["message"])
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


def create(kind: str, namespace: str, body: Mapping[str, Any]) -> bool:
    """Creates the object; False if it already exists (the name is deterministic). Raises
    `RejectedError` when the API server refuses the object itself."""
    creators = {
        "ConfigMap": core().create_namespaced_config_map,
        "PersistentVolumeClaim": core().create_namespaced_persistent_volume_claim,
        "Pod": core().create_namespaced_pod,
        "NetworkPolicy": client.NetworkingV1Api(api()).create_namespaced_network_policy,
    }
    try:
        creators[kind](namespace, body, field_manager=names.FIELD_MANAGER)
    except ApiException as error:
        # 409: it exists (the names are deterministic). 403 NamespaceTerminating: the job is
        # going away with its namespace; nothing should be made for it any more.
        if error.status == 409 or (
            error.status == 403 and "NamespaceTerminating" in str(error.body)
        ):
            return False
        if error.status in (400, 403, 422):
            raise RejectedError(server_message(error)) from error
        raise
    return True


def read_pod(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return to_dict(core().read_namespaced_pod(name, namespace))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def read_custom(
    group: str, version: str, plural: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """A namespaced custom object (a Kueue Workload, a JobSet); None when it does not exist."""
    try:
        found: dict[str, Any] = custom().get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def read_attempt_pod(namespace: str, name: str) -> dict[str, Any] | None:
    """An attempt's trainer pod: the pod of that name, or else the one labelled as it
    (rank 0 of a JobSet, named by the Job controller; the newest, should a replaced one
    still be going)."""
    pod = read_pod(namespace, name)
    if pod is not None:
        return pod
    listed = (
        core()
        .list_namespaced_pod(namespace, label_selector=f"{names.ATTEMPT_POD_LABEL}={name}")
        .items
    )
    if not listed:
        return None
    newest = max(listed, key=lambda p: p.metadata.creation_timestamp)
    return to_dict(newest)


def read_config_map(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return to_dict(core().read_namespaced_config_map(name, namespace))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def replace_config_map(namespace: str, name: str, body: Mapping[str, Any]) -> str:
    """Writes the trainer's configuration; returns the ConfigMap's new resourceVersion."""
    written = core().patch_namespaced_config_map(
        name, namespace, {"data": body["data"]}, field_manager=names.FIELD_MANAGER
    )
    return str(written.metadata.resource_version)


def nudge_trainer(namespace: str, pod: str | None, config_version: str) -> None:
    """Marks the trainer pod with the configuration version just written, so that its
    kubelet refreshes the pod's ConfigMap volume now: a kubelet does so on each sync of
    the pod, which an update of the pod triggers, and otherwise only on its periodic sync
    (a minute or more apart), which on a real node delayed a remediation past the end of
    a short run. A pod that is gone (404) starts its successor with the new configuration;
    without the permission (403, an older chart) the periodic sync still delivers it."""
    if not pod:
        return
    patch = {"metadata": {"annotations": {names.CONFIG_VERSION_ANNOTATION: config_version}}}
    try:
        core().patch_namespaced_pod(pod, namespace, patch, field_manager=names.FIELD_MANAGER)
    except ApiException as error:
        if error.status == 404:  # rank 0 of a JobSet is named by the Job controller
            found = read_attempt_pod(namespace, pod)
            if found is not None and found["metadata"]["name"] != pod:
                nudge_trainer(namespace, found["metadata"]["name"], config_version)
        elif error.status != 403:
            raise


def write_retention(namespace: str, job: str, pinned: list[int], judged_through: int) -> str | None:
    """Sets only `checkpoints.pinned` and `checkpoints.judged_through` in the trainer's
    configuration; returns the ConfigMap's new resourceVersion, or None when it is gone
    or already says so (nothing written). Guarded by the
    resourceVersion read, so a spec change rendered at the same moment is never
    overwritten; on a conflict the ConfigMap is read again and the write retried."""
    name = names.configmap_name(job)
    for _ in range(CONFLICT_RETRIES):
        existing = read_config_map(namespace, name)
        if existing is None:
            return None
        config = yaml.safe_load((existing.get("data") or {}).get(program.CONFIG_KEY, "")) or {}
        if not isinstance(config, dict):
            return None
        wanted = {"pinned": pinned, "judged_through": judged_through}
        checkpoints = config.setdefault("checkpoints", {})
        if all(checkpoints.get(key) == value for key, value in wanted.items()):
            return None
        checkpoints.update(wanted)
        body = {
            "metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
            "data": {program.CONFIG_KEY: yaml.safe_dump(config, sort_keys=False)},
        }
        try:
            written = core().patch_namespaced_config_map(
                name, namespace, body, field_manager=names.FIELD_MANAGER
            )
        except ApiException as error:
            if error.status != 409:
                raise
            continue
        return str(written.metadata.resource_version)
    return None


def delete_pod(namespace: str, name: str, grace_seconds: int | None = None) -> None:
    try:
        core().delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)
    except ApiException as error:
        if error.status != 404:
            raise


def release_claim(namespace: str, name: str, owner_uid: str) -> None:
    """Removes the job's ownerReference from its checkpoint claim, so that deleting the
    job leaves the claim (and the weights on it). Nothing to do if it is gone or not the
    job's."""
    try:
        claim = core().read_namespaced_persistent_volume_claim(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return
        raise
    references = claim.metadata.owner_references or []
    index = next((i for i, r in enumerate(references) if r.uid == owner_uid), None)
    if index is None:
        return
    path = f"/metadata/ownerReferences/{index}"
    core().patch_namespaced_persistent_volume_claim(
        name,
        namespace,
        [{"op": "test", "path": f"{path}/uid", "value": owner_uid}, {"op": "remove", "path": path}],
        field_manager=names.FIELD_MANAGER,
    )


def delete_job(namespace: str, name: str, uid: str) -> None:
    """Deletes the job (its pods and ConfigMap go with it), only if it is still the one
    with `uid`: not a job of the same name created since."""
    try:
        custom().delete_namespaced_custom_object(
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL,
            name,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
        )
    except ApiException as error:
        if error.status not in (404, 409):
            raise


def any_node_has_gpus() -> bool:
    """Whether some node advertises nvidia.com/gpu (needs list on nodes; False if denied)."""
    nodes = list_nodes()
    if nodes is None:
        return True  # cannot tell: assume GPUs exist and wait for fallbackAfterSeconds
    return any(
        int(((n.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", "0")) > 0
        for n in nodes
    )


def list_nodes() -> list[dict[str, Any]] | None:
    """Every node (labels, spec, allocatable); None when nodes may not be listed."""
    try:
        nodes = core().list_node().items
    except ApiException as error:
        if error.status == 403:
            return None
        raise
    return [to_dict(node) for node in nodes]


def node_readiness(name: str) -> tuple[str, str] | None:
    """(status, message) of a node's Ready condition; ("Gone", ...) when the Node object
    is deleted; None when nodes cannot be read. Uses `list` with a field selector: the
    chart grants list on nodes (the CPU-fallback check), not get."""
    try:
        nodes = core().list_node(field_selector=f"metadata.name={name}").items
    except ApiException as error:
        if error.status == 403:
            return None
        raise
    if not nodes:
        return "Gone", "the Node object was deleted"
    for condition in (nodes[0].status and nodes[0].status.conditions) or []:
        if condition.type == "Ready":
            return str(condition.status), str(condition.message or "")
    return "Unknown", "the node reports no Ready condition"
