"""What the professional's referral page says about numbers and times, worded for a phone screen: numbers
to read and to tap (tel: links), and the acceptance deadline as "14:30 today"."""
from __future__ import annotations

from datetime import datetime

import phonenumbers

from ..domain.calendar import LONDON
from ..domain.date_parts import london_clock


def phone_display(number: str | None) -> str:
    """A stored number (E.164) as people write it in the UK: +447911123456 -> 07911 123456."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "GB")
    except phonenumbers.NumberParseException:
        return number
    if parsed.country_code != 44:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def tel_href(number: str | None) -> str:
    """A tel: link a phone dials: the number without spaces (E.164 as stored)."""
    return "tel:" + "".join(ch for ch in (number or "") if ch == "+" or ch.isdigit())


def local_deadline(due_at: datetime, now: datetime) -> str:
    """A deadline in UK time, relative to today: "14:30 today", "09:00 tomorrow", "17:00 yesterday",
    else "14:30 on Wed 4 Dec"; "01:30 GMT today" in the hour that happens twice (date_parts.london_clock)."""
    due, today = due_at.astimezone(LONDON), now.astimezone(LONDON).date()
    days = (due.date() - today).days
    when = {0: "today", 1: "tomorrow", -1: "yesterday"}.get(days)
    clock = london_clock(due_at, "%H:%M")
    return f"{clock} {when}" if when else f"{clock} on {due:%a} {due.day} {due:%b}"
