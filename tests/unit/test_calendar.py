from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.calendar import (
    LONDON,
    AlwaysOpen,
    BankHolidays,
    Calendar,
    CalendarSpecError,
    ComplementCalendar,
    WeeklyCalendar,
    Window,
    calendar_from_spec,
    parse_days,
)
from ipoa.domain.directory import load_directory_file
from tests.helpers.properties import examples

UTC = UTC
ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = load_directory_file(ROOT / "workflows" / "directory.yaml")
SERVICES = DIRECTORY.services
CENTRES = DIRECTORY.centres

WEEKDAY_GMT = date(2026, 1, 14)  # Wednesday
WEEKDAY_BST = date(2026, 6, 3)  # Wednesday
SATURDAY = date(2026, 6, 6)
SECOND = timedelta(seconds=1)


def london(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=LONDON)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mon_fri(open_: str, close: str, closed_on_bh: bool = True, bh: BankHolidays | None = None):
    spec = {"hours": [{"days": "Mon-Fri", "open": open_, "close": close}], "closed_on_bank_holidays": closed_on_bh}
    return calendar_from_spec(spec, {}, bh)


# --- every shipped calendar with hours, at its boundaries --------------------------------------

DAY_HOURS = [
    ("service", "CRT", (8, 0), (20, 0)),
    ("service", "ILT", (8, 0), (18, 0)),
    ("service", "SCA", (8, 30), (17, 0)),
    ("service", "SG", (8, 30), (17, 0)),
    ("service", "REA", (8, 0), (20, 0)),
    ("service", "LB", (9, 0), (17, 0)),
    ("service", "FCPW", (8, 30), (17, 0)),
    ("centre", "FCP", (8, 30), (17, 0)),
    ("centre", "ASC", (8, 30), (17, 0)),
    ("centre", "HFD", (8, 0), (20, 0)),
]


def _calendar(kind: str, code: str) -> Calendar:
    return (SERVICES if kind == "service" else CENTRES)[code].calendar


@pytest.mark.parametrize("day", [WEEKDAY_GMT, WEEKDAY_BST], ids=["GMT", "BST"])
@pytest.mark.parametrize("kind, code, opens, closes", DAY_HOURS, ids=[h[1] for h in DAY_HOURS])
def test_opening_hour_boundaries(kind, code, opens, closes, day):
    calendar = _calendar(kind, code)
    open_at, close_at = london(day, *opens), london(day, *closes)
    # Passed as UTC: the calendar must convert, not read the wall clock off the argument.
    assert not calendar.is_open((open_at - SECOND).astimezone(UTC))
    assert calendar.is_open(open_at.astimezone(UTC))
    assert calendar.is_open((close_at - SECOND).astimezone(UTC))
    assert not calendar.is_open(close_at.astimezone(UTC))


@pytest.mark.parametrize("day", [WEEKDAY_GMT, WEEKDAY_BST, SATURDAY])
def test_out_of_hours_visiting_runs_past_midnight(day):
    oohv = SERVICES["OOHV"].calendar
    assert not oohv.is_open(london(day, 19, 59, 59))
    assert oohv.is_open(london(day, 20, 0))
    assert oohv.is_open(london(day, 23, 59, 59))
    assert oohv.is_open(london(day + timedelta(days=1), 0, 0))
    assert oohv.is_open(london(day + timedelta(days=1), 7, 59, 59))
    assert not oohv.is_open(london(day + timedelta(days=1), 8, 0))


@pytest.mark.parametrize("code", ["ILT", "SCA", "SG", "LB", "FCPW"])
def test_weekday_services_are_closed_at_the_weekend(code):
    calendar = SERVICES[code].calendar
    assert not calendar.is_open(london(SATURDAY, 12))
    assert not calendar.is_open(london(SATURDAY + timedelta(days=1), 12))


@pytest.mark.parametrize("code", ["CRT", "REA", "CRS", "DN", "MHCR", "EDT"])
def test_every_day_services_are_open_at_the_weekend(code):
    assert SERVICES[code].calendar.is_open(london(SATURDAY, 12))


@pytest.mark.parametrize("code", ["CRS", "DN", "MHCR"])
def test_always_open_services(code):
    calendar = SERVICES[code].calendar
    for at in (utc(2026, 3, 29, 1, 0), utc(2026, 12, 25, 3, 0), utc(2026, 10, 25, 1, 30)):
        assert calendar.is_open(at)
        assert calendar.next_open(at) == at


def test_complement_edt_is_open_exactly_when_asc_is_closed():
    asc, edt = CENTRES["ASC"].calendar, SERVICES["EDT"].calendar
    day = WEEKDAY_BST
    for at in (
        london(day, 8, 29, 59),
        london(day, 8, 30),
        london(day, 16, 59, 59),
        london(day, 17, 0),
        london(SATURDAY, 12),
        london(date(2026, 12, 25), 12),
    ):
        assert edt.is_open(at) is not asc.is_open(at)
    assert edt.next_open(london(day, 10)) == london(day, 17).astimezone(UTC)
    assert edt.next_close(london(SATURDAY, 12)) == london(date(2026, 6, 8), 8, 30).astimezone(UTC)
    assert CENTRES["EDT"].calendar.describe() == "whenever ASC is closed"


@settings(max_examples=examples(300), deadline=None, database=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59),
                    timezones=st.just(UTC)))
def test_complements_hold_at_every_instant(at):
    assert SERVICES["EDT"].calendar.is_open(at) is not CENTRES["ASC"].calendar.is_open(at)
    assert CENTRES["EDT"].calendar.is_open(at) is not CENTRES["ASC"].calendar.is_open(at)
    # CRT by day and OOHV by night cover the clock with no gap and no overlap.
    assert SERVICES["CRT"].calendar.is_open(at) is not SERVICES["OOHV"].calendar.is_open(at)


# --- bank holidays --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "day",
    [date(2026, 12, 25), date(2026, 12, 28), date(2026, 8, 31)],
    ids=["Christmas", "Boxing Day substitute", "summer bank holiday"],
)
def test_bank_holidays_close_weekday_services(day):
    noon = london(day, 12)
    for code in ("SG", "SCA", "ILT", "LB"):
        assert not SERVICES[code].calendar.is_open(noon), code
    for code in ("FCP", "ASC"):
        assert not CENTRES[code].calendar.is_open(noon), code
    assert SERVICES["EDT"].calendar.is_open(noon)
    assert SERVICES["CRT"].calendar.is_open(noon)
    assert SERVICES["REA"].calendar.is_open(noon)
    # FCPW's published hours do not exclude bank holidays.
    assert SERVICES["FCPW"].calendar.is_open(noon)


def test_england_bank_holidays():
    bh = BankHolidays()
    assert bh.is_holiday(date(2026, 12, 25))
    assert bh.is_holiday(date(2026, 12, 28))
    assert bh.is_holiday(date(2026, 8, 31))
    assert not bh.is_holiday(date(2026, 12, 29))
    assert not bh.is_holiday(date(2026, 3, 17))  # St Patrick's Day is not an English bank holiday


def test_bank_holidays_take_local_dates_not_instants():
    with pytest.raises(TypeError):
        BankHolidays().is_holiday(datetime(2026, 12, 25, tzinfo=UTC))


def test_injected_closure_dates():
    one_off = date(2026, 6, 3)
    closed = mon_fri("08:30", "17:00", bh=BankHolidays(extra_dates=[one_off]))
    assert not closed.is_open(london(one_off, 12))
    assert closed.next_open(london(one_off, 12)) == london(one_off + timedelta(days=1), 8, 30).astimezone(UTC)
    no_england = mon_fri("08:30", "17:00", bh=BankHolidays(england=False))
    assert no_england.is_open(london(date(2026, 12, 25), 12))


def test_an_overnight_window_belongs_to_its_start_day():
    thursday, friday = date(2026, 6, 4), date(2026, 6, 5)
    window = Window(parse_days("Thu,Fri"), time(22, 0), time(2, 0))
    calendar = WeeklyCalendar([window], closed_on_bank_holidays=True, bank_holidays=BankHolidays([friday]))
    # Thursday night's window runs into the holiday Friday; Friday night's window never starts.
    assert calendar.is_open(london(thursday, 23, 0))
    assert calendar.is_open(london(friday, 1, 59))
    assert not calendar.is_open(london(friday, 2, 0))
    assert not calendar.is_open(london(friday, 23, 0))
    assert not calendar.is_open(london(friday + timedelta(days=1), 1, 0))


def test_a_calendar_answers_from_the_days_it_keeps_as_it_would_afresh():
    # WeeklyCalendar keeps the intervals of the days last asked about: asked again and again across a year
    # (clock changes and bank holidays included, an overnight window too), it answers as a new calendar does.
    windows = [Window(parse_days("Mon-Fri"), time(8, 30), time(17, 0)),
               Window(parse_days("Sat"), time(22, 0), time(2, 0))]
    kept = WeeklyCalendar(windows, closed_on_bank_holidays=True)
    at = utc(2026, 1, 1, 0, 0)
    while at < utc(2027, 1, 10, 0, 0):
        fresh = WeeklyCalendar(windows, closed_on_bank_holidays=True)
        assert (kept.is_open(at), kept.next_open(at), kept.next_close(at)) == (
            fresh.is_open(at), fresh.next_open(at), fresh.next_close(at)), at
        assert len(kept._by_day) <= 32  # bounded: a long search does not keep every day it looked at
        at += timedelta(hours=7, minutes=13)


# --- clock changes --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "day, opens_utc",
    [
        (date(2026, 3, 28), utc(2026, 3, 28, 8, 0)),  # last GMT day
        (date(2026, 3, 29), utc(2026, 3, 29, 7, 0)),  # change day: already BST at 08:00
        (date(2026, 10, 24), utc(2026, 10, 24, 7, 0)),  # last BST day
        (date(2026, 10, 25), utc(2026, 10, 25, 8, 0)),  # change day: already GMT at 08:00
    ],
)
def test_local_8am_opening_across_clock_changes(day, opens_utc):
    crt = SERVICES["CRT"].calendar
    assert not crt.is_open(opens_utc - SECOND)
    assert crt.is_open(opens_utc)
    assert crt.next_open(london(day, 0, 30)) == opens_utc
    oohv = SERVICES["OOHV"].calendar
    assert oohv.is_open(opens_utc - SECOND)
    assert not oohv.is_open(opens_utc)


def test_overnight_window_length_on_change_nights():
    oohv = SERVICES["OOHV"].calendar
    spring_start = oohv.next_open(london(date(2026, 3, 28), 12))
    autumn_start = oohv.next_open(london(date(2026, 10, 24), 12))
    assert spring_start == utc(2026, 3, 28, 20, 0)
    assert oohv.next_close(spring_start) - spring_start == timedelta(hours=11)
    assert autumn_start == utc(2026, 10, 24, 19, 0)
    assert oohv.next_close(autumn_start) - autumn_start == timedelta(hours=13)


def test_weekday_opening_after_clock_changes():
    sg = SERVICES["SG"].calendar
    assert sg.next_open(london(date(2026, 3, 28), 12)) == utc(2026, 3, 30, 7, 30)
    assert sg.next_open(london(date(2026, 10, 24), 12)) == utc(2026, 10, 26, 8, 30)


# --- next_open ------------------------------------------------------------------------------------

def test_next_open_is_now_when_open_and_returned_in_utc():
    at = london(WEEKDAY_BST, 10)
    result = SERVICES["SCA"].calendar.next_open(at)
    assert result == at and result.tzinfo is UTC
    assert AlwaysOpen().next_open(at).tzinfo is UTC


@pytest.mark.parametrize(
    "at, expected",
    [
        (london(SATURDAY, 12), london(date(2026, 6, 8), 8, 30)),  # Saturday -> Monday
        (london(date(2026, 6, 5), 17, 0), london(date(2026, 6, 8), 8, 30)),  # Friday at close
        (london(WEEKDAY_BST, 6, 0), london(WEEKDAY_BST, 8, 30)),  # early the same day
        (london(date(2026, 8, 29), 12), london(date(2026, 9, 1), 8, 30)),  # Monday bank holiday -> Tuesday
        (london(date(2026, 12, 24), 17, 0), london(date(2026, 12, 29), 8, 30)),  # Christmas
    ],
)
def test_next_open_for_social_care_assessment(at, expected):
    assert SERVICES["SCA"].calendar.next_open(at) == expected.astimezone(UTC)


def test_next_close():
    sca = SERVICES["SCA"].calendar
    assert sca.next_close(london(WEEKDAY_BST, 10)) == london(WEEKDAY_BST, 17).astimezone(UTC)
    assert sca.next_close(london(SATURDAY, 10)) == london(SATURDAY, 10)
    assert AlwaysOpen().next_close(london(SATURDAY, 10)) is None
    whole_days = calendar_from_spec({"hours": [{"days": "every day", "open": "00:00", "close": "24:00"}]}, {})
    assert whole_days.is_open(utc(2026, 3, 29, 1, 0))
    assert whole_days.next_close(utc(2026, 3, 29, 1, 0)) is None


_SHIPPED = sorted(
    [(f"service {c}", s.calendar) for c, s in SERVICES.items()]
    + [(f"centre {c}", s.calendar) for c, s in CENTRES.items()],
    key=lambda item: item[0],
)


@settings(max_examples=examples(400), deadline=None, database=None)
@given(
    st.sampled_from(_SHIPPED),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59), timezones=st.just(UTC)),
)
def test_next_open_and_next_close_are_consistent(named, at):
    _, calendar = named
    opens = calendar.next_open(at)
    assert opens >= at and opens.tzinfo is UTC
    assert calendar.is_open(opens)
    if calendar.is_open(at):
        assert opens == at
    else:
        # Nothing open is skipped between now and the answer.
        assert not calendar.is_open(at + (opens - at) / 2)
        assert not calendar.is_open(opens - SECOND)
    closes = calendar.next_close(at)
    if closes is not None:
        assert closes >= at and not calendar.is_open(closes)


# --- specs, describe, errors ----------------------------------------------------------------------

def test_naive_datetimes_are_refused():
    naive = datetime(2026, 6, 3, 12, 0)
    for calendar in (AlwaysOpen(), SERVICES["SCA"].calendar, SERVICES["EDT"].calendar):
        with pytest.raises(ValueError, match="naive"):
            calendar.is_open(naive)
        with pytest.raises(ValueError, match="naive"):
            calendar.next_open(naive)


@pytest.mark.parametrize(
    "spec, text",
    [
        ("always", "24/7"),
        ({"hours": [{"days": "Mon-Fri", "open": "08:30", "close": "17:00"}], "closed_on_bank_holidays": True},
         "Mon-Fri 08:30-17:00, closed on bank holidays"),
        ({"hours": [{"days": "every day", "open": "20:00", "close": "08:00"}]}, "every day 20:00-08:00"),
        ({"hours": [{"days": "Sat,Sun", "open": "10:00", "close": "16:00"}]}, "Sat,Sun 10:00-16:00"),
        ({"hours": [{"days": ["Mon", "Wed"], "open": "09:00", "close": "24:00"}]}, "Mon,Wed 09:00-24:00"),
        ({"hours": [{"days": "Mon-Fri", "open": "08:00", "close": "18:00"},
                    {"days": "Sat", "open": "09:00", "close": "12:00"}]},
         "Mon-Fri 08:00-18:00, Sat 09:00-12:00"),
        ({"complement_of": "ASC"}, "whenever ASC is closed"),
    ],
)
def test_calendar_from_spec_and_describe(spec, text):
    calendar = calendar_from_spec(spec, {"ASC": CENTRES["ASC"].calendar}, BankHolidays())
    assert isinstance(calendar, Calendar)
    assert calendar.describe() == text


@pytest.mark.parametrize(
    "days, expected",
    [
        ("Mon-Fri", {0, 1, 2, 3, 4}),
        ("every day", set(range(7))),
        ("daily", set(range(7))),
        ("Sat,Sun", {5, 6}),
        ("sat, sun", {5, 6}),
        ("Fri-Mon", {4, 5, 6, 0}),
        ("Monday", {0}),
        (["Tue", "Thu"], {1, 3}),
    ],
)
def test_parse_days(days, expected):
    assert parse_days(days) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sometimes", "calendar must be"),
        ({"complement_of": "XYZ"}, "unknown calendar reference 'XYZ'"),
        ({"complement_of": "ASC", "hours": []}, "complement_of takes no other keys"),
        ({"hours": []}, "non-empty list"),
        ({"hours": [{"days": "Mon-Fri", "open": "08:30"}]}, "days, open, close"),
        ({"hours": [{"days": "Funday", "open": "08:30", "close": "17:00"}]}, "unknown day 'Funday'"),
        ({"hours": [{"days": "Mon-Fri", "open": "25:00", "close": "17:00"}]}, "bad time '25:00'"),
        ({"hours": [{"days": "Mon-Fri", "open": 1200, "close": "17:00"}]}, "in quotes"),
        ({"hours": [{"days": "Mon", "open": "08:00", "close": "17:00"}], "closed_on_bank_holidays": "yes"},
         "true or false"),
        ({"hours": [{"days": "Mon", "open": "08:00", "close": "17:00"}], "open_on": "x"}, "unknown calendar keys"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(CalendarSpecError, match=message):
        calendar_from_spec(spec, {"ASC": CENTRES["ASC"].calendar})


def test_complement_of_always_open_is_refused():
    with pytest.raises(CalendarSpecError, match="never opens"):
        calendar_from_spec({"complement_of": "CNH"}, {"CNH": AlwaysOpen()})


def test_complement_without_label_describes_the_other_calendar():
    assert ComplementCalendar(SERVICES["SG"].calendar).describe() == (
        "whenever closed: Mon-Fri 08:30-17:00, closed on bank holidays"
    )
