"""Times as a professional reads them in an SMS, and the pattern a template's time field must match."""
from __future__ import annotations

import re
from datetime import date, datetime

from ..calendar import LONDON
from ..date_parts import london_clock

__all__ = ["LOCAL_TIME_PATTERN", "local_time_text"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# What local_time_text writes: '14:30' or 'Mon 23 Nov 14:30', and in the hour that happens twice a year
# '01:30 BST' / 'Sun 25 Oct 01:30 GMT' (domain/date_parts.py, repeated_hour_zone).
LOCAL_TIME_PATTERN = re.compile(
    rf"(?:(?:{'|'.join(_DAYS)}) (?:[1-9]|[12][0-9]|3[01]) (?:{'|'.join(_MONTHS)}) )?"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?: BST| GMT)?"
)


def local_time_text(at: datetime, now: datetime | None = None) -> str:
    """The time a professional reads in an SMS: Europe/London, '14:30' when it falls on the same
    local day as `now`, otherwise 'Mon 23 Nov 14:30'; a time in the hour that happens twice says which
    reading, '01:30 GMT' (date_parts.london_clock, the rule for every time staff read). Names are spelt out
    here rather than taken from strftime so the server's locale cannot change them (or their length)."""
    if at.tzinfo is None or (now is not None and now.tzinfo is None):
        raise ValueError("local_time_text needs timezone-aware datetimes (instants are stored in UTC)")
    local = at.astimezone(LONDON)
    clock = london_clock(at, "%H:%M")
    today: date | None = now.astimezone(LONDON).date() if now is not None else None
    if local.date() == today:
        return clock
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {clock}"
