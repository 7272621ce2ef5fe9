"""Dates and times typed into day / month / year boxes and an HH:MM box (ipoa/domain/date_parts.py):
read without any locale, refused with the parts to highlight, and UK wall times turned into the right UTC
instant on both sides of the clocks changing. Pure: no app."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipoa.domain import field_messages as fm
from ipoa.domain.date_parts import (
    PartsProblem,
    london_clock,
    london_instant,
    parse_date,
    parse_date_time,
    parse_time,
    repeated_hour_zone,
)
from tests.helpers.properties import examples


@pytest.mark.parametrize("day, month, year, expected", [
    ("5", "11", "1941", date(1941, 11, 5)),  # the regression: 5 November, never 11 May
    ("05", "11", "1941", date(1941, 11, 5)),
    (" 5 ", " 11 ", " 1941 ", date(1941, 11, 5)),
    ("29", "2", "2024", date(2024, 2, 29)),
    ("1", "1", "1900", date(1900, 1, 1)),
    ("31", "12", "2026", date(2026, 12, 31)),
])
def test_real_dates(day, month, year, expected):
    assert parse_date(day, month, year) == expected


def test_all_empty_is_no_date():
    assert parse_date("", " ", "") is None
    assert parse_date_time("", "", "", "") is None


@pytest.mark.parametrize("day, month, year, kind, parts", [
    ("31", "2", "1980", fm.INVALID, ("day",)),
    ("29", "2", "2023", fm.INVALID, ("day",)),
    ("0", "5", "1980", fm.INVALID, ("day",)),
    ("5", "13", "1980", fm.INVALID, ("month",)),
    ("32", "13", "1980", fm.INVALID, ("day", "month")),
    ("5", "11", "41", fm.YEAR_DIGITS, ("year",)),
    ("5", "11", "19411", fm.YEAR_DIGITS, ("year",)),
    ("5", "11", "0000", fm.INVALID, ("year",)),
    ("a", "11", "1941", fm.INVALID, ("day",)),
    ("5", "Nov", "1941", fm.INVALID, ("month",)),
    ("5", "11", "19x1", fm.INVALID, ("year",)),
    ("005", "11", "1941", fm.INVALID, ("day",)),
    ("-5", "11", "1941", fm.INVALID, ("day",)),
    ("٥", "11", "1941", fm.INVALID, ("day",)),  # Arabic-Indic five: digits, but not ours
    ("5", "11", "", fm.MISSING_PART, ("year",)),
    ("", "", "1941", fm.MISSING_PART, ("day", "month")),
    ("5", "", "", fm.MISSING_PART, ("month", "year")),
])
def test_refused_dates_say_which_parts(day, month, year, kind, parts):
    problem = parse_date(day, month, year)
    assert isinstance(problem, PartsProblem)
    assert (problem.kind, problem.parts) == (kind, parts)


def test_missing_parts_are_named_in_the_message():
    problem = parse_date("", "", "1941")
    assert isinstance(problem, PartsProblem)
    assert fm.message("subject.date_of_birth", problem.kind, **problem.params) == (
        "Date of birth must include a day and month")
    problem = parse_date("5", "11", "")
    assert isinstance(problem, PartsProblem)
    assert fm.message("subject.date_of_birth", problem.kind, **problem.params) == "Date of birth must include a year"


@pytest.mark.parametrize("text, expected", [
    ("14:30", time(14, 30)), ("9:05", time(9, 5)), ("09:05", time(9, 5)), ("00:00", time(0, 0)),
    ("23:59", time(23, 59)), ("14.30", time(14, 30)), (" 14:30 ", time(14, 30)),
])
def test_times(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text, kind", [
    ("", fm.TIME_MISSING), ("24:00", fm.TIME_INVALID), ("14:60", fm.TIME_INVALID), ("2pm", fm.TIME_INVALID),
    ("1430", fm.TIME_INVALID), ("14:3", fm.TIME_INVALID), ("١٤:٣٠", fm.TIME_INVALID),
])
def test_refused_times(text, kind):
    problem = parse_time(text)
    assert isinstance(problem, PartsProblem) and problem.kind == kind and problem.parts == ("time",)


def test_a_time_without_a_date_asks_for_the_date():
    problem = parse_date_time("", "", "", "14:30")
    assert isinstance(problem, PartsProblem)
    assert problem.kind == fm.MISSING_PART and problem.parts == ("day", "month", "year")


def test_uk_wall_time_in_summer_and_winter():
    assert parse_date_time("1", "7", "2026", "12:00") == datetime(2026, 7, 1, 11, 0, tzinfo=UTC)  # BST
    assert parse_date_time("1", "12", "2026", "12:00") == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # GMT


def test_the_hour_the_clocks_skip_is_refused_and_the_repeated_hour_means_bst():
    # 29 March 2026: 01:00 GMT becomes 02:00 BST. 25 October 2026: 02:00 BST becomes 01:00 GMT.
    gap = parse_date_time("29", "3", "2026", "01:30")
    assert isinstance(gap, PartsProblem) and gap.kind == fm.TIME_GAP and gap.params == {"time": "01:30"}
    assert parse_date_time("29", "3", "2026", "00:59") == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert parse_date_time("29", "3", "2026", "02:00") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert parse_date_time("25", "10", "2026", "01:30") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert parse_date_time("25", "10", "2026", "02:00") == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_a_time_that_must_be_ahead_is_read_as_its_first_reading_still_ahead_in_the_repeated_hour():
    # 25 October 2026: 01:00-01:59 happens twice, in BST (00:00-00:59 UTC) and then in GMT (01:00-01:59 UTC).
    bst_0140, gmt_0140, gmt_0155 = (datetime(2026, 10, 25, h, m, tzinfo=UTC) for h, m in ((0, 40), (1, 40), (1, 55)))
    day, at = date(2026, 10, 25), time(1, 50)
    assert london_instant(day, at, after=bst_0140) == datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # BST's: ahead
    assert london_instant(day, at, after=gmt_0140) == datetime(2026, 10, 25, 1, 50, tzinfo=UTC)  # GMT's: ahead
    assert london_instant(day, at, after=gmt_0155) == datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # both past: the first
    assert parse_date_time("25", "10", "2026", "01:50", after=gmt_0140) == datetime(2026, 10, 25, 1, 50, tzinfo=UTC)
    # A time that happens once is read as ever, past or not.
    assert london_instant(day, time(0, 30), after=gmt_0140) == datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    assert london_instant(day, time(2, 30), after=gmt_0140) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)


def test_a_wall_time_says_bst_or_gmt_only_when_it_happens_twice():
    assert london_clock(datetime(2026, 10, 25, 0, 50, tzinfo=UTC)) == "Sun 25 Oct 01:50 BST"
    assert london_clock(datetime(2026, 10, 25, 1, 50, tzinfo=UTC)) == "Sun 25 Oct 01:50 GMT"
    assert london_clock(datetime(2026, 10, 25, 2, 0, tzinfo=UTC)) == "Sun 25 Oct 02:00"
    assert london_clock(datetime(2026, 10, 24, 23, 59, tzinfo=UTC)) == "Sun 25 Oct 00:59"
    assert london_clock(datetime(2026, 12, 3, 14, 30, tzinfo=UTC)) == "Thu 03 Dec 14:30"
    assert london_clock(datetime(2026, 10, 25, 1, 5, tzinfo=UTC), "%H:%M") == "01:05 GMT"


# -- properties -----------------------------------------------------------------------------------------


@settings(max_examples=examples(500))
@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)), st.booleans())
@example(date(1941, 11, 5), True)
@example(date(2024, 2, 29), False)
def test_any_real_date_round_trips_through_its_parts(day, padded):
    fmt = "{:02d}" if padded else "{}"
    assert parse_date(fmt.format(day.day), fmt.format(day.month), f"{day.year:04d}") == day


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _uk_offset(instant: datetime) -> timedelta:
    """The UK's offset at a UTC instant, by the rule itself (since 1996: BST from 01:00 UTC on the last
    Sunday of March to 01:00 UTC on the last Sunday of October), not by zoneinfo."""
    year = instant.year
    starts = datetime.combine(_last_sunday(year, 3), time(1), tzinfo=UTC)
    ends = datetime.combine(_last_sunday(year, 10), time(1), tzinfo=UTC)
    return timedelta(hours=1) if starts <= instant < ends else timedelta(0)


# Days either side of both changes, over years, with times through the night.
change_days = st.integers(2000, 2090).flatmap(lambda y: st.sampled_from(
    [_last_sunday(y, 3) + timedelta(days=d) for d in (-1, 0, 1)]
    + [_last_sunday(y, 10) + timedelta(days=d) for d in (-1, 0, 1)]))


@settings(max_examples=examples(600))
@given(st.one_of(change_days, st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))),
       st.integers(0, 23), st.integers(0, 59))
@example(date(2026, 3, 29), 1, 30)
@example(date(2026, 10, 25), 1, 30)
def test_uk_times_map_to_the_right_instant_across_the_bst_change(day, hour, minute):
    wall = datetime.combine(day, time(hour, minute))
    # The instants that show this wall time in the UK: BST's (an hour earlier in UTC) and GMT's.
    candidates = [wall.replace(tzinfo=UTC) - offset for offset in (timedelta(hours=1), timedelta(0))
                  if _uk_offset(wall.replace(tzinfo=UTC) - offset) == offset]
    result = london_instant(day, time(hour, minute))
    if not candidates:  # the hour the clocks skip
        assert isinstance(result, PartsProblem) and result.kind == fm.TIME_GAP
    else:
        assert result == candidates[0]  # in the repeated hour, the first (BST) one
        assert isinstance(result, datetime) and result.tzinfo is UTC


# -- a time shown to staff or texted: BST or GMT in the hour that happens twice --------------------------


def test_the_zone_goes_after_the_time_wherever_the_format_puts_it():
    gmt_0150, bst_0150 = datetime(2026, 10, 25, 1, 50, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 50, tzinfo=UTC)
    assert london_clock(gmt_0150, "%H:%M on %a %d %b") == "01:50 GMT on Sun 25 Oct"
    assert london_clock(bst_0150, "%d %b %Y %H:%M:%S") == "25 Oct 2026 01:50:00 BST"
    assert london_clock(gmt_0150, "%Y-%m-%d %H:%M:%S") == "2026-10-25 01:50:30 GMT"
    assert london_clock(gmt_0150, "%b %H:%M") == "Oct 01:50 GMT"
    # A date alone is never ambiguous; "%%H" is a literal "%H", not the hour.
    assert london_clock(gmt_0150, "%a %d %b") == "Sun 25 Oct"
    assert london_clock(gmt_0150, "%d") == "25"
    assert london_clock(gmt_0150, "%%H %a") == "%H Sun"
    assert london_clock(gmt_0150, "%H:%M (%%)") == "01:50 GMT (%)"


def test_the_zone_is_said_for_any_aware_instant_and_a_naive_one_is_refused():
    from zoneinfo import ZoneInfo

    assert repeated_hour_zone(datetime(2026, 10, 25, 1, 50, tzinfo=ZoneInfo("Europe/London"))) == "BST"
    assert repeated_hour_zone(datetime(2026, 10, 25, 1, 50, fold=1, tzinfo=ZoneInfo("Europe/London"))) == "GMT"
    assert repeated_hour_zone(datetime(2026, 10, 25, 2, 20, tzinfo=timezone(timedelta(hours=1)))) == "GMT"  # 01:20 UTC
    assert repeated_hour_zone(datetime(2026, 10, 25, 1, 59, 59, 999999, tzinfo=UTC)) == "GMT"
    assert repeated_hour_zone(datetime(2026, 10, 25, 2, 0, tzinfo=UTC)) is None  # 02:00 GMT happens once
    assert repeated_hour_zone(datetime(2026, 10, 24, 23, 59, 59, tzinfo=UTC)) is None  # 00:59:59 BST, once
    assert repeated_hour_zone(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) is None  # 02:00 BST, after the gap
    with pytest.raises(ValueError):
        repeated_hour_zone(datetime(2026, 10, 25, 1, 50))


# Instants through the nights either side of both changes, over years, and any instant.
change_nights = st.tuples(change_days, st.integers(-4 * 3600, 5 * 3600)).map(
    lambda d_s: datetime.combine(d_s[0], time(0), tzinfo=UTC) + timedelta(seconds=d_s[1]))


@settings(max_examples=examples(600))
@given(st.one_of(change_nights, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31),
                                             timezones=st.just(UTC))),
       st.sampled_from(["%H:%M", "%a %d %b %H:%M", "%d %b %Y %H:%M:%S"]))
@example(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), "%H:%M")
@example(datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "%H:%M")
def test_bst_or_gmt_is_said_exactly_when_the_wall_time_happens_twice(instant, fmt):
    """By the UK's rule itself (_uk_offset), not zoneinfo: the wall time an instant shows, and whether another
    instant an hour away shows the same one."""
    offset = _uk_offset(instant)
    wall = instant + offset
    twice = any(_uk_offset(other) == wall - other for other in (instant - timedelta(hours=1),
                                                                 instant + timedelta(hours=1)))
    plain = wall.replace(tzinfo=None).strftime(fmt)
    expected = f"{plain} {'BST' if offset else 'GMT'}" if twice else plain
    assert london_clock(instant, fmt) == expected
    assert repeated_hour_zone(instant) == (("BST" if offset else "GMT") if twice else None)
