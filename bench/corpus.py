"""Text corpora with corrupt stretches, for the zoo's loss-spike cases (PaLM's case: a
corpus read in order whose bad stretches arrive as consecutive batches).

A case names its corpus (`corpus:` in its YAML): a source text, and stretches of it
overwritten with garbage — random bytes (a binary blob in a text crawl) or one short
string repeated (boilerplate). The healthy reference trains on the same source clean.
Stretches overwrite, never insert, and lie in the first 90% (the trainer's training
part), so both corpora hold the same validation text and their losses compare.
"""

from __future__ import annotations

import hashlib
import json
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gentrain_trainer.datasets.text import TRAINING_PART, pydoc_text

KINDS = ("random", "repeat")
REPEATED = b"<div class='ad'></div>\n"


@dataclass(frozen=True)
class Stretch:
    at: float  # where it starts, as a fraction of the corpus
    length: int  # bytes
    kind: str


def stdlib_source(limit: int) -> bytes:
    """Python code: the standard library's top-level modules, in name order."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    text = b"".join(p.read_bytes() for p in sorted(folder.glob("*.py")))
    return text[:limit]


def source(spec: dict[str, Any]) -> bytes:
    name = spec.get("source", "pydoc")
    if name == "pydoc":
        return pydoc_text()
    if name == "stdlib":
        return stdlib_source(int(spec.get("bytes", 2_000_000)))
    raise ValueError(f"corpus.source: {name!r} is not pydoc or stdlib")


def stretches(spec: dict[str, Any]) -> list[Stretch]:
    """Each entry of `corrupt`: where, how long, what garbage; `count` stretches alike,
    `every` (a fraction of the corpus) apart, for a bad region rather than one blob."""
    found = [
        Stretch(
            float(s["at"]) + i * float(s.get("every", 0)), int(s["bytes"]), s.get("kind", "random")
        )
        for s in spec["corrupt"]
        for i in range(int(s.get("count", 1)))
    ]
    for s in found:
        if s.kind not in KINDS:
            raise ValueError(f"corpus.corrupt.kind: {s.kind!r} is not one of {', '.join(KINDS)}")
    return found


def corrupted(text: bytes, found: list[Stretch]) -> bytes:
    data = bytearray(text)
    garbage = random.Random(0)  # the same garbage for every seed of a case
    for s in found:
        start = int(s.at * len(data))
        if start + s.length > TRAINING_PART * len(data):
            raise ValueError(f"corpus.corrupt: the stretch at {s.at} runs into the validation part")
        if s.kind == "random":
            blob = bytes(garbage.getrandbits(8) for _ in range(s.length))
        else:
            blob = (REPEATED * (s.length // len(REPEATED) + 1))[: s.length]
        data[start : start + s.length] = blob
    return bytes(data)


def write(spec: dict[str, Any], directory: Path, clean: bool) -> Path:
    """The corpus file (clean, or with its stretches corrupt), written once per content."""
    text = source(spec)
    if not clean:
        text = corrupted(text, stretches(spec))
    name = hashlib.sha256(json.dumps(spec, sort_keys=True).encode() + bytes([clean])).hexdigest()
    path = directory / f"corpus-{name[:16]}.txt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    return path
