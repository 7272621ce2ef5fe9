"""The period a report covers (whole Europe/London days, from/to inclusive) and its scope (every centre
and service, one centre, one service, or a centre's referrals to one service), and reading both from
the report form's parameters."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .. import field_messages as fm
from ..calendar import LONDON
from ..date_parts import DATE_PARTS, PartsProblem, parse_date
from ..validation import EARLIEST_DAY, LATEST_DAY, day_in_range

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "Period", "ReportInputError", "Scope", "default_period", "london_midnight",
           "parse_params"]

# A report may cover at most this many days: a year and a day (a leap year's whole year fits).
MAX_DAYS = 366
DEFAULT_DAYS = 30


class ReportInputError(ValueError):
    """Bad report parameters: {field: message}, and for a date, the boxes to highlight {field: parts}."""

    def __init__(self, errors: dict[str, str], parts: dict[str, list[str]] | None = None):
        self.errors = errors
        self.parts = parts or {}
        super().__init__("; ".join(errors.values()))


def london_midnight(day: date) -> datetime:
    """The UTC instant a Europe/London date begins (clock changes happen at 01:00/02:00, never midnight)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    first: date  # inclusive, Europe/London dates
    last: date

    @property
    def start(self) -> datetime:
        return london_midnight(self.first)

    @property
    def end(self) -> datetime:  # exclusive
        return london_midnight(self.last + timedelta(days=1))

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.length)]

    def previous(self) -> Period:
        """The period of equal length just before this one."""
        return Period(self.first - timedelta(days=self.length), self.first - timedelta(days=1))

    @property
    def label(self) -> str:
        def fmt(d: date) -> str:
            return f"{d.day} {d:%b %Y}"

        return fmt(self.first) if self.first == self.last else f"{fmt(self.first)} to {fmt(self.last)}"


def default_period(now: datetime) -> Period:
    """The last 30 days up to and including today (Europe/London): what is happening now, the first
    question a supervisor asks; a board's monthly report chooses its month."""
    today = now.astimezone(LONDON).date()
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


@dataclass(frozen=True)
class Scope:
    centre: str | None = None  # the centre that logged the calls
    service: str | None = None  # the service referred to

    @property
    def calls_apply(self) -> bool:
        """Call measures make no sense for one service: they are shown as not applicable."""
        return self.service is None

    @property
    def label(self) -> str:
        if self.centre and self.service:
            return f"centre {self.centre}, referrals to {self.service}"
        if self.centre:
            return f"centre {self.centre}"
        if self.service:
            return f"service {self.service}"
        return "all centres and services"


def _day(args: Mapping[str, Any], name: str) -> date | PartsProblem | None:
    """A date of the form: typed into its day, month and year boxes (<name>-day, -month, -year), read
    whatever the browser's locale; or, from a link or a bookmark, YYYY-MM-DD in <name>. None: not given."""
    if any(f"{name}-{part}" in args for part in DATE_PARTS):
        return parse_date(*(str(args.get(f"{name}-{part}") or "") for part in DATE_PARTS))
    raw = str(args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return PartsProblem(fm.FORMAT, DATE_PARTS)


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def parse_params(args: Mapping[str, Any], *, now: datetime, centres: Iterable[str],
                 services: Iterable[str]) -> tuple[Period, Scope]:
    """Validate the report form's GET parameters (from, to: day, month and year boxes, or YYYY-MM-DD;
    centre, service: codes or blank). Raises ReportInputError with a message per field
    (domain/field_messages.py) and the date boxes to highlight."""
    errors: dict[str, str] = {}
    parts: dict[str, list[str]] = {}

    def refuse(name: str, kind: str, marked: Iterable[str] = DATE_PARTS, **params: object) -> None:
        errors[name] = fm.message(f"report.{name}", kind, **params)
        parts[name] = list(marked)

    default = default_period(now)
    given = {name: _day(args, name) for name in ("from", "to")}
    first: date | None = default.first
    last: date | None = default.last
    if given["from"] is not None or given["to"] is not None:
        first = last = None
        for name, value in given.items():
            if value is None:
                refuse(name, fm.REQUIRED)
            elif isinstance(value, PartsProblem):
                refuse(name, value.kind, value.parts, **value.params)
            elif not day_in_range(value):  # far-off days overflowed the previous period's arithmetic
                refuse(name, fm.RANGE, start=_long(EARLIEST_DAY), end=_long(LATEST_DAY))
            elif name == "from":
                first = value
            else:
                last = value
        if first is not None and last is not None:
            if first > last:
                refuse("to", fm.TOO_EARLY)
            elif (last - first).days + 1 > MAX_DAYS:
                refuse("to", fm.TOO_FAR, days=MAX_DAYS)
            elif first > now.astimezone(LONDON).date():
                refuse("from", fm.FUTURE)
    centre = (args.get("centre") or "").strip().upper() or None
    service = (args.get("service") or "").strip().upper() or None
    if centre is not None and centre not in set(centres):
        errors["centre"] = fm.message("centre", fm.UNKNOWN)
    if service is not None and service not in set(services):
        errors["service"] = fm.message("service", fm.UNKNOWN)
    if errors or first is None or last is None:  # both set once no date was refused
        raise ReportInputError(errors, parts)
    return Period(first, last), Scope(centre, service)
