"""Dates and times as people type them into separate boxes (the NHS.UK date input: day, month, year;
a time as HH:MM, 24-hour clock, UK time), read without the browser's locale: 05 / 11 / 1941 is
5 November 1941 whatever the browser thinks. A problem comes back as a field_messages kind and the
parts to highlight; the caller turns it into its field's message. And the other way: an instant as UK
wall-clock text (london_clock), with " BST" or " GMT" after a time in the hour that happens twice
(repeated_hour_zone), the one rule for every time shown or texted (docs/domain.md, "Time")."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from . import field_messages as fm
from .calendar import LONDON

DATE_PARTS = ("day", "month", "year")


@dataclass(frozen=True)
class PartsProblem:
    kind: str
    parts: tuple[str, ...]  # which inputs to highlight
    params: dict[str, object] = field(default_factory=dict)


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def parse_date(day: str, month: str, year: str) -> date | PartsProblem | None:
    """A date from its three boxes; None when all three are empty. Day and month take 1 or 2 digits
    ("5" and "05"), the year 4: "41" could be 1941 or 2041, so it is asked for in full."""
    given = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    if not any(given.values()):
        return None
    missing = [p for p in DATE_PARTS if not given[p]]
    if missing:
        return PartsProblem(fm.MISSING_PART, tuple(missing), {"part": _and(missing)})
    bad = [p for p in ("day", "month") if not (_digits(given[p]) and len(given[p]) <= 2)]
    if not _digits(given["year"]):
        bad.append("year")
    if bad:
        return PartsProblem(fm.INVALID, tuple(bad))
    if len(given["year"]) != 4:
        return PartsProblem(fm.YEAR_DIGITS, ("year",))
    d, m, y = int(given["day"]), int(given["month"]), int(given["year"])
    if not 1 <= m <= 12:
        return PartsProblem(fm.INVALID, ("month",) if 1 <= d <= 31 else ("day", "month"))
    try:
        return date(y, m, d)
    except ValueError:  # 31/02, 0/5, year 0000
        return PartsProblem(fm.INVALID, ("day",) if y >= 1 else ("year",))


_TIME = re.compile(r"(\d{1,2})[:.](\d{2})")


def parse_time(value: str) -> time | PartsProblem:
    """A 24-hour clock time, "14:30" (or "9:05", "14.30")."""
    text = value.strip()
    if not text:
        return PartsProblem(fm.TIME_MISSING, ("time",))
    match = _TIME.fullmatch(text) if text.isascii() else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return PartsProblem(fm.TIME_INVALID, ("time",))
    return time(int(match[1]), int(match[2]))


def london_instant(day: date, at: time, *, after: datetime | None = None) -> datetime | PartsProblem:
    """A UK wall-clock time on a day as an aware UTC instant. A time the clocks skip (01:00-01:59 on the last
    Sunday of March) does not exist and is refused. A time that happens twice (01:00-01:59 on the last Sunday
    of October) is its earlier reading, in BST; but a time that must be ahead of `after` (a promised
    callback, docs/domain.md "SLA clocks") is its first reading still ahead: during the second, GMT, 01:40,
    "01:50" is the GMT 01:50 in ten minutes, not the BST one already past. When neither is ahead it is the
    BST one, which the caller refuses as past."""
    local = datetime.combine(day, at, tzinfo=LONDON)
    instant = local.astimezone(UTC)
    if instant.astimezone(LONDON).replace(tzinfo=None) != local.replace(tzinfo=None):
        return PartsProblem(fm.TIME_GAP, ("time",), {"time": at.strftime("%H:%M")})
    if after is not None and instant <= after:
        later = local.replace(fold=1).astimezone(UTC)  # the GMT reading; the same instant outside the hour
        if later > after:
            return later
    return instant


def repeated_hour_zone(instant: datetime) -> str | None:
    """"BST" or "GMT" when the instant's UK wall-clock time happens twice that day (01:00-01:59 on the last
    Sunday of October: first in BST, then again in GMT), saying which reading it is; None for every other
    instant, whose wall time says it alone. The one rule for every time shown to staff or texted
    (docs/domain.md, "Time")."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("repeated_hour_zone needs a timezone-aware instant (instants are stored in UTC)")
    local = instant.astimezone(LONDON)
    # The same wall time read the other way round the change has another offset only when it happens twice.
    other = local.replace(fold=1 - local.fold)
    return local.tzname() if other.utcoffset() != local.utcoffset() else None


# strftime directives that write (part of) a time of day: the zone goes after the last of them.
_TIME_DIRECTIVES = frozenset("HIMSpTRXrc")


def london_clock(instant: datetime, fmt: str = "%a %d %b %H:%M") -> str:
    """An instant as a UK wall-clock time in `fmt` (strftime), with " BST" or " GMT" after the time when that
    wall time happens twice (repeated_hour_zone), so that "01:50" says which: "Sun 25 Oct 01:50 GMT",
    "01:50 GMT on Sun 25 Oct". A format without a time of day ("%a %d %b") gets nothing: a date is never
    ambiguous."""
    zone = repeated_hour_zone(instant)
    local = instant.astimezone(LONDON)
    if zone is None:
        return local.strftime(fmt)
    end, i = None, 0
    while i < len(fmt) - 1:
        if fmt[i] == "%":
            if fmt[i + 1] in _TIME_DIRECTIVES:
                end = i + 2
            i += 2
        else:
            i += 1
    return local.strftime(fmt if end is None else f"{fmt[:end]} {zone}{fmt[end:]}")


def parse_date_time(day: str, month: str, year: str, at: str, *,
                    after: datetime | None = None) -> datetime | PartsProblem | None:
    """Date boxes and a time box as a UTC instant; None when all four are empty. `after`: the time must be
    ahead of this instant (london_instant)."""
    parsed = parse_date(day, month, year)
    if parsed is None:
        return None if not at.strip() else PartsProblem(fm.MISSING_PART, DATE_PARTS, {"part": "day, month and year"})
    if isinstance(parsed, PartsProblem):
        return parsed
    clock = parse_time(at)
    if isinstance(clock, PartsProblem):
        return clock
    return london_instant(parsed, clock, after=after)


__all__ = ["DATE_PARTS", "PartsProblem", "parse_date", "parse_time", "london_instant", "london_clock",
           "parse_date_time", "repeated_hour_zone"]
