"""Opening-hours calendars in Europe/London wall-clock time.

Services publish hours as local times ("08:30-17:00"), so a window is turned into UTC instants per
local date: that keeps 08:00 meaning 08:00 on the wall on both sides of a GMT/BST change.
Callers may pass instants in any zone; results come back in UTC because that is what is stored.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")
UTC = UTC

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Longest closure we search across before deciding a calendar never opens: a year covers any
# combination of weekends and bank holidays a real service could have.
_SEARCH_DAYS = 370


class CalendarSpecError(ValueError):
    """A calendar description in configuration data is malformed."""


def _require_aware(at: datetime) -> None:
    # A naive time is ambiguous (server local? UTC? London?) and would silently misroute calls.
    if not isinstance(at, datetime):
        raise TypeError(f"expected a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass a timezone-aware instant")


def wall_instant(day: date, at: time) -> datetime:
    """The UTC instant of London wall-clock `at` on `day`: a time that happens twice (01:30 on the last Sunday
    of October) is its first occurrence, still BST; a time the clocks skip (01:30 on the last Sunday of March)
    is the first instant after the gap, 02:00 BST. Opening hours and rota shifts (domain/rota/shifts.py) both
    read wall times so (docs/domain.md, "Rotas"), so a rota matching a window leaves no gap on either night."""
    local = datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=LONDON)
    instant = local.astimezone(UTC)
    if instant.astimezone(LONDON).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # Skipped: fold=1 reads the wall time with the offset after the change (an instant before the gap),
    # fold=0 with the offset before it (an instant after). The change lies between: find its second.
    low = local.replace(fold=1).astimezone(UTC)
    high = instant
    after = high.astimezone(LONDON).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(LONDON).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def _local_instant(day: date, at: time) -> datetime:
    return wall_instant(day, at)


class BankHolidays:
    """England's bank holidays, plus any extra closure dates (tests, local one-offs)."""

    def __init__(self, extra_dates: Iterable[date] = (), *, england: bool = True):
        self._extra = frozenset(extra_dates)
        self._england = england

    def is_holiday(self, day: date) -> bool:
        # A datetime here is nearly always a UTC instant whose London date may differ: refuse it.
        if isinstance(day, datetime):
            raise TypeError("is_holiday takes a local date, not a datetime")
        if day in self._extra:
            return True
        return self._england and day in _england_holidays(day.year)

    def __repr__(self) -> str:
        return f"BankHolidays(extra_dates={sorted(self._extra)!r}, england={self._england})"


@lru_cache(maxsize=64)
def _england_holidays(year: int) -> frozenset[date]:
    # Built per year and frozen: the holidays object expands itself lazily on lookup, which is not
    # something to share between request threads.
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


@runtime_checkable
class Calendar(Protocol):
    def is_open(self, at: datetime) -> bool: ...

    def next_open(self, at: datetime) -> datetime: ...

    def next_close(self, at: datetime) -> datetime | None: ...

    def describe(self) -> str: ...


class AlwaysOpen:
    def is_open(self, at: datetime) -> bool:
        _require_aware(at)
        return True

    def next_open(self, at: datetime) -> datetime:
        _require_aware(at)
        return at.astimezone(UTC)

    def next_close(self, at: datetime) -> datetime | None:
        """None: it never closes."""
        _require_aware(at)
        return None

    def describe(self) -> str:
        return "24/7"

    def __repr__(self) -> str:
        return "AlwaysOpen()"


@dataclass(frozen=True)
class Window:
    """Open on `days` (0=Mon) from `start` to `end` local time. An end at or before the start runs past
    midnight and still belongs to its start day; start == end is a full 24 hours."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not all(0 <= d <= 6 for d in self.days):
            raise ValueError(f"window days must be a non-empty set of 0..6, got {sorted(self.days)}")
        object.__setattr__(self, "days", frozenset(self.days))

    def interval(self, day: date) -> tuple[datetime, datetime]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return _local_instant(day, self.start), _local_instant(end_day, self.end)

    def describe(self) -> str:
        # Midnight as a closing time reads as the end of the day, the way hours are published.
        end = "24:00" if self.end == time(0, 0) else f"{self.end:%H:%M}"
        return f"{format_days(self.days)} {self.start:%H:%M}-{end}"


# The days a weekly calendar keeps the intervals of (WeeklyCalendar._intervals): a fortnight and more.
_DAYS_KEPT = 32


class WeeklyCalendar:
    def __init__(
        self,
        windows: Iterable[Window],
        closed_on_bank_holidays: bool = False,
        bank_holidays: BankHolidays | None = None,
    ):
        self.windows = tuple(windows)
        if not self.windows:
            raise ValueError("a weekly calendar needs at least one opening window")
        self.closed_on_bank_holidays = closed_on_bank_holidays
        self.bank_holidays = bank_holidays if bank_holidays is not None else BankHolidays()
        self._by_day: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    def _intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The local date's opening intervals as UTC instants, sorted by start. Kept for the days last
        asked about: they depend on the date alone (the windows and holidays never change), and every
        call's routing and triage clock asks for today's and yesterday's again (docs/performance.md,
        "Intake's app CPU cut")."""
        found = self._by_day.get(day)
        if found is None:
            found = self._intervals_of(day)
            if len(self._by_day) >= _DAYS_KEPT:
                self._by_day.clear()  # (a whole-year report asks for every day: never more than this kept)
            self._by_day[day] = found
        return found

    def _intervals_of(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        if self.closed_on_bank_holidays and self.bank_holidays.is_holiday(day):
            return ()
        intervals = (w.interval(day) for w in self.windows if day.weekday() in w.days)
        # A window lying wholly inside the spring-forward gap has no real duration.
        return tuple(sorted((start, end) for start, end in intervals if start < end))

    def _open_until(self, at: datetime) -> datetime | None:
        """The end of the latest interval containing `at`, or None when closed at `at`."""
        today = at.astimezone(LONDON).date()
        # A window that started yesterday may still be running past midnight.
        ends = [
            end
            for day in (today - timedelta(days=1), today)
            for start, end in self._intervals(day)
            if start <= at < end
        ]
        return max(ends) if ends else None

    def is_open(self, at: datetime) -> bool:
        _require_aware(at)
        return self._open_until(at) is not None

    def next_open(self, at: datetime) -> datetime:
        _require_aware(at)
        first_day = at.astimezone(LONDON).date() - timedelta(days=1)
        # Starts increase with the local date, so the first day offering an interval that ends after
        # `at` holds the earliest answer.
        for offset in range(_SEARCH_DAYS):
            intervals = self._intervals(first_day + timedelta(days=offset))
            candidates = [max(start, at) for start, end in intervals if end > at]
            if candidates:
                return min(candidates).astimezone(UTC)
        raise ValueError(f"calendar never opens within {_SEARCH_DAYS} days of {at.isoformat()}")

    def next_close(self, at: datetime) -> datetime | None:
        """The first instant >= at when closed (`at` if closed now); None if it never closes."""
        _require_aware(at)
        cursor = at.astimezone(UTC)
        # Adjacent windows (e.g. every day 00:00-24:00) chain without a closure between them.
        for _ in range(2 * _SEARCH_DAYS):
            until = self._open_until(cursor)
            if until is None:
                return cursor
            cursor = until
        return None

    def describe(self) -> str:
        text = ", ".join(w.describe() for w in self.windows)
        return f"{text}, closed on bank holidays" if self.closed_on_bank_holidays else text

    def __repr__(self) -> str:
        return f"WeeklyCalendar({self.describe()!r})"


class ComplementCalendar:
    """Open exactly when `other` is closed ("whenever ASC is closed")."""

    def __init__(self, other: Calendar, label: str | None = None):
        if isinstance(other, AlwaysOpen):
            raise ValueError("the complement of an always-open calendar never opens")
        self.other = other
        self.label = label

    def is_open(self, at: datetime) -> bool:
        return not self.other.is_open(at)

    def next_open(self, at: datetime) -> datetime:
        closes = self.other.next_close(at)
        if closes is None:
            raise ValueError(f"calendar never opens: {self.describe()}")
        return closes.astimezone(UTC)

    def next_close(self, at: datetime) -> datetime | None:
        try:
            return self.other.next_open(at)
        except ValueError:
            _require_aware(at)
            return None

    def describe(self) -> str:
        if self.label:
            return f"whenever {self.label} is closed"
        return f"whenever closed: {self.other.describe()}"

    def __repr__(self) -> str:
        return f"ComplementCalendar({self.describe()!r})"


# --- building calendars from configuration data ---------------------------------------------------

_DAY_INDEX = {name.lower(): i for i, name in enumerate(DAY_NAMES)}
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EVERY_DAY = {"every day", "everyday", "daily", "all week", "mon-sun"}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def _day(token: str) -> int:
    key = token.strip().lower()
    if key in _DAY_INDEX:
        return _DAY_INDEX[key]
    if key in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(key)
    raise CalendarSpecError(f"unknown day {token.strip()!r} (use Mon, Tue, ... Sun)")


def parse_days(spec: str | Iterable[str]) -> frozenset[int]:
    """"Mon-Fri", "every day", "Sat,Sun", "Fri-Mon" (wraps), or a list of such parts."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    days: set[int] = set()
    for part in parts:
        if not isinstance(part, str) or not part.strip():
            raise CalendarSpecError(f"bad days entry {part!r}")
        if part.strip().lower() in _EVERY_DAY:
            days.update(range(7))
        elif "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            span = (last - first) % 7
            days.update((first + i) % 7 for i in range(span + 1))
        else:
            days.add(_day(part))
    if not days:
        raise CalendarSpecError("no days given")
    return frozenset(days)


def format_days(days: Iterable[int]) -> str:
    ordered = sorted(set(days))
    if len(ordered) == 7:
        return "every day"
    runs: list[list[int]] = []
    for d in ordered:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(
        f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" if len(r) > 2 else ",".join(DAY_NAMES[d] for d in r)
        for r in runs
    )


def parse_time(text: Any, *, closing: bool = False) -> time:
    """"HH:MM"; a closing time may be "24:00" (midnight at the end of the day)."""
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        # Unquoted 20:00 reaches us as the number 1200 (YAML 1.1 base 60), hence the hint.
        raise CalendarSpecError(f'bad time {text!r} (use "HH:MM" in quotes, e.g. "08:30")')
    hours, minutes = int(match[1]), int(match[2])
    if closing and (hours, minutes) == (24, 0):
        return time(0, 0)
    if hours > 23 or minutes > 59:
        raise CalendarSpecError(f"bad time {text!r}")
    return time(hours, minutes)


def calendar_from_spec(
    spec: Any,
    calendars_by_name: Mapping[str, Calendar],
    bank_holidays: BankHolidays | None = None,
) -> Calendar:
    """Build a calendar from data: "always", {"complement_of": NAME}, or
    {"hours": [{"days": "Mon-Fri", "open": "08:30", "close": "17:00"}], "closed_on_bank_holidays": true}."""
    if isinstance(spec, str) and spec.strip().lower() in {"always", "24/7"}:
        return AlwaysOpen()
    if not isinstance(spec, Mapping):
        raise CalendarSpecError(
            f"calendar must be 'always', {{complement_of: CODE}} or {{hours: [...]}}, got {spec!r}"
        )
    if "complement_of" in spec:
        if set(spec) != {"complement_of"}:
            raise CalendarSpecError("complement_of takes no other keys")
        name = spec["complement_of"]
        if name not in calendars_by_name:
            raise CalendarSpecError(f"unknown calendar reference {name!r} in complement_of")
        try:
            return ComplementCalendar(calendars_by_name[name], label=str(name))
        except ValueError as exc:
            raise CalendarSpecError(f"complement_of {name!r}: {exc}") from None
    unknown = set(spec) - {"hours", "closed_on_bank_holidays"}
    if unknown:
        raise CalendarSpecError(f"unknown calendar keys: {', '.join(sorted(map(str, unknown)))}")
    hours = spec.get("hours")
    if not isinstance(hours, list) or not hours:
        raise CalendarSpecError("hours must be a non-empty list of {days, open, close}")
    closed_on_bh = spec.get("closed_on_bank_holidays", False)
    if not isinstance(closed_on_bh, bool):
        raise CalendarSpecError("closed_on_bank_holidays must be true or false")
    windows = []
    for entry in hours:
        if not isinstance(entry, Mapping) or set(entry) != {"days", "open", "close"}:
            raise CalendarSpecError(f"each hours entry needs exactly days, open, close; got {entry!r}")
        windows.append(
            Window(
                parse_days(entry["days"]),
                parse_time(entry["open"]),
                parse_time(entry["close"], closing=True),
            )
        )
    return WeeklyCalendar(windows, closed_on_bh, bank_holidays)


# --- working-time arithmetic (generic over the Calendar protocol) ---------------------------------
#
# These are built only on is_open / next_open / next_close, so they work for every calendar kind.
# Instants are compared and added in UTC: an hour of open time is a real hour on both sides of a
# GMT/BST change, while day boundaries and closing times are local (London) wall-clock times.


def require_aware(at: datetime) -> None:
    """Refuse anything but a timezone-aware datetime (public for the other domain modules)."""
    _require_aware(at)


def local_midnight(day: date) -> datetime:
    """The UTC instant of 00:00 London time on `day` (midnight is never inside a clock change)."""
    if isinstance(day, datetime):
        raise TypeError("local_midnight takes a local date, not a datetime")
    return _local_instant(day, time(0, 0))


def local_date(at: datetime) -> date:
    """The London calendar date of an instant."""
    _require_aware(at)
    return at.astimezone(LONDON).date()


def open_intervals(calendar: Calendar, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's opening time within [start, end) as UTC (open, close) pairs in order, clipped to
    the range. Adjacent windows are merged into one interval."""
    _require_aware(start)
    _require_aware(end)
    cursor, end = start.astimezone(UTC), end.astimezone(UTC)
    while cursor < end:
        try:
            cursor = calendar.next_open(cursor).astimezone(UTC)
        except ValueError:
            return  # never opens again within the search horizon, so not before `end` either
        if cursor >= end:
            return
        closes = calendar.next_close(cursor)
        stop = end if closes is None else min(closes.astimezone(UTC), end)
        yield cursor, stop
        cursor = stop


def add_open_time(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The instant by which `duration` of the calendar's open time has passed, counting from `start`
    (or from the next opening if closed at `start`). With a positive duration the calendar is open
    just before the answer, which may be a closing instant."""
    _require_aware(start)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    cursor, remaining = start.astimezone(UTC), duration
    while True:
        cursor = calendar.next_open(cursor).astimezone(UTC)
        closes = calendar.next_close(cursor)
        if closes is None or closes - cursor >= remaining:
            return cursor + remaining
        remaining -= closes - cursor
        cursor = closes.astimezone(UTC)


def working_day_close(calendar: Calendar, day: date) -> datetime | None:
    """The close of a working day: the end of the calendar's last opening on that London date, or the
    following local midnight if it is still open then (24/7, or a window running past midnight).
    None if the calendar has no opening time on that date (not a working day)."""
    last = None
    for _, close in open_intervals(calendar, local_midnight(day), local_midnight(day + timedelta(days=1))):
        last = close
    return last


def is_working_day(calendar: Calendar, day: date) -> bool:
    """A working day is a London date on which the calendar has some opening time."""
    return working_day_close(calendar, day) is not None


def next_working_day(calendar: Calendar, day: date) -> date:
    """The first working day strictly after `day`."""
    # The first open instant from the next local midnight lies on the first later date with open time.
    return local_date(calendar.next_open(local_midnight(day + timedelta(days=1))))


def working_day_of(calendar: Calendar, at: datetime) -> date:
    """The working day a clock starting at `at` belongs to: `at`'s own date if the calendar is open
    then or opens again later that date, otherwise the next working day."""
    return local_date(calendar.next_open(at))
