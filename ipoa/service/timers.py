"""Durable SLA timers: finding the due ones (the scheduler), firing one (a worker job), and the running
clocks people see.

The database holds every timer; Redis only carries the job that fires it. The scheduler hands over the
timers falling due in the next half second or so with their instants (hand_over_ahead), and the worker
fires each at its instant (fire_when_due). The scheduler hands a timer over again if its job has not
fired it within REQUEUE_AFTER of its instant (a flushed or restarted Redis, a worker killed mid-job),
so no due timer is lost. Firing
claims the timer (fired_at) in the same transaction as the breach, its audit event and its outbox event,
so a timer handed over twice escalates once."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..domain.date_parts import london_clock
from ..domain.engine import Result, outbox_event
from ..domain.model import AuditEvent
from ..domain.sla import SlaPolicyError, describe_remaining

if TYPE_CHECKING:
    from ..adapters.timer_store import CallClockState, DueTimer, ReferralClockState
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

log = logging.getLogger(__name__)

# A timer handed to RQ and still unfired this long after is handed over again.
REQUEUE_AFTER = timedelta(seconds=30)
SYSTEM_ACTOR = "system:sla"

Enqueue = Callable[[list[str]], None]
EnqueueAhead = Callable[[list[tuple[str, datetime]]], None]  # (timer id, due instant), soonest first


def hand_over_due(svc: Services, enqueue: Enqueue, limit: int = 2000, requeue_after: timedelta = REQUEUE_AFTER) -> int:
    """One scheduler tick: mark the due timers handed over and give their ids to enqueue."""
    now = svc.clock.now()
    with svc.uow() as uow:
        ids = uow.timers.due_for_hand_over(now, now - requeue_after, limit)
        if ids:
            uow.timers.mark_handed_over(ids, now)
        uow.commit()
    if ids:
        # After the commit: a crash between the two leaves them for the next tick past REQUEUE_AFTER.
        enqueue(ids)
    return len(ids)


def hand_over_ahead(svc: Services, enqueue: EnqueueAhead, window: timedelta, limit: int = 2000,
                    requeue_after: timedelta = REQUEUE_AFTER) -> int:
    """One scheduler read: the unfired timers falling due within `window` from now (or overdue) that are
    not handed over, or were more than requeue_after after their instant and are still unfired, are
    marked handed over as of their due instant and given to enqueue with that instant: the worker fires
    each at its instant (fire_when_due). One indexed read and one conditional update: a timer another
    scheduler has just handed over is skipped. Returns how many were handed over."""
    now = svc.clock.now()
    with svc.uow() as uow:
        found = uow.timers.due_soon(now + window, now - requeue_after, limit)
        claimed = uow.timers.claim_hand_over([tid for tid, _ in found], now, now - requeue_after) if found else []
        uow.commit()
    if claimed:
        # After the commit, as hand_over_due: a crash between the two leaves them for REQUEUE_AFTER.
        enqueue(sorted(claimed, key=lambda c: (c[1], c[0])))
    return len(claimed)


def fire_when_due(svc: Services, due: list[tuple[str, datetime]], sleep: Callable[[float], None],
                  batch: int = 50, grain: float = 0.0) -> dict[str, str]:
    """A worker job: timers handed over ahead with their due instants, each fired at its instant, never
    before (fire_many's claim reports 'not due' otherwise). Every firing takes all those due by then, up
    to `batch`, and starts at least `grain` seconds after the one before: a transaction's fixed cost is
    paid for the few timers due within `grain` of each other rather than for each (at most `grain` late),
    and a worker that fell behind catches up in fewer, larger transactions."""
    pending = sorted(((at, tid) for tid, at in dict(due).items()), reverse=True)  # soonest last
    out: dict[str, str] = {}
    next_allowed: datetime | None = None
    while pending:
        now = svc.clock.now()
        wake = max(pending[-1][0], next_allowed) if next_allowed is not None else pending[-1][0]
        if wake > now:
            sleep((wake - now).total_seconds())
            continue
        ids: list[str] = []
        while pending and pending[-1][0] <= now and len(ids) < batch:
            ids.append(pending.pop()[1])
        next_allowed = now + timedelta(seconds=grain)
        out.update(fire_many(svc, ids))
    return out


def release_hand_overs(svc: Services) -> int:
    """A worker starting: every unfired timer handed over is handed over again at the scheduler's next
    read instead of REQUEUE_AFTER after its instant (the job a killed worker was running is gone with
    it; those still queued fire once all the same: firing claims)."""
    with svc.uow() as uow:
        n = uow.timers.release_hand_overs()
        uow.commit()
    return n


def next_due(svc: Services) -> datetime | None:
    with svc.uow() as uow:
        return uow.timers.next_due()


def fire(svc: Services, timer_id: str) -> str:
    """Fire one due timer, once: 'breached', 'stale' (its clock had stopped or moved on), 'not due',
    or 'done' (fired already, or unknown)."""
    return _fire_batch(svc, [timer_id])[timer_id]


def fire_many(svc: Services, timer_ids: list[str]) -> dict[str, str]:
    """Fire a job's timers, as fire() would each, in one transaction: the claims, the breaches, their
    audit and outbox events commit together (a dozen statements for the batch instead of eight per
    timer: see bench/timers.py). Should the batch fail, each timer is tried alone, so one that cannot
    fire holds up no other."""
    ids = list(dict.fromkeys(timer_ids))
    if not ids:
        return {}
    try:
        return _fire_batch(svc, ids)
    except Exception:  # noqa: BLE001 - retried one by one below
        if len(ids) == 1:
            log.exception("timer %s failed to fire", ids[0])
            return {ids[0]: "error"}
        log.warning("firing %d timers together failed; firing them one at a time", len(ids), exc_info=True)
    out = {}
    for tid in ids:
        try:
            out[tid] = fire(svc, tid)
        except Exception:  # noqa: BLE001 - left unfired: the scheduler hands it over again
            log.exception("timer %s failed to fire", tid)
            out[tid] = "error"
    return out


def _fire_batch(svc: Services, timer_ids: list[str]) -> dict[str, str]:
    now = svc.clock.now()
    out = dict.fromkeys(timer_ids, "done")  # unknown ids, and timers fired (or stopped) already
    with svc.uow() as uow:
        # Claimed under lock, in id order: a timer handed over twice (two jobs holding it) waits for the
        # other job's transaction and then finds it fired; overlapping batches cannot deadlock.
        rows = uow.timers.lock(timer_ids)
        due = []
        for t in rows:
            if t.fired_at is not None:
                continue
            if t.due_at > now:
                out[t.id] = "not due"
            else:
                due.append(t)
        if not due:
            return out
        calls_by_ref = {c.ref: c for c in uow.timers.calls({t.call_ref for t in due})}
        referral_ids = {t.referral_id for t in due if t.referral_id}
        referrals_by_id = {r.id: r for r in uow.timers.referrals(referral_ids)} if referral_ids else {}
        stale: list[DueTimer] = []
        breached: list[tuple[DueTimer, CallClockState, CallClockState | ReferralClockState]] = []
        for t in due:
            call = calls_by_ref.get(t.call_ref)
            # The call, or the referral whose clock it is (None with its call: no call, no subject).
            subject: CallClockState | ReferralClockState | None = call
            if call is not None and t.referral_id:
                subject = referrals_by_id.get(t.referral_id)
                if subject is not None and subject.call_id != call.id:
                    subject = None
            if call is None or subject is None or not _still_running(svc, uow, t, call, subject):
                stale.append(t)
                out[t.id] = "stale"
            else:
                breached.append((t, call, subject))
                out[t.id] = "breached"
        if stale:
            uow.timers.mark_stale([t.id for t in stale], now)
        if breached:
            uow.timers.mark_breached([t.id for t, _, _ in breached], now)
            # Not through the ORM: a breach must not bump the record's version (a handler's open page
            # would get a conflict for a change that is not theirs to reconcile). Two clocks of one
            # record in a batch: the later one's kind stays, as firing them one after another would.
            marks: dict[tuple[bool, str], str] = {}
            for t, _, _ in breached:
                marks[(bool(t.referral_id), t.referral_id or t.call_ref)] = t.kind
            groups: dict[tuple[bool, str], list[str]] = {}
            for (is_referral, key), kind in marks.items():
                groups.setdefault((is_referral, kind), []).append(key)
            for (is_referral, kind), keys in groups.items():
                uow.timers.mark_records_breached(is_referral, keys, kind, now)
            result = Result()
            for t, call, subject in breached:
                late = int((now - t.due_at).total_seconds())
                result.audit.append(AuditEvent(
                    call_ref=call.ref, entity="referral" if t.referral_id else "call",
                    entity_id=t.referral_id or call.ref, actor=SYSTEM_ACTOR, at=now, from_state=subject.state,
                    to_state=subject.state, trigger="sla_breach", reason=f"{t.kind} clock ran out ({t.rule})",
                    data={"clock": t.kind, "due_at": t.due_at.isoformat(), "late_seconds": late}))
                result.outbox.append(outbox_event(
                    "sla.breached", call, subject if t.referral_id else None, now,
                    clock=t.kind, due_at=t.due_at.isoformat(), timer_id=t.id))
            uow.record(result)
        uow.commit()
    for t, _, _ in breached:
        log.info("sla breach ref=%s clock=%s late=%ss", t.call_ref, t.kind,
                 int((now - t.due_at).total_seconds()))
    return out


def _still_running(svc: Services, uow: UnitOfWork, timer: DueTimer, call: CallClockState,
                   subject: CallClockState | ReferralClockState) -> bool:
    """timer, call and subject (the call, or the referral): the rows firing reads (adapters/timer_store.py).
    The clock's states are those its tag marks in the subject's own workflow version."""
    sla = svc.catalogue.sla
    if sla is None:  # load_catalogue always loads one; only a catalogue built by hand has none
        raise SlaPolicyError(f"no SLA policy is loaded: timer {timer.id} ({timer.kind} clock) cannot be checked")
    binding = sla.clocks.get(timer.kind)
    if binding is None or subject.version < timer.set_at_version:
        return False
    key = (binding.workflow, subject.workflow_version)
    if subject.state not in binding.states(uow.engine(svc, needs=key).definition(*key)):
        return False
    if timer.kind == "callback":  # a new promise replaces the old one's timer
        return call.callback_due is not None and \
            sla.callback_escalates_at(call.callback_due) == timer.due_at
    return True


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

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {"clock": self.kind, "due_at": self.due_at.isoformat(),
                "due_local": london_clock(self.due_at, "%a %d %b %H:%M"),
                "remaining": self.remaining(now), "overdue": self.overdue(now),
                "seconds_left": int((self.due_at - now).total_seconds()), "rule": self.rule,
                "referral_id": self.referral_id}


def running_clocks(svc: Services, refs: list[str]) -> dict[str, list[RunningClock]]:
    """The running clocks of these calls, by call ref: a clock that breached stays shown, overdue, until
    it stops."""
    if not refs:
        return {}
    with svc.uow() as uow:
        rows = uow.timers.running(refs)
    out: dict[str, list[RunningClock]] = {}
    for r in rows:
        out.setdefault(r.call_ref, []).append(
            RunningClock(r.kind, r.call_ref, r.referral_id, r.due_at, r.rule, r.outcome == "breached"))
    return out
