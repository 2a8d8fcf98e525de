"""gentrain's one version: `VERSION`, written into every place that must carry it.

    python scripts/set_version.py 0.2.0    # writes VERSION, then every place below
    python scripts/set_version.py          # writes VERSION's version into every place

The three packages, the trainer and the local cluster's pyproject.toml (and the exact pins
between them: a wheel of one version needs its siblings of the same), the chart's version
and appVersion (the operator image's default tag), the chart's default trainer image and
the operator's own default for it. tests/packaging/test_version.py checks that they agree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_FILE = ROOT / "VERSION"
SEMVER = r"\d+\.\d+\.\d+(?:[-.][0-9A-Za-z.]+)?"
# (file, pattern whose group 1 is the version): every place that carries it.
PLACES: tuple[tuple[str, str], ...] = (
    *(
        (f"{p}/pyproject.toml", rf'(?m)^version = "({SEMVER})"$')
        for p in ("contract", "sdk", "operator", "trainer_image", "localcluster")
    ),
    *(
        (f"{p}/pyproject.toml", rf'"gentrain-(?:contract|sdk)(?:\[[a-z,]+\])?==({SEMVER})"')
        for p in ("sdk", "operator", "trainer_image")
    ),
    ("helm/gentrain/Chart.yaml", rf"(?m)^version: ({SEMVER})$"),
    ("helm/gentrain/Chart.yaml", rf'(?m)^appVersion: "({SEMVER})"$'),
    ("helm/gentrain/values.yaml", rf"(?m)^  image: ghcr\.io/gentrain/trainer:({SEMVER})$"),
    ("operator/gentrain_operator/settings.py", rf'"ghcr\.io/gentrain/trainer:({SEMVER})"'),
)


def current() -> str:
    return VERSION_FILE.read_text().strip()


def found(root: Path = ROOT) -> list[tuple[str, str]]:
    """(file, version) for every occurrence of every place; a place with none is an error."""
    seen = []
    for name, pattern in PLACES:
        matches = re.findall(pattern, (root / name).read_text())
        if not matches:
            raise LookupError(f"{name}: no version where {pattern!r} expects one")
        seen += [(name, m) for m in matches]
    return seen


def write(version: str, root: Path = ROOT) -> None:
    if not re.fullmatch(SEMVER, version):
        raise ValueError(f"version: expected MAJOR.MINOR.PATCH, got {version!r}")
    (root / "VERSION").write_text(version + "\n")
    for name, pattern in PLACES:
        path = root / name
        text = path.read_text()
        path.write_text(re.sub(pattern, lambda m: m.group(0).replace(m.group(1), version), text))


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else current())
    print(f"gentrain {current()}: {len(found())} places written")
