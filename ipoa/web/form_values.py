"""Values read from the pages' forms the same way wherever they are posted (the call page, the
professional's referral page, the supervisor's lists): the version a form was rendered at, dates typed
into day / month / year boxes and times typed as HH:MM (domain/date_parts.py), and errors put in the
order their fields appear on the page."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from ..domain import date_parts
from ..domain import field_messages as fm

# Sent to the use case in place of a date the boxes did not make: the use case refuses it, so nothing is
# stored and every other field is still checked; the view shows its own message for the date instead.
UNREADABLE = "unreadable"


def expected_version(form) -> int:
    """The version a form was rendered at; 0 (never current) when missing or garbled, so it conflicts."""
    try:
        return int(form.get("expected_version", ""))
    except ValueError:
        return 0


def part_names(name: str, *, with_time: bool = False) -> list[str]:
    """A date input's boxes: <name>-day, <name>-month, <name>-year (and <name>-time)."""
    return [f"{name}-{part}" for part in (*date_parts.DATE_PARTS, *(("time",) if with_time else ()))]


def typed(form, name: str, *, with_time: bool = False) -> dict[str, str]:
    """What was typed into a date input's boxes, to show again."""
    return {key: form.get(key, "") for key in part_names(name, with_time=with_time)}


@dataclass(frozen=True)
class DateField:
    """A date input as read: `value` for the use case (ISO text, None when left empty, or UNREADABLE),
    and when the boxes did not make a date, the message and the boxes to highlight."""

    value: str | None
    error: str | None = None
    parts: list[str] = field(default_factory=list)


def _read(parsed: date | date_parts.PartsProblem | None, key: str) -> DateField:
    if parsed is None:
        return DateField(None)
    if isinstance(parsed, date_parts.PartsProblem):
        params: dict[str, object] = {"year": "1941" if key == "subject.date_of_birth" else "2026", **parsed.params}
        return DateField(UNREADABLE, fm.message(key, parsed.kind, **params), list(parsed.parts))
    return DateField(parsed.isoformat())  # a date, or an aware datetime (a date too)


def read_date(form, name: str, key: str) -> DateField:
    """A date from the boxes <name>-day, -month, -year; key: its field in domain/field_messages.py."""
    day, month, year = (form.get(k, "") for k in part_names(name))
    return _read(date_parts.parse_date(day, month, year), key)


def read_date_time(form, name: str, key: str, *, after: datetime | None = None) -> DateField:
    """A UK date and 24-hour time from the boxes <name>-day, -month, -year, -time, as a UTC instant; `after`:
    the time must be ahead of this instant (domain/date_parts.london_instant: the repeated hour)."""
    day, month, year, at = (form.get(k, "") for k in part_names(name, with_time=True))
    return _read(date_parts.parse_date_time(day, month, year, at, after=after), key)


def has_parts(form, name: str) -> bool:
    return any(k in form for k in part_names(name, with_time=True))


def in_page_order(errors: Mapping[str, str], order: Iterable[str]) -> dict[str, str]:
    """Errors in the order their fields appear on the page (the error summary lists them so); any
    other key after them, as it came."""
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))


__all__ = ["UNREADABLE", "DateField", "expected_version", "part_names", "typed", "read_date", "read_date_time",
           "has_parts", "in_page_order"]
