"""Text messages to professionals: who is told what, and how a message's delivery status may move.
Pure: the gateways, the jobs and the tables live in adapters/ and service/."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

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
