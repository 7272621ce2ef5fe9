"""The telephony measures' read model (issue 15, point 5): a period's phone legs and the callbacks made to
the callers who abandoned them. domain/telephony/measures.py works the measures out from these rows
(docs/domain.md, "Telephony measures"). Plain SELECTs over indexed columns, the same on SQLite and
PostgreSQL; the caller's number is never read (the measures do not need it, and nothing here may leak it).

`start` inclusive, `end` exclusive (UTC instants: a report's Europe/London days, or the dashboard's today);
`centre` None: every centre's legs.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from ..domain.telephony.legs import ABANDONED
from .orm import audit_events, phone_legs
from .results import AnyRow

__all__ = ["PhoneMeasureQueries", "callbacks_made", "period_legs", "waiting_now"]

# The columns the measures read (domain/telephony/measures.py LegRow): not caller_number.
_LEG_COLUMNS = ("centre", "queue", "overflowed_from", "arrived_at", "enqueued_at", "answered_at",
                "left_queue_at", "hung_up_at", "outcome", "call_ref")


def _rang(start: datetime, end: datetime, centre: str | None) -> ColumnElement[bool]:
    """Legs that rang in the period and concern the centre: rung, queued in, or overflowed from it.
    The range is on ix_phone_legs_arrived_at; the centre's columns are filtered in the range."""
    in_period = and_(phone_legs.c.arrived_at >= start, phone_legs.c.arrived_at < end)
    if centre is None:
        return in_period
    return and_(in_period, or_(phone_legs.c.queue == centre, phone_legs.c.centre == centre,
                               phone_legs.c.overflowed_from == centre))


def period_legs(s: Session, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
    """The legs that rang in the period (the measures' cohort): the LegRow columns."""
    return s.execute(select(*(phone_legs.c[name] for name in _LEG_COLUMNS))
                     .where(_rang(start, end, centre))).all()


def callbacks_made(s: Session, start: datetime, end: datetime, centre: str | None, *,
                   waiting: Iterable[str], made: Iterable[str]) -> Sequence[AnyRow]:
    """The callbacks made on the calls of the period's abandoned legs, oldest first: call_ref, at. A callback
    made is an audit event of one of the `made` triggers from one of the `waiting` states (the call workflow's
    terms: domain/reporting/workflow_terms.callback_terms). Audit events are indexed by call ref."""
    waiting, made = sorted(waiting), sorted(made)
    if not waiting or not made:
        return []
    return s.execute(
        select(audit_events.c.call_ref, audit_events.c.at).distinct()
        .join(phone_legs, phone_legs.c.call_ref == audit_events.c.call_ref)
        .where(_rang(start, end, centre), phone_legs.c.outcome == ABANDONED, audit_events.c.entity == "call",
               audit_events.c.trigger.in_(made), audit_events.c.from_state.in_(waiting))
        .order_by(audit_events.c.at)).all()


def waiting_now(s: Session) -> dict[str, int]:
    """How many callers wait in each queue now, whenever they rang (the dashboard's "Waiting now" is live, not
    the day's cohort): queue -> count. The conditions are ix_phone_legs_waiting's (adapters/orm.py), so only
    the waiting callers' index entries are read."""
    rows = s.execute(select(phone_legs.c.queue, func.count())
                     .where(phone_legs.c.enqueued_at.is_not(None), phone_legs.c.left_queue_at.is_(None),
                            phone_legs.c.hung_up_at.is_(None), phone_legs.c.answered_at.is_(None))
                     .group_by(phone_legs.c.queue)).all()
    return {queue: int(n) for queue, n in rows if queue is not None}


class PhoneMeasureQueries:
    """The functions above on a unit of work's session (uow.phone_measures)."""

    def __init__(self, session: Session):
        self.session = session

    def period_legs(self, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
        return period_legs(self.session, start, end, centre)

    def callbacks_made(self, start: datetime, end: datetime, centre: str | None, *, waiting: Iterable[str],
                       made: Iterable[str]) -> Sequence[AnyRow]:
        return callbacks_made(self.session, start, end, centre, waiting=waiting, made=made)

    def waiting_now(self) -> dict[str, int]:
        return waiting_now(self.session)
