"""The packages as an image installs them (a built wheel, not the repository's editable
install): every file a package holds in the repository is in its wheel. A wheel without
digits.npz made every `*-digits` example fail in the trainer image, while every test here
passed on the editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "contract": "gentrain_contract",
    "sdk": "gentrain_sdk",
    "trainer_image": "gentrain_trainer",
    "operator": "gentrain_operator",
}


def tracked(project: str, package: str) -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", package],
        cwd=REPO / project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name for name in listed if not name.endswith(".pyc")}


@pytest.mark.parametrize("project", sorted(PACKAGES))
def test_the_wheel_holds_every_file_of_the_package(project: str, tmp_path: Path) -> None:
    package = PACKAGES[project]
    expected = tracked(project, package)
    assert expected, f"git lists no files under {project}/{package}"
    # Built from a copy: setuptools reuses a build/ folder it finds, which would hide a
    # file the configuration no longer ships behind one an earlier build put there.
    source = tmp_path / "source"
    shutil.copytree(
        REPO / project, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected - shipped)
    assert not missing, f"{wheel.name} lacks {missing}: list them in {project}/pyproject.toml"
