"""The studies' commands silence the libraries' warnings while they run (a study's output
is its figures) and give logging back as it was when they return or refuse: a command
called in-process, as the tests call it, must not leave every later logger muted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def warnings_silenced() -> Iterator[None]:
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)
