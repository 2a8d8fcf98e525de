"""`python -m scripts.grafana` (from the repository root): writes the chart's Grafana files."""

from __future__ import annotations

import json
from pathlib import Path

from . import build

FILES = Path(__file__).resolve().parents[2] / "helm" / "gentrain" / "files"


def main() -> None:
    for name, content in build().items():
        path = FILES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
