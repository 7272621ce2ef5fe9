"""The reports' read model: a period's rows for the measures (ipoa/domain/reporting/measures.py works the
figures out from them). Plain SELECTs with range filters and joins over indexed columns, the same on
SQLite and PostgreSQL; no entity loading.

Each function takes the period's bounds (UTC instants, `start` inclusive, `end` exclusive) and the
report's scope (`centre`: the centre that logged the calls; `service`: the service referred to; None:
all), and returns the rows in the order the measures need them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from .orm import audit_events, calls, referrals, sms_messages, timers
from .results import AnyRow

__all__ = ["ReportQueries", "call_decisions", "call_transfers", "logged_calls", "referral_changes",
           "referral_clocks", "sent_referrals", "texts", "triage_clocks"]


# -- calls ------------------------------------------------------------------------------------------

def _logged(start: datetime, end: datetime, centre: str | None) -> ColumnElement[bool]:
    in_period = and_(calls.c.logged_at >= start, calls.c.logged_at < end)
    return in_period if centre is None else and_(in_period, calls.c.origin_centre == centre)


def logged_calls(s: Session, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
    """The calls logged in the period (by `centre`): ref, origin_centre, logged_at, state."""
    return s.execute(
        select(calls.c.ref, calls.c.origin_centre, calls.c.logged_at, calls.c.state)
        .where(_logged(start, end, centre))).all()


def call_decisions(s: Session, start: datetime, end: datetime, centre: str | None,
                   triggers: Iterable[str]) -> Sequence[AnyRow]:
    """Every routing decision (an audit event of one of `triggers`) of those calls, oldest first:
    call_ref, trigger, at."""
    return s.execute(
        select(audit_events.c.call_ref, audit_events.c.trigger, audit_events.c.at)
        .join(calls, calls.c.ref == audit_events.c.call_ref)
        .where(_logged(start, end, centre), audit_events.c.entity == "call",
               audit_events.c.trigger.in_(sorted(triggers)))
        .order_by(audit_events.c.at, audit_events.c.seq)).all()


def triage_clocks(s: Session, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
    """The triage clocks of those calls, oldest first: call_ref, due_at, created_at, outcome, stopped_at."""
    return s.execute(
        select(timers.c.call_ref, timers.c.due_at, timers.c.created_at, timers.c.outcome,
               timers.c.stopped_at)
        .join(calls, calls.c.ref == timers.c.call_ref)
        .where(_logged(start, end, centre), timers.c.kind == "triage", timers.c.referral_id.is_(None))
        .order_by(timers.c.created_at, timers.c.id)).all()


def call_transfers(s: Session, start: datetime, end: datetime, triggers: Iterable[str]) -> Sequence[AnyRow]:
    """The transfers (audit events of `triggers`) of every call logged in the period, whichever centre
    logged it (a centre's transfers in come from others), oldest first: call_ref, data (the centre named),
    origin_centre, logged_at."""
    return s.execute(
        select(audit_events.c.call_ref, audit_events.c.data, calls.c.origin_centre, calls.c.logged_at)
        .join(calls, calls.c.ref == audit_events.c.call_ref)
        .where(_logged(start, end, None), audit_events.c.entity == "call",
               audit_events.c.trigger.in_(sorted(triggers)))
        .order_by(audit_events.c.at, audit_events.c.seq)).all()


# -- referrals --------------------------------------------------------------------------------------

def _sent(start: datetime, end: datetime, centre: str | None, service: str | None) -> ColumnElement[bool]:
    cond = [referrals.c.sent_at >= start, referrals.c.sent_at < end]
    if service is not None:
        cond.append(referrals.c.service == service)
    if centre is not None:
        cond.append(calls.c.origin_centre == centre)
    return and_(*cond)


def sent_referrals(s: Session, start: datetime, end: datetime, centre: str | None,
                   service: str | None) -> Sequence[AnyRow]:
    """The referrals sent in the period (of calls `centre` logged, to `service`), in the order sent: id,
    service, state, workflow, workflow_version, sent_at, sharing_basis. Never the outcome's free-text reason,
    which can name the person: reports count declines by service (docs/information-governance.md)."""
    return s.execute(
        select(referrals.c.id, referrals.c.service, referrals.c.state, referrals.c.workflow,
               referrals.c.workflow_version, referrals.c.sent_at, referrals.c.sharing_basis)
        .join(calls, calls.c.id == referrals.c.call_id).where(_sent(start, end, centre, service))
        .order_by(referrals.c.sent_at, referrals.c.id)).all()


def referral_changes(s: Session, start: datetime, end: datetime, centre: str | None,
                     service: str | None) -> Sequence[AnyRow]:
    """The state changes of those referrals, oldest first: entity_id (the referral), to_state, at.
    Joined through the call: audit events are indexed by call ref."""
    return s.execute(
        select(audit_events.c.entity_id, audit_events.c.to_state, audit_events.c.at)
        .select_from(referrals)
        .join(calls, calls.c.id == referrals.c.call_id)
        .join(audit_events, and_(audit_events.c.call_ref == calls.c.ref,
                                 audit_events.c.entity_id == referrals.c.id))
        .where(_sent(start, end, centre, service), audit_events.c.entity == "referral")
        .order_by(audit_events.c.at, audit_events.c.seq)).all()


def referral_clocks(s: Session, start: datetime, end: datetime, centre: str | None,
                    service: str | None) -> Sequence[AnyRow]:
    """The acceptance and response clocks of those referrals, oldest first: referral_id, kind, due_at,
    outcome, stopped_at."""
    return s.execute(
        select(timers.c.referral_id, timers.c.kind, timers.c.due_at, timers.c.outcome,
               timers.c.stopped_at)
        .select_from(referrals)
        .join(calls, calls.c.id == referrals.c.call_id)
        .join(timers, and_(timers.c.call_ref == calls.c.ref, timers.c.referral_id == referrals.c.id))
        .where(_sent(start, end, centre, service), timers.c.kind.in_(("acceptance", "response")))
        .order_by(timers.c.created_at, timers.c.id)).all()


# -- texts ------------------------------------------------------------------------------------------

def texts(s: Session, start: datetime, end: datetime, centre: str | None,
          service: str | None) -> Sequence[AnyRow]:
    """The messages recorded in the period (about calls `centre` logged; about referrals to `service`):
    status, created_at."""
    q = select(sms_messages.c.status, sms_messages.c.created_at).where(
        sms_messages.c.created_at >= start, sms_messages.c.created_at < end)
    if centre is not None:
        q = q.join(calls, calls.c.ref == sms_messages.c.call_ref).where(calls.c.origin_centre == centre)
    if service is not None:
        q = q.join(referrals, referrals.c.id == sms_messages.c.referral_id).where(
            referrals.c.service == service)
    return s.execute(q).all()


class ReportQueries:
    """The functions above on a unit of work's session (uow.reports), so the use cases never hold one."""

    def __init__(self, session: Session):
        self.session = session

    def logged_calls(self, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
        return logged_calls(self.session, start, end, centre)

    def call_decisions(self, start: datetime, end: datetime, centre: str | None,
                       triggers: Iterable[str]) -> Sequence[AnyRow]:
        return call_decisions(self.session, start, end, centre, triggers)

    def triage_clocks(self, start: datetime, end: datetime, centre: str | None) -> Sequence[AnyRow]:
        return triage_clocks(self.session, start, end, centre)

    def call_transfers(self, start: datetime, end: datetime, triggers: Iterable[str]) -> Sequence[AnyRow]:
        return call_transfers(self.session, start, end, triggers)

    def sent_referrals(self, start: datetime, end: datetime, centre: str | None,
                       service: str | None) -> Sequence[AnyRow]:
        return sent_referrals(self.session, start, end, centre, service)

    def referral_changes(self, start: datetime, end: datetime, centre: str | None,
                         service: str | None) -> Sequence[AnyRow]:
        return referral_changes(self.session, start, end, centre, service)

    def referral_clocks(self, start: datetime, end: datetime, centre: str | None,
                        service: str | None) -> Sequence[AnyRow]:
        return referral_clocks(self.session, start, end, centre, service)

    def texts(self, start: datetime, end: datetime, centre: str | None,
              service: str | None) -> Sequence[AnyRow]:
        return texts(self.session, start, end, centre, service)
