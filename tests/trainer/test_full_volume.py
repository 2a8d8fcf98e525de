"""A full checkpoint volume, on a real full filesystem (a small tmpfs, mounted as root).

Before: torch's error named only a stream position ("unexpected pos 576 vs 534"), the
partial checkpoint stayed on the volume, the trainer crashed, and the operator retried it
until BackoffLimitExceeded; a `commands-applied.json` truncated on such a volume (written
in place by older trainers) stopped every later start as an invalid configuration."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from gentrain_trainer.__main__ import VOLUME_FULL_EXIT, main
from gentrain_trainer.checkpoints import CheckpointStore, VolumeFullError
from tests.trainer.conftest import MakeTrainer, tiny


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(volume)], check=True)
    try:
        yield volume
    finally:
        subprocess.run(["umount", str(volume)], check=True)


def test_a_checkpoint_that_does_not_fit_leaves_the_earlier_ones_and_no_debris(
    small_volume: Path,
) -> None:
    store = CheckpointStore(small_volume, keep=3)
    store.save(100, {"x": torch.zeros(16)}, {})
    with pytest.raises(VolumeFullError) as raised:
        store.save(200, {"x": torch.zeros(1 << 18)}, {})  # 1 MiB into 512 KiB
    assert "checkpoint volume full: no room for step 200" in str(raised.value.strerror)
    assert "the checkpoints kept are 100" in str(raised.value.strerror)
    assert store.steps() == [100]
    assert int(store.load(100)["x"].sum()) == 0
    assert sorted(p.name for p in small_volume.iterdir()) == ["step-100"]


def test_the_trainer_stops_with_its_own_exit_code_and_says_why(
    small_volume: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            tiny(
                "gan-ring",
                training={"max_steps": 100},
                checkpoints={"interval": 50},
                model={"hidden": 256, "layers": 3},  # ~2 MB of weights and optimiser state
            )
        )
    )
    message = tmp_path / "termination-log"
    argv = ["--config", str(config), "--checkpoint-dir", str(small_volume), "--metrics-port", "0"]
    code = main([*argv, "--no-eval", "--termination-log", str(message)])
    assert code == VOLUME_FULL_EXIT
    assert message.read_text().startswith("checkpoint volume full: no room for step 50")
    assert not [p.name for p in small_volume.iterdir() if p.name.startswith(".tmp")]


def test_a_damaged_applied_list_counts_the_configured_commands_as_applied(
    make_trainer: MakeTrainer,
) -> None:
    config = tiny(
        "gan-ring",
        training={"max_steps": 100},
        commands=[{"id": "r1-0", "action": "rollback", "step": 0}],
    )
    first = make_trainer(config, name="damaged", evaluate=False)
    assert first.applied.path is not None
    first.applied.path.write_text('["r1-0", "r2')  # cut short by a full volume
    again = make_trainer(config, name="damaged", evaluate=False)
    assert again.applied.ids == {"r1-0"}  # not applied a second time, and the run starts
