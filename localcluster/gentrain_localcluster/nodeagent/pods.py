"""Runs one pod: network, volumes, init containers, containers, restarts, deletion."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import network_hooks
from .containers import Container, LaunchSpec, now_rfc3339
from .environment import ContainerConfigError, KeyReader, container_environment, expand
from .probes import run_probe
from .quantities import parse_quantity
from .volumes import Mount, PodVolumes, VolumeError

log = logging.getLogger("nodeagent.pod")

VOLUME_SYNC_SECONDS = 2.0
TOKEN_REFRESH_SECONDS = 600.0
REPORT_RETRY_SECONDS = 2.0


@dataclass
class PodContext:
    """What every pod runner shares with the agent."""

    pods_dir: Path
    base_env: Mapping[str, str]
    host_ip: str
    read_keys: KeyReader
    make_volumes: Callable[[Mapping[str, Any], Path], PodVolumes]
    patch_status: Callable[[str, str, dict[str, Any]], None]
    pod_network: network_hooks.PodNetwork
    # Paths standing in for the image (the Python environment, the project): kept visible.
    keep_visible: list[str]


def _security(
    pod: Mapping[str, Any], container: Mapping[str, Any]
) -> tuple[int | None, int | None, list[int]]:
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = container.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    groups = list(pod_sc.get("supplementalGroups") or [])
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and uid in (None, 0):
        raise ContainerConfigError(
            "runAsNonRoot is set but runAsUser is not: the node agent cannot read an image's "
            "USER, so set securityContext.runAsUser"
        )
    if uid is not None and gid is None:
        gid = uid
    return uid, gid, groups


class PodRunner(threading.Thread):
    def __init__(self, pod: Mapping[str, Any], context: PodContext) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod = pod
        self.context = context
        self.uid: str = meta["uid"]
        self.directory = context.pods_dir / self.uid
        self.pod_ip: str | None = None
        self.volumes: PodVolumes | None = None
        spec = pod["spec"]
        self.init_containers = [
            Container(c, self.directory / "containers" / c["name"], is_init=True)
            for c in spec.get("initContainers") or []
        ]
        self.containers = [
            Container(c, self.directory / "containers" / c["name"]) for c in spec["containers"]
        ]
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.initialized = not self.init_containers
        self.start_time: str | None = None
        self._terminate = threading.Event()
        self.grace_seconds = float(spec.get("terminationGracePeriodSeconds", 30))
        self.finished = threading.Event()
        self._last_status: dict[str, Any] | None = None
        self._transitions: dict[str, tuple[str, str]] = {}

    # -- called by the agent -------------------------------------------------------
    def terminate(self, grace_seconds: float | None) -> None:
        """Stops the pod with this grace period (the deletion's); a later deletion may
        shorten it, never lengthen it (as a kubelet)."""
        if grace_seconds is not None:
            if self._terminate.is_set():
                grace_seconds = min(grace_seconds, self.grace_seconds)
            self.grace_seconds = grace_seconds
        self._terminate.set()

    def _grace(self) -> float:
        return self.grace_seconds

    def update(self, pod: Mapping[str, Any]) -> None:
        """Keeps labels and annotations current for downward-API volumes."""
        self.pod = pod
        if self.volumes is not None:
            self.volumes.pod = pod

    # -- the pod's life ------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # a bug must not take the whole agent down
            log.exception("pod %s failed in the node agent", self.label)
            self.phase, self.reason, self.message = "Failed", "NodeAgentError", str(error)
            for container in self.containers:
                container.stop(0)
            self._report()
        finally:
            self._report_until_sent()
            self.context.pod_network.release(self.uid)
            self.finished.set()

    @property
    def label(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    def _run(self) -> None:
        self.start_time = now_rfc3339()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pod_ip = self.context.pod_network.setup(self.uid)
        self._report()
        if not self._prepare_volumes():
            self._shut_down()
            return
        if not self._run_init_containers():
            self._shut_down()
            return
        self.initialized = True
        for container in self.containers:
            self._start(container)
        self.phase = "Running"
        self._report()
        self._supervise()
        self._shut_down()

    def _prepare_volumes(self) -> bool:
        self.volumes = self.context.make_volumes(self.pod, self.directory)
        uid, _, _ = (
            _security(self.pod, self.containers[0].spec) if self.containers else (None, None, [])
        )
        fs_group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        while not self._terminate.is_set():
            try:
                self.volumes.prepare(uid, fs_group)
                return True
            except VolumeError as error:
                for container in self.containers:
                    container.state = {
                        "waiting": {"reason": "ContainerCreating", "message": str(error)}
                    }
                self._report()
                self._terminate.wait(2.0)
        return False

    def _launch(self, container: Container) -> LaunchSpec:
        spec = container.spec
        assert self.volumes is not None
        if not spec.get("command"):
            raise ContainerConfigError(
                f"container {container.name!r} has no command: the node agent runs no images, "
                "so the command must be given in the pod spec"
            )
        base = dict(self.context.base_env)
        hostname = str(self.pod["spec"].get("hostname") or self.pod["metadata"]["name"])
        base["HOSTNAME"] = hostname
        pod = {**self.pod, "status": {"podIP": self.pod_ip, "hostIP": self.context.host_ip}}
        env = container_environment(pod, spec, self.context.read_keys, base)
        argv = [expand(a, env) for a in [*spec["command"], *(spec.get("args") or [])]]
        uid, gid, groups = _security(self.pod, spec)
        limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
        mounts = self.volumes.mounts(spec)
        netns = self.context.pod_network.namespace_path(self.uid)
        if netns is not None and self.pod_ip is not None:  # its own network: its own names
            hosts, resolv = network_hooks.write_network_files(
                self.directory,
                self.pod_ip,
                hostname,
                self.pod["spec"].get("subdomain"),
                self.pod["metadata"]["namespace"],
                self.pod["spec"].get("dnsPolicy"),
            )
            mounts = [
                *mounts,
                Mount(hosts, "/etc/hosts", read_only=False),
                Mount(resolv, "/etc/resolv.conf", read_only=False),
            ]
        return LaunchSpec(
            argv=argv,
            env=env,
            mounts=mounts,
            workdir=spec.get("workingDir"),
            netns=netns,
            uid=uid,
            gid=gid,
            groups=groups,
            memory_limit=int(parse_quantity(limit)) if limit is not None else None,
        )

    def _start(self, container: Container) -> bool:
        try:
            launch = self._launch(container)
        except ContainerConfigError as error:
            container.state = {
                "waiting": {"reason": "CreateContainerConfigError", "message": str(error)}
            }
            return False
        container.start(
            launch, expose=[sys.base_prefix, sys.prefix], keep=self.context.keep_visible
        )
        return True

    def _run_init_containers(self) -> bool:
        restart_policy = self.pod["spec"].get("restartPolicy", "Always")
        for container in self.init_containers:
            while True:
                if not self._start(container):
                    self._report()
                    if self._terminate.wait(2.0):
                        return False
                    continue
                self._report()
                while container.running and not self._terminate.is_set():
                    time.sleep(0.2)
                if self._terminate.is_set():
                    container.stop(self._grace)
                    return False
                code = container.reap()
                if code == 0:
                    break
                if restart_policy == "Never":
                    self.phase, self.reason = "Failed", "InitContainerFailed"
                    return False
                container.schedule_restart()
                self._report()
                if self._terminate.wait(max(0.0, container.restart_at - time.monotonic())):
                    return False
                container.restart_count += 1
        return True

    def _supervise(self) -> None:
        restart_policy = self.pod["spec"].get("restartPolicy", "Always")
        last_sync = last_token = time.monotonic()
        while not self._terminate.is_set():
            now = time.monotonic()
            for container in self.containers:
                self._check(container, restart_policy, now)
            done = [c for c in self.containers if "terminated" in c.state]
            if len(done) == len(self.containers):
                codes = [c.state["terminated"]["exitCode"] for c in done]
                self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
                break
            if self.volumes is not None and now - last_sync >= VOLUME_SYNC_SECONDS:
                last_sync = now
                try:
                    self.volumes.refresh()
                    if now - last_token >= TOKEN_REFRESH_SECONDS:
                        last_token = now
                        self.volumes.prepare(None, None)
                except Exception:
                    log.exception("refreshing volumes of %s", self.label)
            self._report()
            self._terminate.wait(0.25)

    def _check(self, container: Container, restart_policy: str, now: float) -> None:
        if container.process is None:
            # Never started (config error) or waiting out a restart back-off.
            if "waiting" in container.state and now >= container.restart_at:
                if container.last_state:
                    container.restart_count += 1
                self._start(container)
            return
        if container.running:
            self._probe(container, now)
            return
        code = container.reap()
        if code is None:
            return
        restart = restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)
        if restart:
            container.process = None
            container.schedule_restart()

    def _probe(self, container: Container, now: float) -> None:
        assert self.pod_ip is not None
        for probe in (container.startup, container.readiness, container.liveness):
            if probe is not container.startup and not container.startup.passing:
                continue
            if probe is container.startup and container.startup.passing:
                continue
            if probe.due(now):
                assert probe.probe is not None
                probe.record(
                    run_probe(probe.probe, self.pod_ip, container.spec, container.exec_context()),
                    now,
                )
        if not container.liveness.passing or (
            container.startup.probe is not None
            and not container.startup.passing
            and container.startup.failures
            >= int(container.startup.probe.get("failureThreshold", 3))
        ):
            log.info(
                "%s: container %s failed its liveness probe; restarting", self.label, container.name
            )
            container.stop(self.grace_seconds)
            container.liveness.passing = True

    def _shut_down(self) -> None:
        for container in [*self.init_containers, *self.containers]:
            if container.running:
                container.stop(self._grace)
            container.reap()
        if self.phase not in ("Succeeded", "Failed"):
            codes = [c.state.get("terminated", {}).get("exitCode", 1) for c in self.containers]
            self.phase = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
        self._report()

    # -- status --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        images = {c["name"]: c.get("image", "") for c in self.pod["spec"]["containers"]}
        init_images = {
            c["name"]: c.get("image", "") for c in self.pod["spec"].get("initContainers") or []
        }
        statuses = [c.status(images[c.name]) for c in self.containers]
        ready = self.phase == "Running" and all(s["ready"] for s in statuses)

        def condition(kind: str, value: bool) -> dict[str, Any]:
            text = "True" if value else "False"
            previous = self._transitions.get(kind)
            if previous is None or previous[0] != text:
                self._transitions[kind] = previous = (text, now_rfc3339())
            return {"type": kind, "status": text, "lastTransitionTime": previous[1]}

        status: dict[str, Any] = {
            "phase": self.phase,
            "hostIP": self.context.host_ip,
            "hostIPs": [{"ip": self.context.host_ip}],
            "startTime": self.start_time,
            "conditions": [
                condition("PodReadyToStartContainers", self.pod_ip is not None),
                condition("Initialized", self.initialized),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": statuses,
        }
        if self.init_containers:
            status["initContainerStatuses"] = [
                c.status(init_images[c.name]) for c in self.init_containers
            ]
        if self.pod_ip is not None:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        return status

    def _report(self) -> bool:
        """Sends the pod's status if it changed; whether the API server has it now."""
        status = self.status()
        # Send only real changes: the API server is shared by all pods.
        if status == self._last_status:
            return True
        try:
            self.context.patch_status(
                self.pod["metadata"]["namespace"], self.pod["metadata"]["name"], status
            )
            self._last_status = status
        except Exception as error:
            log.warning("cannot update status of %s: %s", self.label, error)
            return False
        return True

    def _report_until_sent(self) -> None:
        """The last status of a pod that has finished, retried until the API server takes
        it (or the pod is deleted): nothing else would send it, and a pod whose end was
        never reported stays Running for ever."""
        while not self._report():
            if self._terminate.wait(REPORT_RETRY_SECONDS):
                return
