"""Writes what the contract defines into the CRD file: the blocks between
`# generated: NAME` and `# end generated` are rendered from gentrain_contract.

    python scripts/generate_crd.py          rewrite the CRD (make generate)
    python scripts/generate_crd.py --check  exit 1, naming the block, if the file lags
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gentrain_contract import crd_schema

CRD = Path(__file__).resolve().parents[1] / "crds" / "generativetrainingjobs.gentrain.io.yaml"
BEGIN = re.compile(r"^(?P<indent> *)# generated: (?P<name>[a-z-]+)")
END = "# end generated"


def _flow(value: Any) -> str:
    """A YAML flow value, in the style the rest of the file is written in."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value) if not re.fullmatch(r"[A-Za-z_]+", value) else value
    return str(value)


def hyperparameter_properties() -> list[str]:
    return [f"{name}: {_flow(schema)}" for name, schema in crd_schema.properties().items()]


def hyperparameter_rules() -> list[str]:
    lines = []
    for rule in crd_schema.family_rules():
        lines += [
            f"- rule: {json.dumps(rule['rule'])}",
            f"  message: {json.dumps(rule['message'])}",
            f"  fieldPath: {rule['fieldPath']}",
        ]
    return lines


BLOCKS: dict[str, Callable[[], list[str]]] = {
    "hyperparameter-properties": hyperparameter_properties,
    "hyperparameter-rules": hyperparameter_rules,
}


def render(text: str) -> str:
    """The file with every generated block rendered afresh."""
    out: list[str] = []
    lines = iter(text.splitlines())
    seen = set()
    for line in lines:
        out.append(line)
        begin = BEGIN.match(line)
        if not begin:
            continue
        name, indent = begin["name"], begin["indent"]
        if name not in BLOCKS:
            raise SystemExit(
                f"{CRD.name}: unknown generated block {name!r} (known: {', '.join(BLOCKS)})"
            )
        seen.add(name)
        out += [indent + generated for generated in BLOCKS[name]()]
        for skipped in lines:
            if skipped.strip() == END:
                out.append(skipped)
                break
        else:
            raise SystemExit(f"{CRD.name}: block {name!r} has no '{END}' line")
    if missing := set(BLOCKS) - seen:
        raise SystemExit(
            f"{CRD.name}: no '# generated: NAME' line for {', '.join(sorted(missing))}"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = CRD.read_text()
    wanted = render(text)
    if "--check" in argv:
        if wanted != text:
            print(
                f"{CRD} is not what gentrain_contract defines: run `make generate`", file=sys.stderr
            )
            return 1
        return 0
    CRD.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
