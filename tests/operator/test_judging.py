"""When a remediation is judged: at the milestone whose window shows its effect — a probe
that kept the rate where it ran, a fresh start taken up at the window's start there, a
change made in place a window later."""

from __future__ import annotations

from gentrain_operator import policy
from gentrain_operator.diagnosis import Finding


def test_a_probe_that_kept_the_rate_is_judged_where_it_ran_and_one_that_moved_it_is_not() -> None:
    finding = Finding("PosteriorCollapse", "critical", "", {})
    probe = {"id": "r1", "finding": "PosteriorCollapse", "actions": ["probe_learning_rate"]}
    kept = {**probe, "outcome": "pending", "appliedAtStep": 750, "search": {"factor": 1.0}}
    moved = {**kept, "search": {"factor": 10.0}}
    at_750 = {"step": 750}
    assert policy.judge([kept], [finding], at_750) == {"r1": "persisting"}
    assert policy.judge([moved], [finding], at_750) == {}
    assert policy.judge([moved], [finding], {"step": 1000}) == {"r1": "persisting"}
    changed = {**kept, "actions": ["probe_learning_rate", "enable_clipping"]}
    assert policy.judge([changed], [finding], at_750) == {}


def test_a_fresh_start_in_force_for_the_window_that_shows_it_is_judged_there() -> None:
    """The built-in trainer takes a change up between milestones: a fresh start decided at
    500 and taken up at step 500 trained the whole window 500-750 from its own weights, so
    750 shows whether it worked, not 1,000. Taken up late in the window (at 700), or with
    no step said (a program that takes changes up at its milestones), it waits for the
    next window; so does a change made in place, whose window starts from weights the old
    setting trained (a discriminator's lead outlasts the step ratio that gave it)."""
    finding = Finding("NotLearning", "critical", "", {})
    record = {
        "id": "r1",
        "finding": "NotLearning",
        "actions": ["reinitialize", "search_learning_rate"],
        "outcome": "pending",
        "appliedAtStep": 750,
    }
    at_750 = {"step": 750}
    whole = {**record, "appliedFromStep": 500}
    assert policy.judge([whole], [finding], at_750, interval=250) == {"r1": "persisting"}
    assert policy.judge([whole], [], at_750, interval=250) == {"r1": "resolved"}
    late = {**record, "appliedFromStep": 700}
    assert policy.judge([late], [finding], at_750, interval=250) == {}
    assert policy.judge([record], [finding], at_750, interval=250) == {}
    assert policy.judge([whole], [finding], at_750) == {}, "no interval: as before"
    assert policy.judge([late], [finding], {"step": 1000}, interval=250) == {"r1": "persisting"}
    in_place = {**whole, "actions": ["one_discriminator_step"]}
    assert policy.judge([in_place], [finding], at_750, interval=250) == {}
    assert policy.judge([in_place], [finding], {"step": 1000}, interval=250) == {"r1": "persisting"}
