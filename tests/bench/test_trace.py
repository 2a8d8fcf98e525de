"""`python -m bench.trace`: a case name that is not in the set is refused with the set's
cases named; a milestone is shown with the fields asked for, rounded."""

from __future__ import annotations

import sys

import pytest

from bench import trace


def test_an_unknown_case_is_refused_with_the_sets_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["trace", "calibration", "gan-too-hot"])
    with pytest.raises(SystemExit) as refused:
        trace.main()
    message = str(refused.value.code)
    assert "no case 'gan-too-hot' in the calibration set" in message
    assert "gan-learning-rate-too-high" in message


def test_a_milestone_shows_the_fields_asked_for_rounded() -> None:
    milestone = {
        "step": 1000,
        "high_quality_ratio": 0.060041,
        "update_ratio": {"discriminator": 0.0175627, "generator": 0.0104632},
        "losses": [1.0, 2.0],
    }
    assert trace.shown(milestone, ["step", "update_ratio", "absent"]) == {
        "step": 1000,
        "update_ratio": {"discriminator": 0.01756, "generator": 0.01046},
    }
    assert trace.shown(milestone, []) == {"step": 1000, "high_quality_ratio": 0.06004}
