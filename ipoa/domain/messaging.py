"""Text messages to professionals: who is told what, and how a message's delivery status may move.
Pure: the gateways, the jobs and the tables live in adapters/ and service/."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

# Twilio's statuses arrive out of order: a status only ever moves up this ranking, so a late `sent`
# never overwrites `delivered`. `pending` and `submitting` are ours: created, and handed to the gateway
# with the outcome not yet known (the one state a crashed worker can leave behind).
STATUS_RANK = {
    "pending": 0, "submitting": 1, "accepted": 2, "queued": 2, "sending": 3, "sent": 4,
    "delivered": 5, "undelivered": 5, "failed": 5,
}
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# Referral states the referring professional hears about, and the template for each.
REFERRER_UPDATES = {"accepted": "referral_accepted", "declined": "referral_declined",
                    "completed": "referral_completed"}


@dataclass(frozen=True)
class Professional:
    id: int
    name: str
    mobile: str
    service: str
    on_duty: bool
    opted_out: bool = False


@dataclass(frozen=True)
class Recipient:
    kind: str  # on_duty | duty_lead | referrer
    to: str
    professional_id: int | None = None


class SmsMessage:
    def __init__(self, *, call_ref: str, referral_id: str | None, recipient: Recipient, template: str,
                 body: str, created_at: datetime, outbox_id: str | None = None):
        self.id = uuid.uuid4().hex
        self.call_ref = call_ref
        self.referral_id = referral_id
        self.recipient_kind = recipient.kind
        self.professional_id = recipient.professional_id
        self.to = recipient.to
        self.template = template
        self.body = body
        self.status = "pending"
        self.provider_sid: str | None = None
        self.error_code: int | None = None
        self.error_message: str | None = None
        self.attempts = 0
        self.outbox_id = outbox_id
        self.created_at = created_at
        self.updated_at = created_at
        self.submitted_at: datetime | None = None
        self.sent_at: datetime | None = None
        self.delivered_at: datetime | None = None
        self.next_attempt_at: datetime | None = None  # a held-back text is tried again then (the relay)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def apply_status(self, status: str, at: datetime, error_code: int | None = None,
                     error_message: str | None = None) -> bool:
        """Move to a reported status if it ranks higher; returns whether anything changed."""
        if status not in STATUS_RANK or self.final or STATUS_RANK[status] <= STATUS_RANK[self.status]:
            return False
        self.status = status
        self.updated_at = at
        if status == "sent":
            self.sent_at = at
        if status == "delivered":
            self.delivered_at = at
        if error_code is not None:
            self.error_code, self.error_message = error_code, error_message
        return True

    def __repr__(self) -> str:
        return f"<SmsMessage {self.id[:8]} {self.template} {self.status}>"


def referral_sent_recipients(service_code: str, professionals: Iterable[Professional],
                             duty_lead: str | None) -> list[Recipient]:
    """The service's on-duty professionals; the duty lead when nobody on duty can be texted."""
    on_duty = [Recipient("on_duty", p.mobile, p.id) for p in professionals
               if p.service == service_code and p.on_duty and not p.opted_out]
    if on_duty:
        return on_duty
    return [Recipient("duty_lead", duty_lead)] if duty_lead else []


def referrer_update(new_state: str, updates_to: str | None) -> tuple[Recipient, str] | None:
    """The referring professional's update for a referral's new state, if they asked for updates."""
    template = REFERRER_UPDATES.get(new_state)
    if template is None or not updates_to:
        return None
    return Recipient("referrer", updates_to), template


# What a breached clock is called in an escalation text (the template's `breach` field).
BREACH_WORDS = {"triage": "not triaged", "acceptance": "not accepted", "response": "no first contact",
                "callback": "callback overdue"}


def escalation_recipients(duty_lead: str | None, supervisor_mobiles: Iterable[str]) -> list[Recipient]:
    """A breach goes to the service's duty lead (referral clocks) and the receiving centre's supervisors
    who have a mobile; each number once."""
    out: list[Recipient] = []
    seen: set[str] = set()
    for kind, number in [("duty_lead", duty_lead), *(("supervisor", m) for m in supervisor_mobiles)]:
        if number and number not in seen:
            seen.add(number)
            out.append(Recipient(kind, number))
    return out


# -- sending, and trying again -------------------------------------------------------------------------
# A text's `next_attempt_at` says when the relay is to hand it to a worker (again) if nothing has moved it
# on by then; the relay looks every second, so no retry waits on anything but the database and the clock
# (not on RQ's scheduler, whose lock a killed worker holds for minutes). See service/sms.py.

# Back-off after the 1st, 2nd, ... transient failure (Twilio's 429, a 5xx, a time-out): about 2 minutes
# for the first six, then every minute.
RETRY_BACKOFF_SECONDS = (2, 5, 10, 20, 40, 60)
# Transient failures in a row before a text is given up as failed (listed on the exceptions panel for a
# phone follow-up): about 8 minutes of trying.
MAX_SEND_ATTEMPTS = 12
# A text claimed by a worker (`submitting`) with no outcome recorded for this long: the worker died (the
# Twilio client's own time-out is 10 s). The relay hands it over again, and that job asks Twilio whether
# it arrived before sending it again.
SEND_LEASE_SECONDS = 20
# A text handed to RQ and not claimed within this: its job was lost (a worker killed holding its batch,
# Redis flushed). Handed over again; the wait doubles with the text's age (up to MAX_HANDOVER_LEASE_SECONDS)
# so a worker down for an hour does not find hundreds of copies of each job waiting.
HANDOVER_LEASE_SECONDS = 20
MAX_HANDOVER_LEASE_SECONDS = 300


def retry_delay(attempts: int) -> int | None:
    """Seconds to wait after the attempts-th transient failure; None once it is time to give up."""
    if attempts >= MAX_SEND_ATTEMPTS:
        return None
    return RETRY_BACKOFF_SECONDS[min(max(attempts, 1), len(RETRY_BACKOFF_SECONDS)) - 1]


def handover_lease(age: timedelta) -> timedelta:
    """How long a text just handed over is given before it is handed over again: HANDOVER_LEASE_SECONDS
    at first, then as long as it has already waited (so the gaps double), at most
    MAX_HANDOVER_LEASE_SECONDS."""
    seconds = min(max(age.total_seconds(), HANDOVER_LEASE_SECONDS), MAX_HANDOVER_LEASE_SECONDS)
    return timedelta(seconds=int(seconds))


# -- escalations: limits and digests ------------------------------------------------------------------------

@dataclass(frozen=True)
class EscalationSettings:
    """ESCALATION_REPEAT_MINUTES: a supervisor may escalate one referral by hand at most this often.
    ESCALATION_DIGEST_SECONDS: escalation texts to one number within this of the last one are held and go
    as one digest text when it ends (0: every escalation texted on its own)."""

    repeat_after: timedelta = timedelta(minutes=10)
    digest_window: timedelta = timedelta(seconds=60)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> "EscalationSettings":
        def number(name: str, default: float) -> float:
            raw = env.get(name) or ""
            try:
                value = float(raw) if raw.strip() else default
            except ValueError:
                raise ValueError(f"{name}={raw!r}: a number is needed") from None
            if value < 0:
                raise ValueError(f"{name}={raw!r}: must not be negative")
            return value

        return cls(repeat_after=timedelta(minutes=number("ESCALATION_REPEAT_MINUTES", 10)),
                   digest_window=timedelta(seconds=number("ESCALATION_DIGEST_SECONDS", 60)))


@dataclass(frozen=True)
class EscalationWindow:
    """What is known about one number's escalation texts: when the latest went (or, for a digest, is due
    to go), and the digest still collecting, if any."""

    last_at: datetime | None = None
    digest_id: str | None = None
    held: int = 0


def window_decision(window: EscalationWindow, now: datetime, digest_window: timedelta) -> str:
    """The digest rule, for one escalation to one number:

    * "now": no escalation text to this number in the last digest_window (or digests are off): this one
      goes at once, on its own, and starts a window.
    * "join": within the window and a digest is collecting: it joins that digest (if the digest has
      already been claimed for sending, the caller starts a new one instead: "new").
    * "new": within the window, no digest collecting: a digest is started, due when the window ends
      (digest_window after the latest text), and the next window runs from then.

    So a lone escalation is never delayed; a storm costs one text at once plus one digest per window."""
    if digest_window <= timedelta(0) or window.last_at is None or now >= window.last_at + digest_window:
        return "now"
    return "join" if window.digest_id else "new"
