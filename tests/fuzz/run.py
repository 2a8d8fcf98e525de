"""`python -m tests.fuzz.run TARGET [libFuzzer options] [CORPUS_DIR ...]`: fuzzes one
target of tests/fuzz/targets.py with atheris (coverage-guided, libFuzzer's engine). A crash
prints the input and leaves it as `crash-<sha1>` in the working directory; turn it into a
file under tests/fuzz/regressions/<target>/, where the suite replays every one."""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(
    include=["gentrain_operator", "gentrain_trainer", "prometheus_client", "yaml"]
):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.run {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    # The refusals' warnings, millions of them. Here only: the suite imports the targets
    # too, and its log-capturing tests must keep their logging.
    logging.disable(logging.CRITICAL)
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
