"""The node agent's main loop: registration, heartbeats, and pods bound to this node."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .containers import now_rfc3339
from .logserver import make_server, serve_in_background
from .network_hooks import PodNetwork
from .node import lease_manifest, node_manifest, node_status
from .pods import PodContext, PodRunner
from .volumes import PodVolumes, VolumeError, configmap_data, secret_data

log = logging.getLogger("nodeagent")
HEARTBEAT_SECONDS = 10.0
# (connect, read) seconds. A watch ends on the server's side after WATCH_SECONDS; the
# client gives up a little later if the server has gone silent.
LIST_TIMEOUT = (5.0, 30.0)
WATCH_SECONDS = 120
WATCH_TIMEOUT = (5.0, WATCH_SECONDS + 30.0)


class NodeAgent:
    def __init__(
        self,
        api: client.ApiClient,
        node_name: str,
        pods_dir: Path,
        host_ip: str,
        isolated_network: bool,
        gpus: int,
        log_port: int,
        tls: tuple[Path, Path, Path],
        apiserver: tuple[str, int],
        pod_subnet: int = 0,
    ) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.node_name = node_name
        self.pods_dir = pods_dir
        self.host_ip = host_ip
        self.gpus = gpus
        self.log_port = log_port
        self.tls = tls
        self.started = now_rfc3339()
        self.runners: dict[str, PodRunner] = {}
        self.node_uid: str | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "KUBERNETES_SERVICE_HOST": apiserver[0],
            "KUBERNETES_SERVICE_PORT": str(apiserver[1]),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(apiserver[1]),
        }
        self.context = PodContext(
            pods_dir=pods_dir,
            base_env=base_env,
            host_ip=host_ip,
            read_keys=self._read_keys,
            make_volumes=self._make_volumes,
            patch_status=self._patch_status,
            pod_network=PodNetwork(isolated_network, host_ip, pod_subnet),
            keep_visible=sorted(
                {
                    sys.prefix,
                    sys.base_prefix,
                    *(
                        p
                        for p in os.environ.get("GENTRAIN_KEEP_VISIBLE", "").split(os.pathsep)
                        if p
                    ),
                }
            ),
        )

    # -- API helpers handed to pods ------------------------------------------------
    def _read_object(self, kind: str, namespace: str, name: str) -> Mapping[str, bytes] | None:
        try:
            if kind in ("configmap", "configMapRef"):
                return configmap_data(self.core.read_namespaced_config_map(name, namespace))
            return secret_data(self.core.read_namespaced_secret(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _read_keys(
        self, kind: str, namespace: str, name: str, key: str | None
    ) -> Mapping[str, str] | None:
        data = self._read_object(kind, namespace, name)
        return None if data is None else {k: v.decode(errors="replace") for k, v in data.items()}

    def _request_token(
        self,
        namespace: str,
        account: str,
        audience: str | None,
        seconds: int,
        pod: Mapping[str, Any],
    ) -> str:
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[audience] if audience else [],
                expiration_seconds=seconds,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1",
                    kind="Pod",
                    name=pod["metadata"]["name"],
                    uid=pod["metadata"]["uid"],
                ),
            )
        )
        result = self.core.create_namespaced_service_account_token(account, namespace, body)
        return str(result.status.token)

    def _resolve_claim(self, namespace: str, claim: str) -> Path:
        try:
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, namespace)
        except ApiException as error:
            raise VolumeError(
                f"PersistentVolumeClaim {namespace}/{claim}: {error.reason}"
            ) from error
        if pvc.status.phase != "Bound" or not pvc.spec.volume_name:
            raise VolumeError(f"PersistentVolumeClaim {namespace}/{claim} is not bound yet")
        pv = self.core.read_persistent_volume(pvc.spec.volume_name)
        source = pv.spec.host_path or pv.spec.local
        if source is None:
            raise VolumeError(f"PersistentVolume {pv.metadata.name} has no hostPath or local path")
        path = Path(source.path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _make_volumes(self, pod: Mapping[str, Any], root: Path) -> PodVolumes:
        return PodVolumes(pod, root, self._read_object, self._request_token, self._resolve_claim)

    def _patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(name, namespace, {"status": status})

    # -- node registration and heartbeats ------------------------------------------
    def register(self) -> None:
        try:
            self.core.create_node(node_manifest(self.node_name, self.gpus))
        except ApiException as error:
            if error.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        self.core.patch_node_status(
            self.node_name,
            {"status": node_status(self.host_ip, self.gpus, self.log_port, self.started)},
        )
        if self.node_uid is None:
            self.node_uid = self.core.read_node(self.node_name).metadata.uid
        lease = lease_manifest(self.node_name, self.node_uid)
        try:
            self.coordination.patch_namespaced_lease(
                self.node_name, "kube-node-lease", {"spec": lease["spec"]}
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease("kube-node-lease", lease)

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except Exception as error:
                log.warning("heartbeat failed: %s", error)

    # -- pods ----------------------------------------------------------------------
    def _locate_log(self, namespace: str, name: str, container: str, previous: bool) -> Any:
        with self.lock:
            runner = next(
                (
                    r
                    for r in self.runners.values()
                    if r.pod["metadata"]["namespace"] == namespace
                    and r.pod["metadata"]["name"] == name
                ),
                None,
            )
        if runner is None:
            return None
        found = next(
            (c for c in [*runner.containers, *runner.init_containers] if c.name == container), None
        )
        if found is None:
            return None
        restart = found.restart_count - 1 if previous else found.restart_count
        return found.log_path(max(restart, 0)), lambda: found.running

    def _delete_pod(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
            )

    def reconcile(self, pod: dict[str, Any], deleted: bool = False) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            runner = self.runners.get(uid)
        if deleted:
            if runner is not None:
                runner.terminate(0)
            return
        terminating = meta.get("deletionTimestamp") is not None
        if runner is None:
            phase = (pod.get("status") or {}).get("phase")
            if terminating:
                self._delete_pod(pod)
            elif phase not in ("Succeeded", "Failed"):
                runner = PodRunner(pod, self.context)
                with self.lock:
                    self.runners[uid] = runner
                log.info("starting pod %s", runner.label)
                runner.start()
            return
        runner.update(pod)
        if terminating and not runner.finished.is_set():
            runner.terminate(meta.get("deletionGracePeriodSeconds"))
        if terminating:
            threading.Thread(target=self._finish_deletion, args=(runner, pod), daemon=True).start()

    def _finish_deletion(self, runner: PodRunner, pod: Mapping[str, Any]) -> None:
        runner.finished.wait()
        self._delete_pod(pod)
        with self.lock:
            self.runners.pop(runner.uid, None)

    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        while not self.stopping.is_set():
            try:
                listing = self.core.list_pod_for_all_namespaces(
                    field_selector=selector, _request_timeout=LIST_TIMEOUT
                )
                seen = set()
                for item in listing.items:
                    pod = self.api.sanitize_for_serialization(item)
                    seen.add(pod["metadata"]["uid"])
                    self.reconcile(pod)
                with self.lock:
                    gone = [r for uid, r in self.runners.items() if uid not in seen]
                for runner in gone:
                    runner.terminate(0)
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=WATCH_SECONDS,
                    # The client's own limit too: an API server that stopped (SIGSTOP, a
                    # dead peer) leaves the stream open and silent, and the agent then
                    # never saw another pod.
                    _request_timeout=WATCH_TIMEOUT,
                )
                for event in stream:
                    if self.stopping.is_set():
                        return
                    pod = self.api.sanitize_for_serialization(event["object"])
                    self.reconcile(pod, deleted=event["type"] == "DELETED")
            except Exception as error:
                if not self.stopping.is_set():
                    log.warning("pod watch interrupted (%s); listing again", error)
                    time.sleep(1)

    def stop_all_pods(self, grace_seconds: float = 5.0) -> None:
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.terminate(min(grace_seconds, runner.grace_seconds))
        for runner in runners:
            runner.finished.wait(grace_seconds + 5)

    def run(self) -> None:
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        cert, key, ca = self.tls
        serve_in_background(make_server(self.log_port, cert, key, ca, self._locate_log))
        self.register()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        threading.Thread(target=self._watch_pods, name="pod-watch", daemon=True).start()
        log.info("node %s ready (pods at %s)", self.node_name, self.pods_dir)
        self.stopping.wait()
        log.info("stopping: terminating pods")
        self.stop_all_pods()
