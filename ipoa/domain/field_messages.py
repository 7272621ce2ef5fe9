"""What a user reads when a field is wrong: one message per field and kind of problem, written for that
field in plain English (the NHS.UK and GOV.UK error message guidance: say what to do, name the field as
its label does, no full stop, no jargon). The web forms and the API's `fields` show the same text.

Keys are the API's field paths (the web views map them to form names); `message(key, kind)` picks the
message, falling back to a related kind of the same field, then to a generic one."""
from __future__ import annotations

from collections.abc import Mapping

# Kinds of problem.
REQUIRED = "required"  # missing or blank
TOO_LONG = "too_long"  # {max}
INVALID = "invalid"  # not a valid value of its kind (a phone number, a postcode, a real date)
FORMAT = "format"  # not written the way the API takes it (ISO 8601 dates and instants)
CHOOSE = "choose"  # not one of a fixed list of options
UNKNOWN = "unknown"  # a code that is not in the directory
TYPE = "type"  # the wrong JSON type (API clients only)
NOT_EXPECTED = "not_expected"  # a key the input does not have
CHECK_DIGIT = "check_digit"  # NHS number: 10 digits failing the Modulus 11 check
MISSING_PART = "missing_part"  # a date without its day, month or year: {part}
YEAR_DIGITS = "year_digits"  # a year not of 4 digits
FUTURE = "future"  # a date that must be in the past is not
TOO_EARLY = "too_early"
PAST = "past"  # an instant that must be in the future is not
TOO_FAR = "too_far"  # {days}
TIME_MISSING = "time_missing"
TIME_INVALID = "time_invalid"
TIME_GAP = "time_gap"  # a wall-clock time the clocks skip (the last Sunday of March): {time}
SAME = "same"  # the value it already has
CLOSED = "closed"  # {name}, {opens}
RANGE = "range"
OVERRIDE = "override"  # a reason to route otherwise than recommended: {route}
NOT_OFFERED = "not_offered"  # not the out-of-hours alternative the routing table offers now: {service}
NONE_OFFERED = "none_offered"  # the routing table offers no out-of-hours alternative now: {service}
NOT_PROFESSIONAL = "not_professional"
NEEDS_MOBILE = "needs_mobile"
NOTE_NEEDED = "note_needed"

_PHONE = "Enter the caller's phone number, like 01632 960 001 or 07700 900 982"
_DOB_FORMAT = "Enter the date of birth as year, month and day, like 1941-11-05"
_INSTANT = "as an ISO 8601 date and time with its offset, like 2026-11-23T14:30:00+00:00"
_CALLBACK_FORMAT = "Enter the callback time " + _INSTANT
_AT_FORMAT = "Enter the time " + _INSTANT
_VERSION = "Give the version of the record as you last read it, a whole number from 1: reload and try again"
_POSTCODE = "Enter a full UK postcode, like LE11 3AB"
_SERVICE = {
    REQUIRED: "Select the service to refer to",
    TYPE: "Give the service as its code, like DN",
    UNKNOWN: "Select a service from the list",
    SAME: "The referral is already to {service}: select another service",
    NOT_OFFERED: "{service} is not the routing table's out-of-hours alternative now: refer to the "
                 "alternative shown, or choose another route with a reason",
    NONE_OFFERED: "{service} is not an out-of-hours alternative now (the routing table offers none): "
                  "accept the recommended route, or choose another route with a reason",
}
_REASON = {
    REQUIRED: "Enter a reason",
    TOO_LONG: "Enter a reason of {max} characters or fewer",
    TYPE: "Enter the reason as text",
    OVERRIDE: "Enter a reason for choosing another route: the recommended route is to {route}",
}
_DATE_PARTS = {
    MISSING_PART: "{label} must include a {part}",
    YEAR_DIGITS: "{label} must have a year of 4 numbers, like {year}",
    INVALID: "{label} must be a real date",
}


def _report_date(which: str, example: str) -> dict[str, str]:
    """A report's 'from' or 'to' date, typed as day, month and year (old links give it as YYYY-MM-DD)."""
    return {
        REQUIRED: f"Enter the '{which}' date as well, for example {example}",
        MISSING_PART: f"The '{which}' date must include a {{part}}",
        YEAR_DIGITS: f"Enter the '{which}' date with a year of 4 numbers, for example {example}",
        INVALID: f"Enter the '{which}' date as a real date, for example {example}",
        RANGE: f"Enter a '{which}' date between {{start}} and {{end}}",
    }


FIELDS: dict[str, dict[str, str]] = {
    # Log a call.
    "centre": {
        REQUIRED: "Select the centre",
        UNKNOWN: "Select a centre from the list",
        TYPE: "Give the centre as its code, like CNH",
    },
    "need": {
        REQUIRED: "Select the need",
        UNKNOWN: "Select a need from the list",
        TYPE: "Give the need as its code, like housing",
    },
    "urgency": {
        REQUIRED: "Select the urgency",
        CHOOSE: "Select the urgency: emergency, urgent, same day or routine",
    },
    "summary": {
        REQUIRED: "Enter a summary of the call",
        TOO_LONG: "Enter a summary of {max} characters or fewer",
    },
    "caller": {TYPE: "Give the caller as an object with a type, a name and a phone number"},
    "caller.type": {
        REQUIRED: "Select who is calling",
        CHOOSE: "Select who is calling: the patient, a carer, a professional, a care home or the public",
    },
    "caller.name": {
        TOO_LONG: "Enter a caller's name of {max} characters or fewer",
        TYPE: "Enter the caller's name as text",
    },
    "caller.phone": {INVALID: _PHONE, TYPE: _PHONE},
    "caller.wants_updates": {
        TYPE: "Say whether the professional wants text updates: true or false",
        NOT_PROFESSIONAL: "Only a referring professional can ask for text updates",
        NEEDS_MOBILE: "Enter the professional's UK mobile number for text updates, like 07700 900 982",
    },
    "subject": {TYPE: "Give the person the call is about as an object with their names and details"},
    "subject.nhs_number": {
        INVALID: "Enter a 10-digit NHS number",
        TYPE: "Enter a 10-digit NHS number",
        CHECK_DIGIT: "Enter a valid NHS number: check each of the 10 digits",
    },
    "subject.given_name": {
        REQUIRED: "Enter the person's given name",
        TOO_LONG: "Enter a given name of {max} characters or fewer",
    },
    "subject.family_name": {
        REQUIRED: "Enter the person's family name",
        TOO_LONG: "Enter a family name of {max} characters or fewer",
    },
    "subject.date_of_birth": {
        **_DATE_PARTS,
        FORMAT: _DOB_FORMAT,
        TYPE: _DOB_FORMAT,
        FUTURE: "Date of birth must be in the past",
        TOO_EARLY: "Date of birth must be 1 January {year} or later",
    },
    "subject.postcode": {INVALID: _POSTCODE, TYPE: _POSTCODE},
    "subject.address_line_1": {
        TOO_LONG: "Enter address line 1 in {max} characters or fewer",
        TYPE: "Enter address line 1 as text, like 12 Station Road",
    },
    "subject.town": {
        TOO_LONG: "Enter a town or city of {max} characters or fewer",
        TYPE: "Enter the town or city as text, like Loughborough",
    },
    "consent": {
        REQUIRED: "Select whether the person consents to sharing their details",
        CHOOSE: "Select whether the person consents to sharing their details: given, refused, not asked, "
                "or lacks capacity (best interests)",
        SAME: "Consent is already recorded as '{current}': select a different answer",
    },
    # Actions on a call or a referral.
    "trigger": {
        REQUIRED: "Select an action",
        TOO_LONG: "Give the action's name in {max} characters or fewer",
    },
    "data": {TYPE: "Give the action's details as an object, like {{\"service\": \"DN\"}}"},
    "reason": _REASON,
    "expected_version": {REQUIRED: _VERSION, INVALID: _VERSION, TYPE: _VERSION, RANGE: _VERSION},
    "data.service": _SERVICE,
    "data.out_of_hours_alternative": {TYPE: "Give out_of_hours_alternative as true, or leave it out"},
    "service": _SERVICE,  # re-routing a referral
    "data.centre": {
        REQUIRED: "Select the centre to transfer to",
        TYPE: "Give the centre as its code, like ASC",
        UNKNOWN: "Select a centre from the list",
        SAME: "The call is already in this centre: select another centre",
        CLOSED: "{name} is closed now (opens {opens} UK time), so nobody would pick the call up: "
                "select a centre that is open",
    },
    "data.callback_at": {
        **_DATE_PARTS,
        REQUIRED: "Enter the date and time to call back",
        FORMAT: _CALLBACK_FORMAT,
        TYPE: _CALLBACK_FORMAT,
        TIME_MISSING: "Enter a time for the callback, like 14:30",
        TIME_INVALID: "Enter a time for the callback in the 24-hour clock, like 14:30",
        TIME_GAP: "There is no {time} on that day in UK time (the clocks go forward): enter another time",
        PAST: "Call back at must be in the future",
        TOO_FAR: "Call back at must be within {days} days",
    },
    # Sharing without consent: a lawful basis and a reason.
    "data.consent_override": {
        TYPE: "Give the lawful basis for sharing as an object with a basis and a reason",
        NOT_EXPECTED: "Give the lawful basis for sharing with a basis and a reason only",
    },
    "data.consent_override.basis": {
        REQUIRED: "Select the lawful basis for sharing without consent: vital interests, safeguarding or "
                  "legal duty",
    },
    "data.consent_override.reason": {
        REQUIRED: "Enter the reason for sharing without consent",
        TYPE: "Enter the reason for sharing without consent as text",
        TOO_LONG: "Enter a reason for sharing of {max} characters or fewer",
    },
    # Break-glass: opening a record outside the user's relationship.
    "break_glass.reason": {
        REQUIRED: "Select why you need to open this record",
        CHOOSE: "Select why you need to open this record",
    },
    "break_glass.note": {
        TYPE: "Enter the note as text",
        TOO_LONG: "Enter a note of {max} characters or fewer",
        NOTE_NEEDED: "Enter a note saying why you need this record: the reason 'other' needs one",
    },
    # Asking the routing table (API).
    "at": {REQUIRED: _AT_FORMAT, FORMAT: _AT_FORMAT, TYPE: _AT_FORMAT,
           RANGE: "Enter a time between {start} and {end}"},
    "postcode": {INVALID: _POSTCODE, TYPE: _POSTCODE},
    # The report form's period (web only: domain/reporting/period.py); centre and service use the keys above.
    "report.from": {
        **_report_date("from", "1 11 2026"),
        FUTURE: "The 'from' date must be today or earlier: there is nothing to report after today",
    },
    "report.to": {
        **_report_date("to", "30 11 2026"),
        TOO_EARLY: "The 'to' date must be the same as or after the 'from' date",
        TOO_FAR: "A report covers at most {days} days: enter a 'to' date nearer the 'from' date",
    },
}

# The date inputs' own labels, for the {label} of their messages.
DATE_LABELS = {"subject.date_of_birth": "Date of birth", "data.callback_at": "Call back at"}

# Kinds a field may not have its own message for, and the kind of the same field to use instead.
_RELATED = {TYPE: (INVALID, FORMAT, REQUIRED), CHOOSE: (REQUIRED,), UNKNOWN: (CHOOSE, REQUIRED),
            INVALID: (FORMAT, REQUIRED), FORMAT: (INVALID,), RANGE: (INVALID, REQUIRED)}

GENERIC = {
    REQUIRED: "Enter a value for this field",
    TOO_LONG: "Enter {max} characters or fewer",
    TYPE: "Give this field as {expected}",
    NOT_EXPECTED: "This field is not expected here: remove it",
    RANGE: "Enter a number from {min} to {max}",
    CHOOSE: "Choose one of the options",
    UNKNOWN: "Choose one of the options",
}
_FALLBACK = "Check this field and enter it again"


def message(key: str, kind: str, **params: object) -> str:
    """The message for a field (its API path, or a key of FIELDS) and a kind of problem."""
    field = FIELDS.get(key, {})
    template = field.get(kind)
    if template is None:
        template = next((field[k] for k in _RELATED.get(kind, ()) if k in field), None)
    if template is None:
        template = GENERIC.get(kind, _FALLBACK)
    values: dict[str, object] = {"label": DATE_LABELS.get(key, "Date"), **params}
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool):
            values[name] = f"{value:,}"  # 2,000 characters
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError):  # a parameter not given is a bug, never the user's problem
        return _FALLBACK


def messages_for(key: str) -> Mapping[str, str]:
    return FIELDS.get(key, {})


__all__ = ["FIELDS", "GENERIC", "DATE_LABELS", "message", "messages_for"]
