"""The simulated half of the operator-scale benchmark: trainers that serve recorded
expositions, and the kubelet of a node that exists only in the API server.

One HTTP server answers as every trainer, told apart by the loopback address (127.1.x.y)
the scrape connected to; the kubelet marks each trainer pod Running with its address.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client, watch

from bench.recorder import CONFIGS, merged, run

NAMESPACE = "gentrain-scale"
SIM_NODE = "gentrain-scale-sim"
TAINT_KEY = "gentrain.io/simulated"
STEPS_PER_MILESTONE = 250


def record_expositions() -> list[str]:
    """The texts a real trainer served at each milestone of a minimax GAN run."""
    base = yaml.safe_load((CONFIGS / "gan-ring.yaml").read_text())
    overrides = {
        "training": {"max_steps": 6 * STEPS_PER_MILESTONE},
        "checkpoints": {"interval": STEPS_PER_MILESTONE},
        "hyperparameters": {"loss": "minimax", "lr_g": 1e-4, "lr_d": 1e-3},
        "data": {"radius": 2.0, "sigma": 0.02},
    }
    texts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        run(
            merged(base, overrides),
            lambda _, trainer: texts.append(getattr(trainer, "exposition")),  # noqa: B009
            Path(tmp),
        )
    return texts


def _without_milestone(text: str) -> str:
    """What a scrape sees before the first milestone: the live metrics only."""
    milestone = re.compile(r"^(# (HELP|TYPE) )?gentrain_(milestone_|checkpoint_step)")
    return "\n".join(line for line in text.splitlines() if not milestone.match(line)) + "\n"


def _with_values(text: str, step: int, milestone_time: float) -> str:
    text = re.sub(r"(?m)^gentrain_step (\S+)$", f"gentrain_step {float(step)}", text)
    return re.sub(
        r"(?m)^gentrain_milestone_timestamp_seconds (\S+)$",
        f"gentrain_milestone_timestamp_seconds {milestone_time}",
        text,
    )


@dataclass
class SimulatedTrainer:
    job: str
    first_milestone_at: float  # monotonic-free wall clock; milestone k is due k periods later
    scrapes: list[float] = field(default_factory=list)
    served: dict[int, float] = field(default_factory=dict)  # milestone step -> first served


class Trainers:
    """One HTTP server answering as every simulated trainer, told apart by the address the
    scrape connected to."""

    def __init__(self, texts: list[str], period: float) -> None:
        self.texts, self.period = texts, period
        self.before_first = _without_milestone(texts[0])
        self.by_ip: dict[str, SimulatedTrainer] = {}

    def text_for(self, trainer: SimulatedTrainer, now: float) -> str:
        elapsed = now - trainer.first_milestone_at
        live_step = max(0, int(STEPS_PER_MILESTONE * (1 + elapsed / self.period)))
        index = min(int(elapsed // self.period), len(self.texts) - 1) if elapsed >= 0 else -1
        if index < 0:
            return _with_values(self.before_first, live_step, 0.0)
        step = STEPS_PER_MILESTONE * (index + 1)
        trainer.served.setdefault(step, now)
        return _with_values(
            self.texts[index], live_step, trainer.first_milestone_at + index * self.period
        )

    async def handle(self, request: web.Request) -> web.Response:
        address = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        trainer = self.by_ip.get(address)
        if trainer is None:
            return web.Response(status=404, text=f"no simulated trainer at {address}\n")
        now = time.time()
        trainer.scrapes.append(now)
        return web.Response(
            text=self.text_for(trainer, now), content_type="text/plain", charset="utf-8"
        )


def pod_ip(index: int) -> str:
    return f"127.1.{index // 200}.{index % 200 + 1}"


def keep_watching(watch_once: Any, who: str, stop: threading.Event) -> None:
    """Runs a watch again whenever the API server ends its stream, until stopped."""
    while not stop.is_set():
        try:
            watch_once()
        except Exception as error:
            if not stop.is_set():
                print(f"{who}: watch ended ({error}); watching again")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedKubelet:
    """Registers the simulated node, keeps its lease fresh, and runs its pods: marks them
    Running with the job's address, and finishes their deletion."""

    def __init__(self, api: client.ApiClient, address_of: dict[str, str]) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.address_of = address_of  # job name -> pod IP
        self.running_at: dict[str, float] = {}
        self.stop = threading.Event()

    def register(self) -> None:
        from gentrain_localcluster.nodeagent.node import lease_manifest, node_manifest, node_status

        manifest = node_manifest(SIM_NODE, 0)
        manifest["metadata"]["labels"][TAINT_KEY] = "true"
        manifest["spec"] = {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]}
        try:
            self.core.delete_node(SIM_NODE)
            time.sleep(1)
        except client.ApiException as error:
            if error.status != 404:
                raise
        node = self.core.create_node(manifest)
        status = node_status("127.0.0.1", 0, 10250, _now())
        status["capacity"] = status["allocatable"] = {
            "cpu": "10000",
            "memory": "100Ti",
            "pods": "5000",
            "ephemeral-storage": "100Ti",
        }
        self.core.patch_node_status(SIM_NODE, {"status": status})
        lease = lease_manifest(SIM_NODE, node.metadata.uid)
        try:
            self.coordination.create_namespaced_lease("kube-node-lease", lease)
        except client.ApiException as error:
            if error.status != 409:
                raise
        threading.Thread(target=self._heartbeat, daemon=True).start()
        threading.Thread(target=self._pods, daemon=True).start()

    def _heartbeat(self) -> None:
        while not self.stop.wait(10):
            renew = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.coordination.patch_namespaced_lease(
                SIM_NODE, "kube-node-lease", {"spec": {"renewTime": renew}}
            )

    def _pods(self) -> None:
        keep_watching(self._watch_pods, "simulated kubelet", self.stop)

    def _watch_pods(self) -> None:
        stream = watch.Watch()
        for event in stream.stream(
            self.core.list_namespaced_pod,
            NAMESPACE,
            field_selector=f"spec.nodeName={SIM_NODE}",
            timeout_seconds=60,
        ):
            pod = event["object"]
            if event["type"] == "DELETED":
                continue
            if pod.metadata.deletion_timestamp:
                self._delete(pod.metadata.name)
            elif pod.status.phase == "Pending":
                self._start(pod)

    def _delete(self, name: str) -> None:
        try:
            self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def _start(self, pod: Any) -> None:
        job = pod.metadata.labels["gentrain.io/job"]
        now = _now()
        ready = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        container = pod.spec.containers[0]
        status = {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": self.address_of[job],
            "podIPs": [{"ip": self.address_of[job]}],
            "startTime": now,
            "conditions": ready,
            "containerStatuses": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        }
        self.core.patch_namespaced_pod_status(pod.metadata.name, NAMESPACE, {"status": status})
        self.running_at.setdefault(job, time.time())
