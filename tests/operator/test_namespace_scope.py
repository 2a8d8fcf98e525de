"""An operator watching named namespaces (the chart's namespace scope) has no permission
to list namespaces or CRDs cluster-wide; kopf's scan then retried for about a minute
before the operator served its first job (seen on the real node). The scan is off when
every namespace is named, and on when a pattern needs it."""

from __future__ import annotations

import asyncio
import dataclasses

import kopf
import pytest

from gentrain_operator import handlers


@pytest.mark.parametrize(
    ("namespaces", "scanning"),
    [((), True), (("team-a", "team-b"), False), (("team-*",), True)],
)
def test_the_scan_runs_only_where_it_is_needed(
    monkeypatch: pytest.MonkeyPatch, namespaces: tuple[str, ...], scanning: bool
) -> None:
    monkeypatch.setattr(
        handlers, "SETTINGS", dataclasses.replace(handlers.SETTINGS, namespaces=namespaces)
    )
    settings = kopf.OperatorSettings()
    asyncio.run(handlers.configure(settings=settings))
    assert settings.scanning.disabled is not scanning
