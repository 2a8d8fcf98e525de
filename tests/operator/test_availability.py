"""The MetricsAvailable decision (pure): fresh, stale and why, the metrics' age, and
whether the condition already says so."""

from __future__ import annotations

import pytest

from gentrain_operator.availability import Availability, already_says, availability


def test_metrics_are_fresh_until_the_last_good_scrape_is_older_than_the_limit() -> None:
    assert availability(1060.0, 1000.0, None, 60.0, "").fresh
    stale = availability(1061.0, 1000.0, None, 60.0, "")
    assert not stale.fresh and stale.reason == "Stale"
    assert stale.message == "no successful scrape for 60 s"
    assert stale.age == pytest.approx(61.0)


def test_a_failed_scrape_says_why_and_a_trainer_never_read_ages_from_the_first_failure() -> None:
    never = availability(1090.0, None, 1000.0, 60.0, "scrape failed: connection refused")
    assert not never.fresh and never.message == "scrape failed: connection refused"
    assert never.age == pytest.approx(90.0)
    assert availability(1000.0, None, None, 60.0, "").age is None


def test_the_condition_is_written_only_when_its_status_or_message_changes() -> None:
    state = Availability(False, "Stale", "scrape failed: too large", 5.0)
    written = [{"type": "MetricsAvailable", "status": "False", "message": state.message}]
    assert already_says(written, state)
    assert not already_says(written, Availability(False, "Stale", "no scrape for 60 s", 5.0))
    assert not already_says(written, Availability(True, "Scraped", state.message, 0.0))
    assert not already_says(None, state)
