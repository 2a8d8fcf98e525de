"""Fuzzing the parsers of untrusted input (tests/fuzz/targets.py) with atheris.

Every input that once crashed a target is replayed (tests/fuzz/regressions/<target>/),
and each target is fuzzed for a bounded time from real seeds: a GAN trainer's exposition
at its first milestone, and the trainer's shipped configurations.

In `make test` the fuzzing is replayable: a fixed seed and a fixed number of runs, so the
suite explores the same inputs on every machine and cannot turn red at random (a CI run
once found a new crash by chance; it is under regressions/ now). Exploring is `make fuzz`:
GENTRAIN_FUZZ_SECONDS each, a fresh random seed every time."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS
from tests.support.expositions import gan_first_milestone
from tests.trainer.conftest import CONFIGS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REGRESSIONS = HERE / "regressions"
EXPLORE_SECONDS = int(os.environ.get("GENTRAIN_FUZZ_SECONDS", "0"))
REPLAYABLE = ["-seed=20261202", "-runs=1200"]


@pytest.mark.parametrize(
    "target,found",
    [(d.name, f.name) for d in sorted(REGRESSIONS.iterdir()) for f in sorted(d.iterdir())],
)
def test_every_input_that_once_crashed_a_parser_is_handled(target: str, found: str) -> None:
    TARGETS[target]((REGRESSIONS / target / found).read_bytes())


def seed_exposition(corpus: Path) -> None:
    (corpus / "gan-first-milestone").write_text(gan_first_milestone(corpus.parent))


def seed_trainer_config(corpus: Path) -> None:
    for shipped in CONFIGS.glob("*.yaml"):
        shutil.copy(shipped, corpus / shipped.name)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzzing_finds_no_crash(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    {"exposition": seed_exposition, "trainer_config": seed_trainer_config}[target](corpus)
    for found in (REGRESSIONS / target).iterdir():
        shutil.copy(found, corpus / found.name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            *([f"-max_total_time={EXPLORE_SECONDS}"] if EXPLORE_SECONDS else REPLAYABLE),
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-max_len=32768",
            str(corpus),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=EXPLORE_SECONDS + 300,
    )
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    inputs = [base64.b64encode(c.read_bytes()).decode() for c in crashes]
    assert result.returncode == 0 and not crashes, (
        f"{target}: add each input (base64) under tests/fuzz/regressions/{target}/ and fix "
        f"the parser: {inputs}\n{result.stderr[-3000:]}"
    )
    runs = [line for line in result.stderr.splitlines() if line.startswith("Done ")]
    print(f"{target}: {runs[-1] if runs else result.stderr[-300:]}")
