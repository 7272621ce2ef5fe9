"""When the timer scheduler starts the audit trail's verification (service/audit.py nightly_due): once a
night from 02:30 Europe/London, catching up after a scheduler that was down, never beside a run still
going, and not again tonight once a run completed, whoever started it. Pure: times in, yes or no out."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ipoa.service.audit import RETRY_AFTER, STALE_AFTER, Run, nightly_due, tonight


def at(day: str, hhmm: str) -> datetime:
    """A UTC instant."""
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def done(started: datetime, minutes: int = 5, ok: bool = True) -> Run:
    return Run(id=1, started_at=started, finished_at=started + timedelta(minutes=minutes), by="scheduler", ok=ok,
               events=10)


def unfinished(started: datetime) -> Run:
    return Run(id=2, started_at=started, by="scheduler")


def could_not_finish(started: datetime) -> Run:
    return Run(id=3, started_at=started, finished_at=started + timedelta(minutes=1), by="scheduler", ok=None,
               problem="The verification could not finish (OperationalError).")


# Winter (GMT = UTC) and summer (BST = UTC+1): 02:30 in London is 02:30 UTC, then 01:30 UTC.
@pytest.mark.parametrize("now, slot", [
    (at("2026-11-23", "02:30"), at("2026-11-23", "02:30")),
    (at("2026-11-23", "02:29"), at("2026-11-22", "02:30")),
    (at("2026-11-23", "23:59"), at("2026-11-23", "02:30")),
    (at("2026-07-01", "01:30"), at("2026-07-01", "01:30")),
    (at("2026-07-01", "01:29"), at("2026-06-30", "01:30")),
    (at("2026-03-29", "01:30"), at("2026-03-29", "01:30")),  # the night the clocks go forward
    (at("2026-10-25", "02:30"), at("2026-10-25", "02:30")),  # and back
])
def test_tonight_is_the_latest_0230_in_london(now, slot):
    assert tonight(now) == slot


def test_due_at_0230_when_nothing_ran_tonight():
    yesterday = done(at("2026-11-22", "02:30"))
    assert not nightly_due(at("2026-11-23", "02:29"), [yesterday])
    assert nightly_due(at("2026-11-23", "02:30"), [yesterday])
    assert nightly_due(at("2026-11-23", "02:31"), [])


def test_once_a_night_even_across_restarts():
    """A restarted scheduler knows from the table that tonight's run happened."""
    tonight_run = done(at("2026-11-23", "02:30"))
    for now in (at("2026-11-23", "02:36"), at("2026-11-23", "14:00"), at("2026-11-24", "02:29")):
        assert not nightly_due(now, [tonight_run], last_attempt=None)
    assert nightly_due(at("2026-11-24", "02:30"), [tonight_run])


def test_a_scheduler_down_at_0230_catches_up_when_it_starts():
    assert nightly_due(at("2026-11-23", "09:15"), [done(at("2026-11-22", "02:30"))])


def test_a_failed_verification_still_counts_as_tonights():
    """A break found is a result: it goes on the panel; running again tonight would find it again."""
    assert not nightly_due(at("2026-11-23", "03:00"), [done(at("2026-11-23", "02:30"), ok=False)])


def test_an_operators_run_after_0230_is_tonights_but_not_one_before():
    assert not nightly_due(at("2026-11-23", "03:00"), [done(at("2026-11-23", "02:45"))])
    assert nightly_due(at("2026-11-23", "03:00"), [done(at("2026-11-23", "02:00"))])


def test_never_a_second_while_one_runs():
    running = unfinished(at("2026-11-23", "02:30"))
    assert not nightly_due(at("2026-11-23", "03:30"), [running])
    # Started yesterday evening and still going: not tonight's, but it runs, so none is started beside it.
    assert not nightly_due(at("2026-11-23", "02:35"), [unfinished(at("2026-11-23", "00:00"))])


def test_a_run_that_died_is_tried_again_once_it_is_stale():
    died = unfinished(at("2026-11-23", "02:30"))
    assert not nightly_due(at("2026-11-23", "02:30") + STALE_AFTER - timedelta(minutes=1), [died])
    assert nightly_due(at("2026-11-23", "02:30") + STALE_AFTER, [died])


def test_a_run_that_could_not_finish_is_retried_after_a_pause():
    first = at("2026-11-23", "02:30")
    runs = [could_not_finish(first)]
    assert not nightly_due(first + timedelta(minutes=5), runs, last_attempt=first)
    assert nightly_due(first + RETRY_AFTER, runs, last_attempt=first)
    # A restarted scheduler has no memory of its attempt: it tries at once.
    assert nightly_due(first + timedelta(minutes=5), runs, last_attempt=None)


def test_an_attempt_that_left_no_row_is_not_repeated_every_tick():
    """The child died before recording anything (a bad environment): the pause still applies."""
    first = at("2026-11-23", "02:30")
    assert not nightly_due(first + timedelta(seconds=61), [], last_attempt=first)
    assert nightly_due(first + RETRY_AFTER, [], last_attempt=first)
    # Last night's attempt does not hold back tonight's.
    assert nightly_due(at("2026-11-24", "02:30"), [], last_attempt=first + RETRY_AFTER)
