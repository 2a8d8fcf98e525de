"""The closed loop in-process: the real trainer, and at each of its milestones the
operator's own `milestones.process` (diagnosis + policy), whose spec changes are rendered
into the trainer's config file exactly as the operator renders its ConfigMap. The trainer
takes them up as soon as the file changes, as it does in a pod (there seconds later: the
scrape, the patch and the ConfigMap's sync). No cluster: fast enough to run
the efficacy study over many seeds.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.recorder import RecordingTrainer
from gentrain_operator.milestones import process
from gentrain_operator.trainer_config import render_job
from gentrain_trainer.loop import Options, Trainer


@dataclass
class LoopResult:
    milestones: list[dict[str, Any]] = field(default_factory=list)
    remediations: list[dict[str, Any]] = field(default_factory=list)
    findings: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    threads: int = 0  # torch threads the trainer ran with


def run(job_spec: dict[str, Any], directory: Path | None = None) -> LoopResult:
    """Trains `job_spec` (a GenerativeTrainingJob spec) with the operator's decisions."""
    job: dict[str, Any] = {
        "metadata": {"name": "bench", "namespace": "bench", "generation": 1},
        "spec": copy.deepcopy(job_spec),
        "status": {},
    }
    result = LoopResult()
    with tempfile.TemporaryDirectory() as tmp:
        root = directory or Path(tmp)
        config_path = root / "config.yaml"

        def write_config() -> None:
            config_path.write_text(yaml.safe_dump(render_job(job)))

        def on_milestone(record: dict[str, Any], trainer: Trainer) -> None:
            outcome = process(record, job, now=time.time())
            job["status"].update(outcome.status)
            result.milestones.append(record)
            result.findings.append([f.kind for f in outcome.findings if f.severity != "info"])
            if outcome.record is not None:
                result.remediations.append(outcome.record)
            if outcome.spec is not None:
                job["spec"] = outcome.spec
                job["metadata"]["generation"] += 1
                write_config()

        write_config()
        trainer = RecordingTrainer(Options(config_path, root / "checkpoints", metrics_port=0))
        trainer.on_milestone = on_milestone
        trainer.resume()
        started = time.perf_counter()
        trainer.run()
        result.seconds = time.perf_counter() - started
        result.steps = trainer.step
        result.threads = trainer.threads
        # The records as the job's status ends up holding them: outcomes, searches.
        final = {r["id"]: r for r in job["status"].get("remediations") or []}
        result.remediations = [final.get(r["id"], r) for r in result.remediations]
    return result
