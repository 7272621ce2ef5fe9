"""A text's delivery: how its status may move as the gateway reports, and when a send is tried again.
Pure: the gateways, the jobs and the tables live in adapters/ and service/ (service/sms.py)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from .recipients import Recipient

__all__ = ["FINAL_STATUSES", "HANDOVER_LEASE_SECONDS", "MAX_HANDOVER_LEASE_SECONDS", "MAX_SEND_ATTEMPTS",
           "OPTED_OUT_CODE", "RETRY_BACKOFF_SECONDS", "SEND_LEASE_SECONDS", "STATUS_RANK", "SmsMessage",
           "handover_lease", "retry_delay"]

# Twilio's statuses arrive out of order: a status only ever moves up this ranking, so a late `sent`
# never overwrites `delivered`. `pending` and `submitting` are ours: created, and handed to the gateway
# with the outcome not yet known (the one state a crashed worker can leave behind).
STATUS_RANK = {
    "pending": 0, "submitting": 1, "accepted": 2, "queued": 2, "sending": 3, "sent": 4,
    "delivered": 5, "undelivered": 5, "failed": 5,
}
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# Twilio's error for a text to a number that texted STOP (docs/stack-notes.md). A text ipoa holds back itself
# for that reason (its number texted STOP after it was queued: service/sms.py) is `failed` with the same code,
# so the two read alike on the call page and the exceptions panel.
OPTED_OUT_CODE = 21610


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
