"""One operator process, many jobs: its CPU and memory, how late its scrapes run, and how
long after the scrape that saw a milestone the job's status (and spec, when it remediates)
is patched.

The API server, the scheduler, the operator and its watches are real; only the trainers
are simulated, because 500 torch processes do not fit on two cores. A node that exists
only in the API server (`gentrain-scale-sim`, tainted so nothing else lands there) takes
the trainer pods; this script plays its kubelet: it marks each pod Running with its own
loopback address (127.1.x.y), and one HTTP server answers every address with the
exposition a real trainer produced at its milestones (recorded at start, from a real
minimax GAN run that the operator remediates), its live step advancing with time.

    python -m bench.operator_scale [--jobs 500] [--milestone-seconds 60] [--window 240]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client, config, watch

from bench.recorder import CONFIGS, merged, run
from gentrain_operator import names

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "gentrain-scale"
SIM_NODE = "gentrain-scale-sim"
TAINT_KEY = "gentrain.io/simulated"
SCRAPE_SECONDS = 15
STEPS_PER_MILESTONE = 250
PROC_CLOCK = os.sysconf("SC_CLK_TCK")


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


class StatusWatcher:
    """When each job's status first showed each milestone step, as seen by a watch."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.seen: dict[tuple[str, int], float] = {}
        self.spec_patches: dict[str, list[float]] = {}
        self.phases: dict[str, str] = {}
        self.generation: dict[str, int] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        keep_watching(self._watch_jobs, "status watcher", self.stop)

    def _watch_jobs(self) -> None:
        stream = watch.Watch()
        for event in stream.stream(
            self.custom.list_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            NAMESPACE,
            names.PLURAL,
            timeout_seconds=60,
        ):
            job = event["object"]
            now = time.time()
            name = job["metadata"]["name"]
            status = job.get("status") or {}
            self.phases[name] = status.get("phase", "")
            if status.get("checkpointStep") is not None:
                self.seen.setdefault((name, int(status["checkpointStep"])), now)
            generation = int(job["metadata"].get("generation", 1))
            if generation > self.generation.get(name, 1):
                self.spec_patches.setdefault(name, []).append(now)
            self.generation[name] = generation


def job_manifest(name: str) -> dict[str, Any]:
    manifest = yaml.safe_load((ROOT / "examples" / "gan-ring-unstable.yaml").read_text())
    manifest["metadata"] = {"name": name, "namespace": NAMESPACE}
    spec = manifest["spec"]
    spec["checkpoints"] = {"interval": STEPS_PER_MILESTONE, "storage": "EmptyDir"}
    spec["monitoring"] = {"scrapeIntervalSeconds": SCRAPE_SECONDS}
    spec["resources"] = {"gpus": 0}
    spec["scheduling"] = {
        "nodeSelector": {TAINT_KEY: "true"},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    return manifest


def install_crd(kubeconfig: Path) -> None:
    local = ROOT / ".tools" / "bin" / "kubectl"
    kubectl = [str(local) if local.exists() else "kubectl", f"--kubeconfig={kubeconfig}"]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Established",
            f"crd/{names.PLURAL}.{names.GROUP}",
            "--timeout=60s",
        ],
        check=True,
        capture_output=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / PROC_CLOCK


def memory_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, kubeconfig: Path) -> None:
    started = time.perf_counter()
    texts = record_expositions()  # the trainer sets signal handlers: the main thread
    print(f"recorded {len(texts)} milestone expositions in {time.perf_counter() - started:.0f} s")
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    install_crd(kubeconfig)
    await asyncio.to_thread(_clean_up, api)  # what an interrupted run left
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    jobs = [f"scale-{i:04d}" for i in range(args.jobs)]
    address_of = {job: pod_ip(i) for i, job in enumerate(jobs)}
    trainers = Trainers(texts, args.milestone_seconds)
    port = free_port()
    runner = web.AppRunner(web.Application())
    runner.app.router.add_get("/metrics", trainers.handle)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port, backlog=1024).start()
    kubelet = SimulatedKubelet(api, address_of)
    kubelet.register()
    watcher = StatusWatcher(api)

    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "GENTRAIN_NAMESPACE": NAMESPACE,
        "GENTRAIN_TRAINER_METRICS_PORT": str(port),
        "GENTRAIN_METRICS_PORT": str(free_port()),
        "GENTRAIN_HEALTH_PORT": str(free_port()),
    }
    log_path = ROOT / ".cache" / "operator-scale.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "gentrain_operator"], env=env, stdout=log, stderr=log
        )
    try:
        custom = client.CustomObjectsApi(api)
        created = time.time()
        for job in jobs:
            await asyncio.to_thread(
                custom.create_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                NAMESPACE,
                names.PLURAL,
                job_manifest(job),
            )
        print(f"created {len(jobs)} jobs in {time.time() - created:.1f} s")
        while sum(1 for job in jobs if watcher.phases.get(job) == "Running") < len(jobs):
            if time.time() - created > 600:
                raise SystemExit(
                    f"only {sum(1 for j in jobs if watcher.phases.get(j) == 'Running')} "
                    f"of {len(jobs)} jobs Running after 600 s; see {log_path}"
                )
            await asyncio.sleep(1)
        print(f"all {len(jobs)} jobs Running {time.time() - created:.1f} s after the first create")

        window_start = time.time() + SCRAPE_SECONDS  # a full scrape round before milestones
        for i, job in enumerate(jobs):
            trainer = SimulatedTrainer(job, window_start + args.milestone_seconds * i / len(jobs))
            trainers.by_ip[address_of[job]] = trainer
        cpu_before, wall_before = cpu_seconds(operator.pid), time.time()
        rss_samples: list[float] = []
        while time.time() < window_start + args.window:
            await asyncio.sleep(5)
            rss_samples.append(memory_mib(operator.pid, "VmRSS"))
            if operator.poll() is not None:
                raise SystemExit(f"the operator exited ({operator.returncode}); see {log_path}")
        cpu = (cpu_seconds(operator.pid) - cpu_before) / (time.time() - wall_before)
        await asyncio.sleep(SCRAPE_SECONDS + 5)  # let the last milestones land
        report(trainers, watcher, window_start, args, cpu, rss_samples, operator.pid)
    finally:
        operator.terminate()
        operator.wait(30)
        kubelet.stop.set()
        watcher.stop.set()
        await runner.cleanup()
        await asyncio.to_thread(_clean_up, api)


def _clean_up(api: client.ApiClient) -> None:
    """Deletes the namespace, the jobs' finalizers first: the operator is gone already."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    try:
        listed = custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, NAMESPACE, names.PLURAL
        )
    except client.ApiException as error:
        if error.status != 404:
            raise
        listed = {"items": []}
    for job in listed["items"]:
        custom.patch_namespaced_custom_object(
            names.GROUP,
            names.VERSION,
            NAMESPACE,
            names.PLURAL,
            job["metadata"]["name"],
            {"metadata": {"finalizers": None}},
        )
    # No kubelet is left to finish graceful deletions: the pods go at once.
    core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
    for delete in (lambda: core.delete_namespace(NAMESPACE), lambda: core.delete_node(SIM_NODE)):
        try:
            delete()
        except client.ApiException as error:
            if error.status != 404:
                raise
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            core.read_namespace(NAMESPACE)
        except client.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(1)
    raise SystemExit(f"namespace {NAMESPACE} still terminating after 120 s")


def report(
    trainers: Trainers,
    watcher: StatusWatcher,
    window_start: float,
    args: argparse.Namespace,
    cpu: float,
    rss_samples: list[float],
    pid: int,
) -> None:
    gaps: list[float] = []
    latencies: list[float] = []
    missing = 0
    window_end = window_start + args.window
    for trainer in trainers.by_ip.values():
        scrapes = [t for t in trainer.scrapes if window_start <= t <= window_end]
        gaps.extend(b - a - SCRAPE_SECONDS for a, b in itertools.pairwise(scrapes))
        for step, served in trainer.served.items():
            if served > window_end:
                continue
            seen = watcher.seen.get((trainer.job, step))
            if seen is None:
                missing += 1
            else:
                latencies.append(seen - served)
    patches = sum(len(v) for v in watcher.spec_patches.values())
    print(f"operator CPU over the {args.window:.0f} s window: {cpu:.2f} cores (goal < 0.5)")
    print(
        f"operator memory: {statistics.median(rss_samples):.0f} MiB median RSS, "
        f"{memory_mib(pid, 'VmHWM'):.0f} MiB peak (goal < 300)"
    )
    print(
        f"scrape lag past the {SCRAPE_SECONDS} s interval: p50 {percentile(gaps, 0.5):.2f} s, "
        f"p99 {percentile(gaps, 0.99):.2f} s, max {max(gaps, default=float('nan')):.2f} s "
        f"({len(gaps)} intervals)"
    )
    print(
        f"milestone served -> status patched: p50 {percentile(latencies, 0.5):.2f} s, "
        f"p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies, default=float('nan')):.2f} s "
        f"({len(latencies)} milestones, {missing} not seen; goal <= 2 s); "
        f"{patches} remediation patches of the spec"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--milestone-seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=240.0)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    from gentrain_localcluster import cluster as localcluster
    from gentrain_localcluster.layout import Layout

    kubeconfig_env = os.environ.get("KUBECONFIG")
    if os.environ.get("GENTRAIN_TEST_CLUSTER") == "kubeconfig" and kubeconfig_env:
        asyncio.run(measure(args, Path(kubeconfig_env)))
        return
    layout = Layout(ROOT / ".cluster", ROOT / ".tools" / "bin")
    started = not all(localcluster.status(layout).values())
    if started:
        localcluster.up(layout)
    try:
        asyncio.run(measure(args, layout.kubeconfig))
    finally:
        if started:
            localcluster.down(layout)


if __name__ == "__main__":
    main()
