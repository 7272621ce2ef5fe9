"""Read model of the work queues people see: queue figures per centre and per service, a centre's queue
of calls, the breaches on the dashboard and the live counts on the workflow diagrams. The state sets
come from the caller (the deployed workflow versions); the SQL is here."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from ..domain.model import Call
from . import queries
from .orm import calls, referrals, timers


class Breaches(NamedTuple):
    calls: list[Any]  # (ref, centre, urgency, breach, breached_at)
    referrals: list[Any]  # (id, service, breach, breached_at, ref, centre, urgency)
    timers: list[Any]  # the breached timers of those calls: (call_ref, referral_id, kind, due_at, stopped_at)


class WorkQueueQueries:
    def __init__(self, session: Session):
        self.session = session

    def counts_by_centre(self, open_states: set[str], waiting_states: set[str], now: datetime) -> dict[str, dict]:
        return queries.counts_by(self.session, calls, calls.c.centre, calls.c.queued_at, open_states,
                                 waiting_states, now)

    def counts_by_service(self, open_states: set[str], waiting_states: set[str], now: datetime) -> dict[str, dict]:
        return queries.counts_by(self.session, referrals, referrals.c.service, referrals.c.sent_at, open_states,
                                 waiting_states, now)

    def callbacks_due(self, centre: str, states: set[str], now: datetime) -> list[Call]:
        """A centre's calls in these states whose promised callback time has come, earliest first."""
        return list(self.session.scalars(
            select(Call).where(calls.c.centre == centre, calls.c.state.in_(sorted(states)),
                               calls.c.callback_due.is_not(None), calls.c.callback_due <= now)
            .order_by(calls.c.callback_due)))

    def centre_queue(self, centre: str, open_states: set[str]) -> list[Call]:
        return queries.centre_queue(self.session, centre, open_states)

    def breaches(self, call_open: set[str], referral_open: set[str]) -> Breaches:
        """Open calls and open referrals with a breach, and the breached timers of those calls."""
        s = self.session
        call_rows = s.execute(
            select(calls.c.ref, calls.c.centre, calls.c.urgency, calls.c.breach, calls.c.breached_at)
            .where(calls.c.breach.is_not(None), calls.c.state.in_(sorted(call_open)))).all()
        ref_rows = s.execute(
            select(referrals.c.id, referrals.c.service, referrals.c.breach, referrals.c.breached_at,
                   calls.c.ref, calls.c.centre, calls.c.urgency)
            .join(calls, calls.c.id == referrals.c.call_id)
            .where(referrals.c.breach.is_not(None), referrals.c.state.in_(sorted(referral_open)))).all()
        # The breached timers of those calls: the refs as a subquery, not a list of bound parameters (a
        # few hundred refs cost more to expand, send and plan than the index lookups themselves).
        breached_refs = union(
            select(calls.c.ref).where(calls.c.breach.is_not(None), calls.c.state.in_(sorted(call_open))),
            select(calls.c.ref).join(referrals, referrals.c.call_id == calls.c.id)
            .where(referrals.c.breach.is_not(None), referrals.c.state.in_(sorted(referral_open))))
        timer_rows = s.execute(
            select(timers.c.call_ref, timers.c.referral_id, timers.c.kind, timers.c.due_at,
                   timers.c.stopped_at)
            .where(timers.c.outcome == "breached", timers.c.call_ref.in_(breached_refs))
            .order_by(timers.c.due_at)).all() if call_rows or ref_rows else []
        return Breaches(list(call_rows), list(ref_rows), list(timer_rows))

    def workflow_state_counts(self, name: str, version: int) -> dict[str, int]:
        return queries.workflow_state_counts(self.session, name, version)
