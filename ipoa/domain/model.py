"""The entities a workflow moves. Plain classes: the ORM maps them imperatively (adapters/orm.py),
so this module stays free of persistence concerns."""
from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

# No 0/O, 1/I/L, U: references are read out over the phone and typed from SMS.
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
URGENCY_RANK = {"emergency": 0, "urgent": 1, "same_day": 2, "routine": 3}


_REF_CHOICES = len(_REF_ALPHABET) ** 8


def time_ordered_id() -> str:
    """A row's key for rows written in their thousands and never looked up by anyone outside (outbox events,
    timers): 32 hex digits as uuid4's, but a UUIDv7 (RFC 9562, section 5.7): the Unix time in milliseconds
    (48 bits), the version (7), 12 random bits, the variant (binary 10) and 62 random bits. Why: a random key
    lands each new row's entry on a random page of the key's index, so each row inserted dirtied a page of
    its own, which SQLite's COMMIT writes to the WAL and PostgreSQL's WAL logs in full after each
    checkpoint; keys that grow with time go to the index's last page, together (docs/performance.md, "A
    step without the ORM session"). Made here rather than by a package's UUID object (Python's own
    uuid.uuid7 comes with 3.14): the uuid6 package's took four times as long, twice a workflow step. Not a
    clock reading: nothing reads the time back out of a key, so it takes no clock."""
    random = int.from_bytes(os.urandom(10), "big")  # 80 random bits: 12 and 62 of them used
    value = ((time.time_ns() // 1_000_000) << 80 | _UUID7_VERSION | (random >> 68) << 64 | _UUID_VARIANT
             | random & _LOW_62)
    return f"{value:032x}"


_UUID7_VERSION = 0x7 << 76
_UUID_VARIANT = 0b10 << 62
_LOW_62 = (1 << 62) - 1


def new_ref() -> str:
    # One draw of the eight characters (a number below 30^8, written in the alphabet's 30 digits) rather
    # than eight: the same uniform choice, at a third of the cost, on every intake (docs/performance.md,
    # "Intake's app CPU cut").
    n = secrets.randbelow(_REF_CHOICES)
    chars = []
    for _ in range(8):
        n, i = divmod(n, len(_REF_ALPHABET))
        chars.append(_REF_ALPHABET[i])
    return f"{''.join(chars[:4])}-{''.join(chars[4:])}"


class Call:
    def __init__(
        self,
        *,
        ref: str,
        centre: str,
        caller_type: str,
        caller_name: str | None,
        caller_phone: str | None,
        nhs_number: str | None,
        given_name: str,
        family_name: str,
        date_of_birth: date | None,
        postcode: str | None,
        locality: str | None,
        out_of_area: bool,
        need: str,
        urgency: str,
        summary: str,
        workflow: str,
        workflow_version: int,
        logged_at: datetime,
        logged_by: str,
        recommended: dict[str, Any] | None = None,
        updates_to: str | None = None,
        consent: str | None = None,
        address_line_1: str | None = None,
        town: str | None = None,
    ):
        self.ref = ref
        self.centre = centre
        self.origin_centre = centre
        # Every centre the call has been with, in order, space-separated: a transfer adds the new one.
        self.centre_path = centre
        # Consent to share the person's details outside the centre's organisation (domain/sharing.py),
        # and who recorded it when.
        self.consent = consent
        self.consent_recorded_by: str | None = logged_by if consent else None
        self.consent_recorded_at: datetime | None = logged_at if consent else None
        self.pseudonymised_at: datetime | None = None
        self.caller_type = caller_type
        self.caller_name = caller_name
        self.caller_phone = caller_phone
        self.nhs_number = nhs_number
        self.given_name = given_name
        self.family_name = family_name
        self.date_of_birth = date_of_birth
        self.postcode = postcode
        # Where the visit is: optional, as the caller gives it (patient-identifying, like the postcode).
        self.address_line_1 = address_line_1
        self.town = town
        self.locality = locality
        self.out_of_area = out_of_area
        self.need = need
        self.urgency = urgency
        self.summary = summary
        # The referring professional's mobile, when they asked to hear of accept/decline/complete.
        self.updates_to = updates_to
        self.workflow = workflow
        self.workflow_version = workflow_version
        self.state: str | None = None
        self.version = 0
        self.recommended = recommended
        self.route: dict[str, Any] | None = None
        self.callback_due: datetime | None = None
        self.logged_at = logged_at
        self.logged_by = logged_by
        self.queued_at = logged_at
        self.updated_at = logged_at
        self.closed_at: datetime | None = None
        # Set when an SLA clock of the call runs out (which clock, when); cleared by nothing: a breach
        # is part of the record.
        self.breach: str | None = None
        self.breached_at: datetime | None = None
        self.referrals: list[Referral] = []

    @property
    def urgency_rank(self) -> int:
        return URGENCY_RANK.get(self.urgency, 9)

    @property
    def centres(self) -> tuple[str, ...]:
        """Every centre the call has been with: where it was logged, and each transfer's destination."""
        return tuple((self.centre_path or self.centre).split())

    def moved_to(self, centre: str) -> None:
        self.centre = centre
        if centre not in self.centres:
            self.centre_path = f"{self.centre_path} {centre}".strip()

    def referral(self, referral_id: str) -> Referral | None:
        return next((r for r in self.referrals if r.id == referral_id), None)

    def __repr__(self) -> str:
        return f"<Call {self.ref} {self.state} v{self.version}>"


class Referral:
    def __init__(
        self,
        *,
        service: str,
        workflow: str,
        workflow_version: int,
        sent_at: datetime,
        sent_by: str,
        id: str | None = None,
    ):
        self.id = id or uuid.uuid4().hex
        self.service = service
        self.workflow = workflow
        self.workflow_version = workflow_version
        self.state: str | None = None
        self.version = 0
        self.sent_at = sent_at
        self.sent_by = sent_by
        self.updated_at = sent_at
        self.closed_at: datetime | None = None
        self.outcome_reason: str | None = None
        self.breach: str | None = None
        self.breached_at: datetime | None = None
        # Why the person's details could go to this service (domain/sharing.py).
        self.sharing_basis: str | None = None
        self.sharing_reason: str | None = None

    def __repr__(self) -> str:
        return f"<Referral {self.id[:8]} {self.service} {self.state} v{self.version}>"


@dataclass
class AuditEvent:
    """Who, when, from, to, trigger, why: one row per state change, never updated. seq and hash place
    it in the audit chain (domain/audit_chain.py); the unit of work sets both as it commits."""

    call_ref: str
    entity: str
    entity_id: str
    actor: str
    at: datetime
    from_state: str | None
    to_state: str
    trigger: str
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    hash: str | None = None

    CHAIN: ClassVar[str] = "audit"  # which chain it extends (domain/audit_chain.py)


@dataclass
class AccessEvent:
    """Someone saw a patient's identifiable details: who (username, role, centre), when, which record,
    through which route, and why they could (the relationship, or break-glass). No identifier of the
    patient: the call's reference is the key. Chained like audit events, never updated."""

    at: datetime
    username: str
    role: str
    centre: str | None
    call_ref: str
    route: str                 # "GET /calls/<ref>", "GET /api/v1/calls/<ref>", "CSV /reports/calls.csv", ...
    purpose: str               # the relationship that allowed it (own_centre, ...) or "break_glass"
    referral_id: str | None = None
    grant_id: int | None = None  # the break-glass grant, when purpose is break_glass
    seq: int | None = None
    hash: str | None = None

    CHAIN: ClassVar[str] = "access"  # which chain it extends (domain/audit_chain.py)


@dataclass
class SecurityEvent:
    """Sign-ins, failed sign-ins, sign-outs, users and tokens created or changed, SMS opt-outs, deploys.
    detail holds codes and names of staff, never a password or a patient identifier."""

    at: datetime
    kind: str                  # e.g. "sign_in", "sign_in_failed", "user_created", "sms_opt_out"
    actor: str                 # who did it: a username, "cli:<os user>", "system", "sms"
    subject: str | None = None  # who or what it was done to: a username, a token id, a professional id
    client: str | None = None  # the client address, for sign-ins
    detail: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    hash: str | None = None

    CHAIN: ClassVar[str] = "security"  # which chain it extends (domain/audit_chain.py)


@dataclass
class OutboxMessage:
    """An event the change causes, committed with it and relayed to workers afterwards.
    The payload carries references and codes only, never a patient identifier."""

    topic: str
    payload: dict[str, Any]
    created_at: datetime
    id: str = field(default_factory=time_ordered_id)
    published_at: datetime | None = None
    processed_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None


@dataclass
class Timer:
    """A running SLA clock, durable in the database: fired once when due by the scheduler, unless its
    clock stopped first (the call or referral moved on) or was started afresh."""

    kind: str                  # triage | acceptance | response | callback
    call_ref: str
    referral_id: str | None
    due_at: datetime           # UTC
    set_at_version: int        # the call's (or referral's) version when the clock started
    rule: str                  # what set the due time, for people: "urgent: 15 min"
    created_at: datetime
    id: str = field(default_factory=time_ordered_id)
    enqueued_at: datetime | None = None
    fired_at: datetime | None = None
    outcome: str | None = None  # breached | stopped | stale
    stopped_at: datetime | None = None  # the clock stopped (a breached clock keeps showing until then)

    @property
    def running(self) -> bool:
        return self.fired_at is None
