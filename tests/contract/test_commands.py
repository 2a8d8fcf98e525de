"""spec.commands as a program reads them: every bad entry refused by its field, in the
same words for the built-in trainer (which refuses its whole starting file) and
gentrain-sdk (which keeps the good entries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gentrain_contract import commands
from gentrain_contract.commands import CommandSpec
from gentrain_trainer.config import ConfigError, parse

REPO = Path(__file__).resolve().parents[2]
GOOD = {"id": "fresh-1", "action": "reinitialize"}


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"action": "reinitialize"}, "commands[1].id", "non-empty string id"),
        ({"id": "", "action": "reinitialize"}, "commands[1].id", "non-empty string id"),
        ({"id": "fresh-1", "action": "rollback", "step": 1}, "commands[1].id", "used twice"),
        ({"id": "x", "action": "fly"}, "commands[1].action", "'fly' is not one of rollback"),
        ({"id": "x", "action": "rollback"}, "commands[1].step", "expected an integer"),
        ({"id": "x", "action": "rollback", "step": -1}, "commands[1].step", "at least 0"),
        ({"id": "x", "action": "rollback", "step": True}, "commands[1].step", "an integer"),
        (
            {"id": "x", "action": "search_learning_rate", "search_steps": 2},
            "commands[1].search_steps",
            "at least 3",
        ),
        (
            {"id": "x", "action": "search_learning_rate", "max_factor": 0},
            "commands[1].max_factor",
            "over 0",
        ),
        (
            {"id": "x", "action": "search_learning_rate", "max_factor": "low"},
            "commands[1].max_factor",
            "expected a number",
        ),
        ("rollback", "commands[1].id", "non-empty string id"),
    ],
)
def test_a_bad_entry_is_refused_by_its_field(entry: Any, field: str, words: str) -> None:
    parsed = commands.parse([GOOD, entry])
    assert parsed.commands == (CommandSpec("fresh-1", "reinitialize"),)
    assert list(parsed.refused) == [field]
    assert parsed.refused[field].startswith(f"{field}: ") and words in parsed.refused[field]
    with pytest.raises(ConfigError) as refused:  # the trainer's starting file: all refused
        parse({"family": "gan", "data": {"name": "ring8"}, "commands": [GOOD, entry]})
    assert str(refused.value) == parsed.refused[field]


def test_good_entries_keep_their_order_and_defaults() -> None:
    parsed = commands.parse(
        [
            {"id": "rb", "action": "rollback", "step": 400, "skip_batches": 50},
            {"id": "lr", "action": "search_learning_rate"},
            {"id": "lr-2", "action": "search_learning_rate", "max_factor": 0.15},
        ]
    )
    assert parsed.refused == {}
    assert parsed.commands == (
        CommandSpec("rb", "rollback", 400, 50),
        CommandSpec("lr", "search_learning_rate", None, 0, commands.DEFAULT_SEARCH_STEPS),
        CommandSpec("lr-2", "search_learning_rate", None, 0, commands.DEFAULT_SEARCH_STEPS, 0.15),
    )


def test_more_entries_than_the_api_allows_are_refused_beyond_the_limit() -> None:
    many = [{"id": f"c{i}", "action": "reinitialize"} for i in range(commands.MAX_COMMANDS + 1)]
    parsed = commands.parse(many)
    assert len(parsed.commands) == commands.MAX_COMMANDS
    assert "at most 32" in parsed.refused["commands"]
    assert commands.parse("rollback").refused == {"commands": "commands: expected a list"}


def test_the_limit_is_the_apis() -> None:
    crd = yaml.safe_load((REPO / "crds" / "generativetrainingjobs.gentrain.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    entries = schema["properties"]["spec"]["properties"]["commands"]
    assert entries["maxItems"] == commands.MAX_COMMANDS
    assert set(entries["items"]["properties"]["action"]["enum"]) == set(commands.ACTIONS)
