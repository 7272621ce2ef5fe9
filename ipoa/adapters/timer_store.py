"""SLA timers, `timers`, and what firing one reads and marks on its call or referral (service/timers.py;
docs/performance.md measures these statements: bench/timers.py)."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from .orm import calls as calls_table
from .orm import referrals as referrals_table
from .orm import timers
from .results import rowcount


class DueTimer(NamedTuple):
    id: str
    kind: str
    call_ref: str
    referral_id: str | None
    due_at: datetime
    set_at_version: int
    rule: str
    fired_at: datetime | None


class CallClockState(NamedTuple):
    """What firing a timer needs of its call."""

    id: int
    ref: str
    centre: str
    urgency: str
    need: str
    state: str
    version: int
    callback_due: datetime | None
    workflow_version: int


class ReferralClockState(NamedTuple):
    """What firing a timer needs of its referral."""

    id: str
    call_id: int
    service: str
    state: str
    version: int
    workflow_version: int


class ClockRow(NamedTuple):
    kind: str
    call_ref: str
    referral_id: str | None
    due_at: datetime
    rule: str
    outcome: str | None


class TimerStore:
    def __init__(self, session: Session):
        self.session = session

    def due_for_hand_over(self, now: datetime, handed_over_before: datetime, limit: int) -> list[str]:
        """Ids of unfired timers due by now, not handed over since `handed_over_before`, soonest first."""
        return list(self.session.scalars(
            select(timers.c.id).where(
                timers.c.fired_at.is_(None), timers.c.due_at <= now,
                (timers.c.enqueued_at.is_(None)) | (timers.c.enqueued_at <= handed_over_before))
            .order_by(timers.c.due_at).limit(limit)))

    def mark_handed_over(self, ids: list[str], now: datetime) -> None:
        self.session.execute(update(timers).where(timers.c.id.in_(ids)).values(enqueued_at=now))

    def due_soon(self, until: datetime, handed_over_before: datetime, limit: int) -> list[tuple[str, datetime]]:
        """(id, due_at) of unfired timers due by `until` (now plus the scheduler's prefetch window), not
        handed over since `handed_over_before`, soonest first: one range scan of ix_timers_due."""
        return [(r[0], r[1]) for r in self.session.execute(
            select(timers.c.id, timers.c.due_at).where(
                timers.c.fired_at.is_(None), timers.c.due_at <= until,
                (timers.c.enqueued_at.is_(None)) | (timers.c.enqueued_at <= handed_over_before))
            .order_by(timers.c.due_at).limit(limit))]

    def claim_hand_over(self, ids: list[str], now: datetime,
                        handed_over_before: datetime) -> list[tuple[str, datetime]]:
        """Mark handed over those of these timers still unfired and not handed over since
        `handed_over_before`, as of their due instant (now for one overdue): REQUEUE_AFTER counts from the
        instant, not from this early hand-over. Returns their (id, due_at). Conditional, so of two
        schedulers holding the same timer one hands it over (PostgreSQL re-checks the condition on the row
        it waited for; SQLite writes one at a time)."""
        return [(r[0], r[1]) for r in self.session.execute(
            update(timers).where(
                timers.c.id.in_(ids), timers.c.fired_at.is_(None),
                (timers.c.enqueued_at.is_(None)) | (timers.c.enqueued_at <= handed_over_before))
            .values(enqueued_at=case((timers.c.due_at > now, timers.c.due_at), else_=now))
            .returning(timers.c.id, timers.c.due_at))]

    def release_hand_overs(self) -> int:
        """Forget the hand-over of every unfired timer, so the scheduler hands it over again at its next
        read (a worker starting: the job its killed predecessor was running is gone)."""
        return rowcount(self.session.execute(
            update(timers).where(timers.c.fired_at.is_(None), timers.c.enqueued_at.is_not(None))
            .values(enqueued_at=None)))

    def next_due(self) -> datetime | None:
        return self.session.scalar(select(timers.c.due_at).where(timers.c.fired_at.is_(None))
                                   .order_by(timers.c.due_at).limit(1))

    def lock(self, ids: list[str]) -> list[DueTimer]:
        """The timers, locked (SELECT ... FOR UPDATE) in id order: a timer handed over twice waits for the
        other job's transaction; overlapping batches cannot deadlock."""
        return [DueTimer(*r) for r in self.session.execute(
            select(timers.c.id, timers.c.kind, timers.c.call_ref, timers.c.referral_id, timers.c.due_at,
                   timers.c.set_at_version, timers.c.rule, timers.c.fired_at)
            .where(timers.c.id.in_(ids)).order_by(timers.c.id).with_for_update()).all()]

    def calls(self, refs: set[str]) -> list[CallClockState]:
        return [CallClockState(*r) for r in self.session.execute(
            select(calls_table.c.id, calls_table.c.ref, calls_table.c.centre, calls_table.c.urgency,
                   calls_table.c.need, calls_table.c.state, calls_table.c.version, calls_table.c.callback_due,
                   calls_table.c.workflow_version)
            .where(calls_table.c.ref.in_(refs)))]

    def referrals(self, ids: set[str]) -> list[ReferralClockState]:
        return [ReferralClockState(*r) for r in self.session.execute(
            select(referrals_table.c.id, referrals_table.c.call_id, referrals_table.c.service,
                   referrals_table.c.state, referrals_table.c.version, referrals_table.c.workflow_version)
            .where(referrals_table.c.id.in_(ids)))]

    def mark_stale(self, ids: list[str], now: datetime) -> None:
        self.session.execute(update(timers).where(timers.c.id.in_(ids))
                             .values(fired_at=now, outcome="stale", stopped_at=now))

    def mark_breached(self, ids: list[str], now: datetime) -> None:
        self.session.execute(update(timers).where(timers.c.id.in_(ids))
                             .values(fired_at=now, outcome="breached"))

    def mark_records_breached(self, is_referral: bool, keys: list[str], kind: str, now: datetime) -> None:
        """Mark calls (by ref) or referrals (by id) breached by a `kind` clock. Not through the ORM: a
        breach must not bump the record's version."""
        table = referrals_table if is_referral else calls_table
        key_col = table.c.id if is_referral else table.c.ref
        self.session.execute(update(table).where(key_col.in_(keys)).values(breach=kind, breached_at=now))

    def running(self, refs: list[str]) -> list[ClockRow]:
        """The clocks not stopped of these calls, soonest due first."""
        return [ClockRow(*r) for r in self.session.execute(
            select(timers.c.kind, timers.c.call_ref, timers.c.referral_id, timers.c.due_at, timers.c.rule,
                   timers.c.outcome)
            .where(timers.c.call_ref.in_(refs), timers.c.stopped_at.is_(None))
            .order_by(timers.c.due_at)).all()]
