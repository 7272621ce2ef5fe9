"""Need-to-know: who may see and change a patient's record. One policy, as data: for each role, what each
relationship to a record allows. Anything the table does not grant is refused. The service layer asks
`decide` for every read and write of identifiable data (service/access.py); no view checks on its own.

The rules come from docs/domain.md, "Information governance": staff see identifiable data only where
they have a legitimate relationship (their centre's calls and transfers; their service's referrals);
figures and counts are not identifiable and may be shown more widely; break-glass opens one record
outside the relationship, for a limited time, with a reason, and every use is reviewed by a supervisor.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import field_messages as fm
from .meaning import SERVICE
from .validation import text_problem

# How a user can be related to a call, strongest first (the first that grants an action is recorded as
# the reason for an access).
RELATIONSHIPS: dict[str, str] = {
    "own_centre": "the call is with the user's centre",
    "transferred": "the call was transferred to or from the user's centre",
    "own_service": "a referral on the call is to the user's service (open, or closed in the last 72 hours)",
    "break_glass": "the user opened it by break-glass, with a reason, for a limited time",
}

ACTIONS: dict[str, str] = {
    "view": "see the call's identifiable details (call page, API, CSV export)",
    "act": "change the call: log, triage, route, refer, promise a callback, record consent, "
           "re-route or escalate its referrals",
    # Moving a call makes another centre its own for good: never under break-glass, which opens one record
    # for a limited time (docs/information-governance.md, section 4).
    "transfer": "move the call to another centre (a transition with the move_centre effect)",
    "view_referral": "see a referral to one's own service, with the details needed to act on it",
    "act_referral": "accept, decline, start or complete a referral to one's own service",
    "view_access_log": "see who has viewed the call's record",
}

# role -> relationship -> actions. Admins configure the service and its users: no patient details.
POLICY: dict[str, dict[str, frozenset[str]]] = {
    "handler": {
        "own_centre": frozenset({"view", "act", "transfer"}),
        "transferred": frozenset({"view"}),
        "break_glass": frozenset({"view", "act"}),
    },
    "supervisor": {
        "own_centre": frozenset({"view", "act", "transfer", "view_access_log"}),
        "transferred": frozenset({"view", "view_access_log"}),
        "break_glass": frozenset({"view", "act"}),
    },
    "professional": {
        "own_service": frozenset({"view_referral", "act_referral"}),
        "break_glass": frozenset({"view"}),
    },
    "admin": {},
}

BREAK_GLASS_REASONS: dict[str, str] = {
    "immediate_risk_to_life": "Immediate risk to life",
    "safeguarding_concern": "Safeguarding concern",
    "transfer_in_progress": "Transfer in progress",
    "continuity_of_care_out_of_hours": "Continuity of care out of hours",
    "other": "Other (say why in the note)",
}
BREAK_GLASS_NOTE_REQUIRED = frozenset({"other"})
BREAK_GLASS_FOR = timedelta(minutes=60)
NOTE_MAX = 2000


def may_break_glass(role: str) -> bool:
    return "break_glass" in POLICY.get(role, {})


@dataclass(frozen=True)
class Subject:
    """Who is asking: their role, home centre (handlers, supervisors) and service (professionals)."""

    username: str
    role: str
    centre: str | None = None
    service: str | None = None


# How long a service keeps its relationship with a call after its referral there closed (declined, completed,
# cancelled, re-routed elsewhere): long enough to finish the paperwork or answer a question about it, over a
# weekend; not for good. Need to know (docs/information-governance.md, section 3): a team that declined a
# referral, or finished its visit, has no need to read the person's details, or what has happened since,
# months later.
REFERRAL_ACCESS_AFTER_CLOSE = timedelta(hours=72)


def referring_services(referrals: Iterable[tuple[str, datetime | None]], now: datetime) -> tuple[str, ...]:
    """The services a call's referrals relate it to now: (service, closed_at) of each referral; a service
    counts while one of its referrals is open, or closed no more than REFERRAL_ACCESS_AFTER_CLOSE ago."""
    return tuple(dict.fromkeys(service for service, closed_at in referrals
                               if closed_at is None or now - closed_at <= REFERRAL_ACCESS_AFTER_CLOSE))


@dataclass(frozen=True)
class RecordFacts:
    """What the policy needs to know about a call: where it is, where it has been, which services it
    was referred to, and whether this user holds a live break-glass grant for it."""

    centre: str
    centres: tuple[str, ...]
    services: tuple[str, ...] = ()
    break_glass: bool = False


def relationships(subject: Subject, record: RecordFacts) -> list[str]:
    out = []
    if subject.centre and subject.centre == record.centre:
        out.append("own_centre")
    elif subject.centre and subject.centre in record.centres:
        out.append("transferred")
    if subject.service and subject.service in record.services:
        out.append("own_service")
    if record.break_glass:
        out.append("break_glass")
    return out


def decide(subject: Subject, record: RecordFacts, action: str) -> str | None:
    """The relationship that allows subject to do action on record, or None (refused)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    granted = POLICY.get(subject.role, {})
    for relationship in relationships(subject, record):
        if action in granted.get(relationship, ()):
            return relationship
    return None


def break_glass_would_allow(subject: Subject, action: str) -> bool:
    return action in POLICY.get(subject.role, {}).get("break_glass", ())


def check_break_glass_request(reason: object, note: object) -> dict[str, str]:
    """Field errors of a break-glass request ({} when it may go ahead)."""
    errors: dict[str, str] = {}
    if not isinstance(reason, str) or reason not in BREAK_GLASS_REASONS:
        errors["reason"] = fm.message("break_glass.reason", fm.REQUIRED if reason in (None, "") else fm.CHOOSE)
    if note is not None and not isinstance(note, str):
        errors["note"] = fm.message("break_glass.note", fm.TYPE)
    elif note is not None and len(note) > NOTE_MAX:
        errors["note"] = fm.message("break_glass.note", fm.TOO_LONG, max=NOTE_MAX)
    elif note is not None and (problem := text_problem(note, multiline=True, field="note")):
        errors["note"] = problem  # a NUL, a bidi override: never stored
    elif isinstance(reason, str) and reason in BREAK_GLASS_NOTE_REQUIRED and not (note or "").strip():
        errors["note"] = fm.message("break_glass.note", fm.NOTE_NEEDED)
    return errors


# The effect of a call transition that moves the call to another centre (domain/guards.py).
MOVES_CENTRE = "move_centre"


def call_trigger_action(effects: tuple[str, ...] | frozenset[str]) -> str:
    """The policy action a call transition needs, by its effects: moving the call to another centre is
    `transfer`; any other change is `act`."""
    return "transfer" if MOVES_CENTRE in effects else "act"


def referral_trigger_action(roles: frozenset[str]) -> str:
    """The policy action a referral trigger needs, by its roles in the referral's workflow (domain/meaning.py):
    a trigger with the role `service` (accept, start, complete, decline) is the receiving service's
    (`act_referral`); any other (withdraw) is the referring centre's (`act`)."""
    return "act_referral" if SERVICE in roles else "act"


def may_fire_referral_trigger(subject: Subject, record: RecordFacts, referral_service: str,
                              roles: frozenset[str]) -> bool:
    """Whether subject may fire a referral trigger with these roles on a referral to referral_service: the
    one rule for the buttons a page shows and for what its POST accepts. The receiving service's triggers
    are for that service's own professionals only (not the referrer's, nor another service's)."""
    action = referral_trigger_action(roles)
    if action == "act_referral" and subject.service != referral_service:
        return False
    return decide(subject, record, action) is not None
