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
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client, config, watch

from bench import machine
from bench.simulated import (
    NAMESPACE,
    SIM_NODE,
    STEPS_PER_MILESTONE,
    TAINT_KEY,
    SimulatedKubelet,
    SimulatedTrainer,
    Trainers,
    keep_watching,
    pod_ip,
    record_expositions,
)
from gentrain_operator import names

ROOT = Path(__file__).resolve().parents[1]
SCRAPE_SECONDS = 15
PROC_CLOCK = os.sysconf("SC_CLK_TCK")


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
    print(f"measured on: {machine.line()}")
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
