"""One version: every place that carries gentrain's version agrees with VERSION, and
scripts/set_version.py moves them all at once."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.support.kube import REPO

_spec = importlib.util.spec_from_file_location("set_version", REPO / "scripts" / "set_version.py")
assert _spec is not None and _spec.loader is not None
set_version = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_version)


def test_every_place_carries_the_version_of_the_version_file() -> None:
    places = set_version.found()
    assert len(places) >= len(set_version.PLACES)
    wrong = [(name, v) for name, v in places if v != set_version.current()]
    assert not wrong, f"not at VERSION {set_version.current()}: {wrong}; run scripts/set_version.py"


def test_setting_a_version_moves_every_place(tmp_path: Path) -> None:
    for name in {"VERSION", *(name for name, _ in set_version.PLACES)}:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(set_version.ROOT / name, tmp_path / name)
    set_version.write("0.2.0", tmp_path)
    assert {v for _, v in set_version.found(tmp_path)} == {"0.2.0"}
    with pytest.raises(ValueError, match="version: expected MAJOR"):
        set_version.write("next", tmp_path)
