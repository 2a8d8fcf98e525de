"""`make demo`: a GAN that goes unhealthy on purpose, watched and remediated by the operator.

Uses the local control plane (started here, stopped at the end) unless
GENTRAIN_DEMO_CLUSTER=current, which uses your current kubectl context instead (the
cluster must be able to pull the trainer image; see the README). Writes demo-output/:
summary.json, report.md, losses.png, sample pictures and the operator's log.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-output"
MANIFEST = ROOT / "examples" / "gan-ring-unstable.yaml"
NAMESPACE = "gentrain-demo"
TIMEOUT_SECONDS = 270


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubectl(kubeconfig: Path | None, *args: str, stdin: str | None = None) -> str:
    command = (
        [str(ROOT / ".tools" / "bin" / "kubectl")]
        if (ROOT / ".tools" / "bin" / "kubectl").exists()
        else ["kubectl"]
    )
    if kubeconfig:
        command.append(f"--kubeconfig={kubeconfig}")
    return subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, check=True
    ).stdout


def main() -> int:
    OUT.mkdir(exist_ok=True)
    local = os.environ.get("GENTRAIN_DEMO_CLUSTER", "local") != "current"
    layout = None
    kubeconfig: Path | None = None
    started_cluster = False
    if local:
        from gentrain_localcluster import cluster as localcluster
        from gentrain_localcluster.layout import Layout

        layout = Layout(ROOT / ".cluster", ROOT / ".tools" / "bin")
        if not all(localcluster.status(layout).values()):
            print(
                "== starting the local control plane (etcd, apiserver, controller-manager, scheduler, node agent)"
            )
            localcluster.up(layout)
            started_cluster = True
        kubeconfig = layout.kubeconfig
    operator = None
    try:
        env = {
            **os.environ,
            "GENTRAIN_METRICS_PORT": str(free_port()),
            "GENTRAIN_HEALTH_PORT": str(free_port()),
        }
        if kubeconfig:
            env["KUBECONFIG"] = str(kubeconfig)
        print("== installing the GenerativeTrainingJob CRD and starting the operator")
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kubectl(
            kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/generativetrainingjobs.gentrain.io",
            "--timeout=60s",
        )
        log = (OUT / "operator.log").open("w")
        operator = subprocess.Popen(
            [sys.executable, "-m", "gentrain_operator"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        kubectl(
            kubeconfig,
            "delete",
            "namespace",
            NAMESPACE,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
        )
        kubectl(kubeconfig, "create", "namespace", NAMESPACE)
        manifest = yaml.safe_load(MANIFEST.read_text())
        print(
            f"== applying {MANIFEST.relative_to(ROOT)}: minimax loss, discriminator LR 10x the generator's"
        )
        kubectl(kubeconfig, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(manifest))
        job = watch(kubeconfig, manifest["metadata"]["name"])
        return finish(job, kubeconfig, layout)
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(30)
        if started_cluster and layout is not None:
            from gentrain_localcluster import cluster as localcluster

            print("== stopping the local control plane")
            localcluster.down(layout)


def watch(kubeconfig: Path | None, name: str) -> dict[str, Any]:
    """A live view: a row per change, like `kubectl get gtj -w`, and a line per milestone."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    print(f"{'PHASE':10} {'STEP':>6} {'LOSS':20} {'MODES':>5} {'HEALTH':12} {'ACTIONS':>7} DEVICE")
    last_row, seen_milestones, seen_actions = "", 0, 0
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = json.loads(kubectl(kubeconfig, "get", "gtj", name, "-n", NAMESPACE, "-o", "json"))
        status = job.get("status") or {}
        summary = status.get("summary") or {}
        row = (
            f"{status.get('phase', '-'):10} {status.get('step', 0):>6} {summary.get('loss', '-'):20} "
            f"{summary.get('modes_covered', '-'):>5} {status.get('health', '-'):12} "
            f"{status.get('remediationCount', 0):>7} "
            f"{status.get('device', '-')}"
        )
        milestones = status.get("milestones") or []
        for milestone in milestones[seen_milestones:] if len(milestones) > seen_milestones else []:
            kinds = (
                [f["kind"] for f in status.get("findings") or []]
                if milestone is milestones[-1]
                else []
            )
            print(
                f"   milestone {milestone['step']:>5}: {milestone.get('modes_covered', '?')}/8 modes, "
                f"{milestone.get('high_quality_ratio', 0):.0%} high-quality samples"
                + (f"; findings: {', '.join(kinds)}" if kinds else "")
            )
        seen_milestones = len(milestones)
        for record in (status.get("remediations") or [])[seen_actions:]:
            changes = ", ".join(
                f"{c['field'].rsplit('.', 1)[-1]} {c['from']} -> {c['to']}"
                for c in record["changes"]
            )
            print(
                f"   >> {record['id']} ({record['mode']}): {record['finding']} -> {' + '.join(record['actions'])}"
                + (f" [{changes}]" if changes else "")
            )
        seen_actions = len(status.get("remediations") or [])
        if row != last_row:
            print(row)
            last_row = row
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    return job


def finish(job: dict[str, Any], kubeconfig: Path | None, layout: Any) -> int:
    from gentrain_operator import report

    status = job.get("status") or {}
    data = report.write(job, OUT)
    copied = []
    if layout is not None:
        claim = json.loads(
            kubectl(
                kubeconfig,
                "get",
                "pvc",
                f"{job['metadata']['name']}-checkpoints",
                "-n",
                NAMESPACE,
                "-o",
                "json",
            )
        )
        volume = layout.state_dir / "volumes" / f"pvc-{claim['metadata']['uid']}"
        for picture in sorted(volume.glob("step-*/samples.png")):
            target = OUT / f"samples-{picture.parent.name}.png"
            shutil.copy(picture, target)
            copied.append(target.name)
    data["pictures"] = copied
    (OUT / "summary.json").write_text(json.dumps(data, indent=2, default=str))
    print()
    print(
        f"== {data['job']}: {status.get('phase')}, health {status.get('health')}, "
        f"{len(data['remediations'])} remediation(s)"
    )
    for r in data["remediations"]:
        print(
            f"   {r['id']} at step {r['step']}: {r['finding']} -> {' + '.join(r['actions'])} ({r['outcome']})"
        )
    print(f"   before the first action: {data['before']}")
    print(f"   at the end:              {data['after']}")
    print(
        f"== wrote {OUT.relative_to(ROOT)}/: summary.json, report.md, losses.png, "
        f"{len(copied)} sample pictures, operator.log"
    )
    return 0 if status.get("phase") == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
