"""Referrals inside a unit of work, beyond what loading their call gives: the row lock an escalation
takes, its last escalation, the clock it is running against, and which call holds it."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .orm import audit_events, calls, referrals, timers


class RunningClock(NamedTuple):
    kind: str
    due_at: datetime


class ReplyTarget(NamedTuple):
    """The referral an SMS reply about a call acts on."""

    id: str
    state: str
    version: int
    workflow: str
    workflow_version: int


class ReferralStore:
    def __init__(self, session: Session):
        self.session = session

    def call_ref(self, referral_id: str) -> str | None:
        """The reference of the call that holds this referral."""
        return self.session.scalar(select(calls.c.ref).join(referrals, referrals.c.call_id == calls.c.id)
                                   .where(referrals.c.id == referral_id))

    def lock(self, referral_id: str) -> None:
        """SELECT ... FOR UPDATE on the referral's row (PostgreSQL; SQLite's writers already queue)."""
        self.session.execute(select(referrals.c.id).where(referrals.c.id == referral_id).with_for_update())

    def last_escalated_at(self, call_ref: str, referral_id: str) -> datetime | None:
        """When the referral was last escalated by hand (its newest `escalate` audit event)."""
        return self.session.scalar(select(func.max(audit_events.c.at)).where(
            audit_events.c.call_ref == call_ref, audit_events.c.entity == "referral",
            audit_events.c.entity_id == referral_id, audit_events.c.trigger == "escalate"))

    def running_clock(self, referral_id: str) -> RunningClock | None:
        """The referral's running clock due first, if any."""
        row = self.session.execute(
            select(timers.c.kind, timers.c.due_at).where(timers.c.referral_id == referral_id,
                                                         timers.c.stopped_at.is_(None))
            .order_by(timers.c.due_at).limit(1)).first()
        return RunningClock(row.kind, row.due_at) if row is not None else None

    def reply_target(self, call_ref: str, service: str) -> ReplyTarget | None:
        """The call's open referral to the service first (closed_at is set as a referral reaches a final
        state of its own version: no state names needed), else the latest."""
        row = self.session.execute(
            select(referrals.c.id, referrals.c.state, referrals.c.version, referrals.c.workflow,
                   referrals.c.workflow_version)
            .join(calls, calls.c.id == referrals.c.call_id)
            .where(calls.c.ref == call_ref, referrals.c.service == service)
            .order_by(referrals.c.closed_at.is_(None).desc(), referrals.c.sent_at.desc())
        ).first()
        return ReplyTarget(*row) if row is not None else None

    def to_service(self, service: str, limit: int) -> list[Any]:
        """Referrals to one service, open ones first, newest first: rows of (id, state, version, sent_at,
        ref, urgency, need, locality). Open: not yet in a final state of the referral's own version (the
        engine sets closed_at as it enters one)."""
        open_first = referrals.c.closed_at.is_(None).desc()
        return list(self.session.execute(
            select(referrals.c.id, referrals.c.state, referrals.c.version, referrals.c.sent_at,
                   calls.c.ref, calls.c.urgency, calls.c.need, calls.c.locality)
            .join(calls, calls.c.id == referrals.c.call_id)
            .where(referrals.c.service == service)
            .order_by(open_first, referrals.c.sent_at.desc()).limit(limit)))
