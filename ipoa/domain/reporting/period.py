"""The period a report covers (whole Europe/London days, from/to inclusive) and its scope (every centre
and service, one centre, one service, or a centre's referrals to one service), and reading both from
the report form's parameters."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ..calendar import LONDON
from ..validation import EARLIEST_DAY, LATEST_DAY, day_in_range

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "Period", "ReportInputError", "Scope", "default_period", "london_midnight",
           "parse_params"]

# A report may cover at most this many days: a year and a day (a leap year's whole year fits).
MAX_DAYS = 366
DEFAULT_DAYS = 30


class ReportInputError(ValueError):
    """Bad report parameters: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
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


def parse_params(args: dict[str, Any], *, now: datetime, centres: Iterable[str],
                 services: Iterable[str]) -> tuple[Period, Scope]:
    """Validate the report form's GET parameters (from, to: YYYY-MM-DD; centre, service: codes or blank).
    Raises ReportInputError with a message per field."""
    errors: dict[str, str] = {}
    default = default_period(now)
    raw_from = (args.get("from") or "").strip()
    raw_to = (args.get("to") or "").strip()
    first: date | None = default.first
    last: date | None = default.last
    if raw_from or raw_to:
        first = last = None
        for name, raw in (("from", raw_from), ("to", raw_to)):
            if not raw:
                errors[name] = f"Enter the '{name}' date as well (YYYY-MM-DD)."
                continue
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                errors[name] = f"'{raw[:40]}' is not a date: use YYYY-MM-DD, e.g. 2026-10-31."
                continue
            if not day_in_range(value):  # far-off days overflowed the previous period's arithmetic
                errors[name] = f"Give a date between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}."
                continue
            if name == "from":
                first = value
            else:
                last = value
        if first is not None and last is not None:
            if first > last:
                errors["to"] = "The 'to' date must be on or after the 'from' date."
            elif (last - first).days + 1 > MAX_DAYS:
                errors["to"] = f"A report covers at most {MAX_DAYS} days."
            elif first > now.astimezone(LONDON).date():
                errors["from"] = "The period starts in the future: there is nothing to report yet."
    centre = (args.get("centre") or "").strip().upper() or None
    service = (args.get("service") or "").strip().upper() or None
    if centre is not None and centre not in set(centres):
        errors["centre"] = f"Unknown centre '{centre[:16]}'."
    if service is not None and service not in set(services):
        errors["service"] = f"Unknown service '{service[:16]}'."
    if errors or first is None or last is None:  # both set once no date was refused
        raise ReportInputError(errors)
    return Period(first, last), Scope(centre, service)
