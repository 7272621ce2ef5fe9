"""The fields an SMS template may use, the longest value each may have and the format it must match.

Deliberately left out: service_name (names run to 100 characters, e.g. FCPW's, and would crowd out the
link; the code is what staff use and the secure page shows the name), centre names, need (it says what
is wrong with the person), any reason (a decline reason is free text and may hold anything: it stays on
the secure page), and everything about the person. `link` is not a `Field`: its format depends on the
link base (templates.SmsTemplates checks it).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .links import LINK_CODE_LENGTH, LINK_TOKEN_LENGTH, LINK_TOKEN_MIN
from .references import REF_PATTERN
from .timetext import LOCAL_TIME_PATTERN

__all__ = ["ALLOWED_FIELDS", "FIELDS", "FIELD_FORMATS", "FIELD_MAX_LENGTHS", "URGENCY_TEXT", "Field"]

# urgency codes (model.URGENCY_RANK) as a professional reads them; the text form is accepted as well.
URGENCY_TEXT = MappingProxyType(
    {"emergency": "emergency", "urgent": "urgent", "same_day": "same day", "routine": "routine"}
)
_ACTIONS = ("ACCEPT", "DECLINE", "DONE", "STATUS")
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")  # the directory's code format
# Lower-case words only: a state or breach is a workflow word, never a sentence someone typed.
_WORDS = re.compile(r"[a-z]+(?:[ -][a-z]+)*")
_TIME_FORMAT = "a local time like 14:30 or Mon 23 Nov 14:30 (01:30 BST or 01:30 GMT in the hour that happens twice)"


@dataclass(frozen=True)
class Field:
    max_length: int
    worst: str  # max_length characters in the field's format: what loading renders with
    format: str  # for error messages and documentation
    pattern: re.Pattern[str] | None = None
    choices: Mapping[str, str] | None = None  # accepted value -> what is sent


# Codes get 6 characters: the directory's are 2-4, and a deployment adding its own needs some room,
# but every character given to a code is taken from the text around the link.
FIELDS: Mapping[str, Field] = MappingProxyType({
    "ref": Field(9, "K7M4-QX9Z", "a call reference like K7M4-QX9Z", REF_PATTERN),
    "service": Field(6, "MHCRHT", "a service code like CRT (up to 6 characters)", _CODE),
    "centre": Field(6, "CHSSPA", "a centre code like CHS (up to 6 characters)", _CODE),
    "urgency": Field(9, "emergency", "one of: " + ", ".join(sorted(set(URGENCY_TEXT.values()))),
                     choices={**URGENCY_TEXT, **{v: v for v in URGENCY_TEXT.values()}}),
    # A time in the hour that happens twice says which reading, " BST" or " GMT" (timetext.local_time_text):
    # "Sun 31 Oct 01:59 BST" is the longest a time can be, so every template is checked with it.
    "due": Field(20, "Sun 31 Oct 01:59 BST", _TIME_FORMAT, LOCAL_TIME_PATTERN),
    "sent_at": Field(20, "Sun 31 Oct 01:59 BST", _TIME_FORMAT, LOCAL_TIME_PATTERN),
    "state": Field(20, "awaiting first visit", "lower-case words like accepted or in progress "
                   "(underscores read as spaces), up to 20 characters", _WORDS),
    "breach": Field(20, "first visit not made", "lower-case words like not accepted, up to 20 "
                    "characters", _WORDS),
    "action": Field(7, "DECLINE", "one of: " + ", ".join(_ACTIONS), choices={a: a for a in _ACTIONS}),
    # How many escalations a digest stands for (a storm of breaches for one recipient: one text).
    "total": Field(4, "9999", "a whole number from 1 to 9999", re.compile(r"[1-9][0-9]{0,3}")),
    # A professional's name as their colleague reads it (the duty lead told of an OFF / ON text): staff, never
    # the person cared for; plain letters so it is GSM-7 (service/availability.py shortens or replaces others).
    "staff_name": Field(30, "Abcdefghij Klmnopqrst-Uvwxyzab", "a professional's name in plain letters, spaces, "
                  "hyphens, apostrophes and full stops, up to 30 characters", re.compile(r"[A-Za-z][A-Za-z .'-]*")),
})
assert all(len(f.worst) == f.max_length for f in FIELDS.values())

ALLOWED_FIELDS: frozenset[str] = frozenset({*FIELDS, "link"})
FIELD_MAX_LENGTHS: Mapping[str, int] = MappingProxyType({k: f.max_length for k, f in FIELDS.items()})
FIELD_FORMATS: Mapping[str, str] = MappingProxyType(
    {**{k: f.format for k, f in FIELDS.items()},
     "link": f"the secure page: <link base>/r/<a {LINK_CODE_LENGTH}-character code> (the length the templates "
             f"were loaded for; links of earlier texts: {LINK_TOKEN_MIN}-{LINK_TOKEN_LENGTH} URL-safe characters)"}
)
