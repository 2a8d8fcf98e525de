"""What a real trainer serves: the exposition of a tiny GAN run's first (and last)
milestone, step 20, for tests of the operator's scrape path."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench.recorder import RecordingTrainer
from gentrain_trainer.loop import Options
from tests.trainer.conftest import tiny


def gan_first_milestone(directory: Path) -> str:
    path = directory / "gan.yaml"
    path.write_text(
        yaml.safe_dump(tiny("gan-ring", training={"max_steps": 20}, checkpoints={"interval": 20}))
    )
    trainer = RecordingTrainer(Options(path, directory / "checkpoints", metrics_port=0))
    trainer.resume()
    trainer.run()
    return trainer.exposition
