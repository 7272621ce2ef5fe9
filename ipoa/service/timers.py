"""Durable SLA timers: finding the due ones (the scheduler), firing one (a worker job), and the running
clocks people see.

The database holds every timer; Redis only carries the job that fires it. The scheduler re-reads due,
unfired timers every tick and hands them over again if their job has not fired them within
REQUEUE_AFTER (a flushed or restarted Redis, a worker killed mid-job), so no due timer is lost. Firing
claims the timer (fired_at) in the same transaction as the breach, its audit event and its outbox event,
so a timer handed over twice escalates once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update

from ..adapters.orm import calls as calls_table
from ..adapters.orm import referrals as referrals_table
from ..adapters.orm import timers
from ..domain.calendar import LONDON
from ..domain.engine import Result
from ..domain.model import AuditEvent, Call, OutboxMessage, Timer
from ..domain.sla import describe_remaining

log = logging.getLogger(__name__)

# A timer handed to RQ and still unfired this long after is handed over again.
REQUEUE_AFTER = timedelta(seconds=30)
SYSTEM_ACTOR = "system:sla"

Enqueue = Callable[[list[str]], None]


def hand_over_due(svc, enqueue: Enqueue, limit: int = 2000, requeue_after: timedelta = REQUEUE_AFTER) -> int:
    """One scheduler tick: mark the due timers handed over and give their ids to enqueue."""
    now = svc.clock.now()
    with svc.uow() as uow:
        ids = list(uow.session.scalars(
            select(timers.c.id).where(
                timers.c.fired_at.is_(None), timers.c.due_at <= now,
                (timers.c.enqueued_at.is_(None)) | (timers.c.enqueued_at <= now - requeue_after))
            .order_by(timers.c.due_at).limit(limit)))
        if ids:
            uow.session.execute(update(timers).where(timers.c.id.in_(ids)).values(enqueued_at=now))
        uow.commit()
    if ids:
        # After the commit: a crash between the two leaves them for the next tick past REQUEUE_AFTER.
        enqueue(ids)
    return len(ids)


def next_due(svc) -> datetime | None:
    with svc.uow() as uow:
        return uow.session.scalar(select(timers.c.due_at).where(timers.c.fired_at.is_(None))
                                  .order_by(timers.c.due_at).limit(1))


def fire(svc, timer_id: str) -> str:
    """Fire one due timer, once: 'breached', 'stale' (its clock had stopped or moved on), 'not due',
    or 'done' (fired already, or unknown)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        s = uow.session
        timer = s.get(Timer, timer_id, with_for_update=True)
        if timer is None or timer.fired_at is not None:
            return "done"
        if timer.due_at > now:
            return "not due"
        timer.fired_at = now
        call = s.scalars(select(Call).where(Call.ref == timer.call_ref)).one_or_none()
        subject = call.referral(timer.referral_id) if call is not None and timer.referral_id else call
        if subject is None or not _still_running(svc, timer, call, subject):
            timer.outcome, timer.stopped_at = "stale", now
            uow.commit()
            return "stale"
        timer.outcome = "breached"
        table = referrals_table if timer.referral_id else calls_table
        key = table.c.id == timer.referral_id if timer.referral_id else table.c.ref == timer.call_ref
        # Not through the ORM: a breach must not bump the record's version (a handler's open page would
        # get a conflict for a change that is not theirs to reconcile).
        s.execute(update(table).where(key).values(breach=timer.kind, breached_at=now))
        late = int((now - timer.due_at).total_seconds())
        result = Result()
        result.audit.append(AuditEvent(
            call_ref=call.ref, entity="referral" if timer.referral_id else "call",
            entity_id=timer.referral_id or call.ref, actor=SYSTEM_ACTOR, at=now, from_state=subject.state,
            to_state=subject.state, trigger="sla_breach",
            reason=f"{timer.kind} clock ran out ({timer.rule})",
            data={"clock": timer.kind, "due_at": timer.due_at.isoformat(), "late_seconds": late}))
        payload = {"ref": call.ref, "centre": call.centre, "urgency": call.urgency, "need": call.need,
                   "version": call.version, "clock": timer.kind, "due_at": timer.due_at.isoformat(),
                   "timer_id": timer.id}
        if timer.referral_id:
            payload.update(referral_id=timer.referral_id, service=subject.service)
        result.outbox.append(OutboxMessage(topic="sla.breached", payload=payload, created_at=now))
        uow.record(result)
        uow.commit()
    log.info("sla breach ref=%s clock=%s late=%ss", timer.call_ref, timer.kind, late)
    return "breached"


def _still_running(svc, timer: Timer, call: Call, subject) -> bool:
    binding = svc.catalogue.sla.clocks.get(timer.kind)
    if binding is None or subject.state not in binding.runs_in or subject.version < timer.set_at_version:
        return False
    if timer.kind == "callback":  # a new promise replaces the old one's timer
        return call.callback_due is not None and \
            svc.catalogue.sla.callback_escalates_at(call.callback_due) == timer.due_at
    return True


def fire_many(svc, timer_ids: list[str]) -> dict[str, str]:
    out = {}
    for tid in timer_ids:
        try:
            out[tid] = fire(svc, tid)
        except Exception:  # noqa: BLE001 - left unfired: the scheduler hands it over again
            log.exception("timer %s failed to fire", tid)
            out[tid] = "error"
    return out


@dataclass(frozen=True)
class RunningClock:
    kind: str
    call_ref: str
    referral_id: str | None
    due_at: datetime
    rule: str
    breached: bool

    def remaining(self, now: datetime) -> str:
        return describe_remaining(self.due_at, now)

    def overdue(self, now: datetime) -> bool:
        return now >= self.due_at

    def as_json(self, now: datetime) -> dict:
        return {"clock": self.kind, "due_at": self.due_at.isoformat(),
                "due_local": self.due_at.astimezone(LONDON).strftime("%a %d %b %H:%M"),
                "remaining": self.remaining(now), "overdue": self.overdue(now),
                "seconds_left": int((self.due_at - now).total_seconds()), "rule": self.rule,
                "referral_id": self.referral_id}


def running_clocks(svc, refs: list[str]) -> dict[str, list[RunningClock]]:
    """The running clocks of these calls, by call ref: a clock that breached stays shown, overdue, until
    it stops."""
    if not refs:
        return {}
    with svc.uow() as uow:
        rows = uow.session.execute(
            select(timers.c.kind, timers.c.call_ref, timers.c.referral_id, timers.c.due_at, timers.c.rule,
                   timers.c.outcome)
            .where(timers.c.call_ref.in_(refs), timers.c.stopped_at.is_(None))
            .order_by(timers.c.due_at)).all()
    out: dict[str, list[RunningClock]] = {}
    for r in rows:
        out.setdefault(r.call_ref, []).append(
            RunningClock(r.kind, r.call_ref, r.referral_id, r.due_at, r.rule, r.outcome == "breached"))
    return out
