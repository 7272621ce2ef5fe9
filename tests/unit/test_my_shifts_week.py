""""Your shifts" covers the next 7 calendar days in London (service/my_shifts.week_ahead): from now to the same UK
wall-clock time 7 days later, 167, 168 or 169 hours as the clocks change between; a wall time the clocks skip or
repeat on the seventh day is read as rotas read it (calendar.wall_instant, docs/domain.md "Rotas"). Pure."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipoa.domain.calendar import LONDON
from ipoa.service.my_shifts import week_ahead
from tests.helpers.properties import examples

HOUR = timedelta(hours=1)


@pytest.mark.parametrize("now, end, hours", [
    # An ordinary week: 168 hours.
    (datetime(2026, 6, 1, 9, 0, tzinfo=UTC), datetime(2026, 6, 8, 9, 0, tzinfo=UTC), 168),
    # Across the autumn change: Sat 24 Oct 12:00 BST to Sat 31 Oct 12:00 GMT.
    (datetime(2026, 10, 24, 11, 0, tzinfo=UTC), datetime(2026, 10, 31, 12, 0, tzinfo=UTC), 169),
    # Across the spring change: Sat 28 Mar 12:00 GMT to Sat 4 Apr 12:00 BST.
    (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 4, 4, 11, 0, tzinfo=UTC), 167),
    # From either reading of the repeated 01:30 to 01:30 GMT a week on (it happens once that day).
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 11, 1, 1, 30, tzinfo=UTC), 169),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 11, 1, 1, 30, tzinfo=UTC), 168),
    # To the repeated 01:30: its first reading, BST, as rotas read it.
    (datetime(2026, 10, 18, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 168),
    # To the skipped 01:30: the first instant after the gap, 02:00 BST.
    (datetime(2026, 3, 22, 1, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 167.5),
])
def test_seven_calendar_days_to_the_same_wall_clock_time(now, end, hours):
    assert week_ahead(now) == end
    assert (week_ahead(now) - now) / HOUR == hours


@settings(max_examples=examples(500))
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)))
@example(datetime(2026, 10, 24, 11, 0, tzinfo=UTC))
@example(datetime(2026, 3, 22, 1, 30, tzinfo=UTC))
def test_the_end_shows_the_same_wall_time_seven_days_on_unless_the_clocks_skip_it(now):
    end = week_ahead(now)
    local, local_end = now.astimezone(LONDON), end.astimezone(LONDON)
    assert end.tzinfo is UTC and local_end.date() == local.date() + timedelta(days=7)
    if local_end.time() != local.time():  # only a wall time the clocks skip: then the first instant after
        assert local_end.date().month == 3 and local_end.weekday() == 6 and local_end.hour == 2
        assert local_end.minute == 0 and local_end.second == 0 and (end - timedelta(seconds=1)).astimezone(
            LONDON).hour == 0
    assert 167 * HOUR <= end - now <= 169 * HOUR


def test_a_week_is_168_hours_away_from_both_changes():
    for day in (date(2026, 1, 14), date(2026, 6, 3), date(2026, 11, 23)):
        now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=15, minutes=7, seconds=3)
        assert week_ahead(now) - now == 168 * HOUR
