"""Runs the real trainer in-process and records what the operator would read at each
milestone: the exposition text is rendered by prometheus_client and parsed back by the
operator's own parser. Used to record the diagnosis tests' inputs and by the efficacy
study.

    python -m bench.recorder NAME [trainer config overrides as YAML]  -> tests/operator/recordings/NAME.json
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from gentrain_operator.snapshot import milestone, parse
from gentrain_trainer.loop import Options, Trainer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "trainer_image" / "gentrain_trainer" / "configs"
RECORDINGS = ROOT / "tests" / "operator" / "recordings"


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overrides.items():
        result[key] = merged(result.get(key) or {}, value) if isinstance(value, dict) else value
    return result


class RecordingTrainer(Trainer):
    """A trainer whose milestones are handed to `on_milestone` as the operator sees them."""

    on_milestone: Callable[[dict[str, Any], Trainer], None] | None = None
    exposition = ""  # the whole text a scrape saw at the latest milestone

    def milestone(self) -> None:
        super().milestone()
        text = self.exposition = generate_latest(self.registry).decode()
        record = milestone(parse(text, time.time()))
        if record is not None and self.on_milestone is not None:
            self.on_milestone(record, self)


def run(
    config: dict[str, Any], on_milestone: Callable[[dict[str, Any], Trainer], None], directory: Path
) -> Trainer:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer = RecordingTrainer(Options(path, directory / "checkpoints", metrics_port=0))
    trainer.on_milestone = on_milestone
    trainer.resume()
    trainer.run()
    return trainer


def record(base: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    config = merged(yaml.safe_load((CONFIGS / f"{base}.yaml").read_text()), overrides)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        run(config, lambda r, _: records.append(r), Path(tmp))
    return records


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    name, base = sys.argv[1], sys.argv[2]
    overrides = yaml.safe_load(sys.argv[3]) if len(sys.argv) > 3 else {}
    records = record(base, overrides or {})
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    out = RECORDINGS / f"{name}.json"
    out.write_text(
        json.dumps({"base": base, "overrides": overrides, "milestones": records}, indent=1)
    )
    print(f"{out}: {len(records)} milestones")


if __name__ == "__main__":
    main()
