"""Read model of the supervisor's dashboard (service/dashboard.py): the grouped figures over open records,
the records behind one figure, and the texts on the exceptions panel. Every query reads open records
only (`closed_at IS NULL` and an open state) and groups in SQL, so the cost follows the open workload.
Which states are open, waiting or carry a tag comes from the caller (the deployed workflow versions)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .orm import calls, professionals, referrals, sms_messages, users
from .state_filters import tagged


class FigureRows(NamedTuple):
    calls: list[Any]  # (centre, state, urgency, count, breached, oldest queued_at)
    referrals: list[Any]  # (service, centre, state, urgency, workflow_version, count, breached, oldest sent_at)
    handlers: list[Any]  # (centre, handlers signed in)
    on_duty: list[Any]  # (service, professionals on duty and not opted out)


class DrillStates(NamedTuple):
    """The states a drill-down's measures are about, from the deployed versions."""

    call_open: set[str]
    call_waiting: set[str]
    referral_open: set[str]
    referral_waiting: set[str]
    # Per referral version, its states with the tag: each referral read by its own version's.
    awaiting_acceptance: dict[int, frozenset[str]]
    accepted: dict[int, frozenset[str]]


class DrillRows(NamedTuple):
    # Rows of calls (ref, version, state, centre, urgency, need, queued_at, breach, workflow,
    # workflow_version), and of referrals with those and (id, service, referral_state, referral_version,
    # sent_at, referral_breach, referral_workflow_version); None where the measure lists none.
    calls: list[Any] | None
    referrals: list[Any] | None


class DashboardQueries:
    def __init__(self, session: Session):
        self.session = session

    def figures(self, call_open: set[str], referral_open: set[str], signed_in_since: datetime) -> FigureRows:
        """Figures per centre and per service, in four grouped queries over open records."""
        s = self.session
        call_rows = s.execute(
            select(calls.c.centre, calls.c.state, calls.c.urgency, func.count(), func.count(calls.c.breach),
                   func.min(calls.c.queued_at))
            .where(calls.c.closed_at.is_(None), calls.c.state.in_(sorted(call_open)))
            .group_by(calls.c.centre, calls.c.state, calls.c.urgency)).all()
        ref_rows = s.execute(
            select(referrals.c.service, calls.c.centre, referrals.c.state, calls.c.urgency,
                   referrals.c.workflow_version, func.count(), func.count(referrals.c.breach),
                   func.min(referrals.c.sent_at))
            .join(calls, calls.c.id == referrals.c.call_id)
            .where(referrals.c.closed_at.is_(None), referrals.c.state.in_(sorted(referral_open)))
            .group_by(referrals.c.service, calls.c.centre, referrals.c.state, calls.c.urgency,
                      referrals.c.workflow_version)).all()
        handler_rows = s.execute(
            select(users.c.centre, func.count())
            .where(users.c.role == "handler", users.c.active.is_(True),
                   users.c.last_seen_at >= signed_in_since)
            .group_by(users.c.centre)).all()
        duty_rows = s.execute(
            select(professionals.c.service, func.count())
            .where(professionals.c.on_duty.is_(True), professionals.c.opted_out_at.is_(None))
            .group_by(professionals.c.service)).all()
        return FigureRows(list(call_rows), list(ref_rows), list(handler_rows), list(duty_rows))

    def behind(self, *, centre: str | None, service: str | None, measure: str, states: DrillStates,
               limit: int) -> DrillRows | None:
        """The open calls (or referrals, with their calls) behind one figure, each list oldest first and at
        most `limit` long: a centre's (calls and the referrals from them) or a service's (referrals to it).
        None: no such measure."""
        # SQL over many referrals: each read by its own version's tags (state_filters.py).
        by_tag = {"awaiting_acceptance": tagged(referrals.c.state, referrals.c.workflow_version,
                                                states.awaiting_acceptance),
                  "accepted": tagged(referrals.c.state, referrals.c.workflow_version, states.accepted)}
        open_call = and_(calls.c.closed_at.is_(None), calls.c.state.in_(sorted(states.call_open)))
        open_ref = and_(referrals.c.closed_at.is_(None), referrals.c.state.in_(sorted(states.referral_open)))
        call_cols = (calls.c.ref, calls.c.version, calls.c.state, calls.c.centre, calls.c.urgency, calls.c.need,
                     calls.c.queued_at, calls.c.breach, calls.c.workflow, calls.c.workflow_version)
        ref_cols = (referrals.c.id, referrals.c.service, referrals.c.state.label("referral_state"),
                    referrals.c.version.label("referral_version"), referrals.c.sent_at,
                    referrals.c.breach.label("referral_breach"),
                    referrals.c.workflow_version.label("referral_workflow_version"))
        call_stmt = ref_stmt = None
        if centre is not None:
            if measure == "open":
                call_stmt = select(*call_cols).where(open_call)
            elif measure == "waiting":
                call_stmt = select(*call_cols).where(open_call, calls.c.state.in_(sorted(states.call_waiting)))
            elif measure in states.call_open:
                call_stmt = select(*call_cols).where(open_call, calls.c.state == measure)
            elif measure == "breached":
                call_stmt = select(*call_cols).where(open_call, calls.c.breach.is_not(None))
                ref_stmt = select(*call_cols, *ref_cols).where(open_ref, referrals.c.breach.is_not(None))
            elif measure in by_tag:
                ref_stmt = select(*call_cols, *ref_cols).where(open_ref, by_tag[measure])
            else:
                return None
            call_stmt = call_stmt.where(calls.c.centre == centre) if call_stmt is not None else None
            ref_stmt = ref_stmt.where(calls.c.centre == centre) if ref_stmt is not None else None
        else:
            if measure == "open":
                where = [open_ref]
            elif measure == "waiting":
                where = [open_ref, referrals.c.state.in_(sorted(states.referral_waiting))]
            elif measure in by_tag:
                where = [open_ref, by_tag[measure]]
            elif measure in states.referral_open:
                where = [open_ref, referrals.c.state == measure]
            elif measure == "breached":
                where = [open_ref, referrals.c.breach.is_not(None)]
            else:
                return None
            ref_stmt = select(*call_cols, *ref_cols).where(*where, referrals.c.service == service)
        s = self.session
        call_rows = ref_rows = None
        if call_stmt is not None:
            call_rows = list(s.execute(call_stmt.order_by(calls.c.queued_at).limit(limit)))
        if ref_stmt is not None:
            ref_stmt = ref_stmt.join_from(referrals, calls, calls.c.id == referrals.c.call_id)
            ref_rows = list(s.execute(ref_stmt.order_by(referrals.c.sent_at).limit(limit)))
        return DrillRows(call_rows, ref_rows)

    def undelivered_texts(self, statuses: tuple[str, ...], created_before: datetime, created_since: datetime,
                          limit: int) -> tuple[list[Any], int]:
        """Texts still in one of these statuses, created in [created_since, created_before]: oldest first."""
        return self._texts((sms_messages.c.status.in_(statuses), sms_messages.c.created_at <= created_before,
                            sms_messages.c.created_at >= created_since), sms_messages.c.created_at, limit)

    def failed_texts(self, statuses: tuple[str, ...], created_since: datetime, limit: int) -> tuple[list[Any], int]:
        """Texts in one of these statuses created since then: newest first."""
        return self._texts((sms_messages.c.status.in_(statuses), sms_messages.c.created_at >= created_since),
                           sms_messages.c.created_at.desc(), limit)

    def _texts(self, where, order, limit: int) -> tuple[list[Any], int]:
        """(rows of (id, call_ref, to, recipient_kind, template, status, error_code, error_message,
        created_at), the full count)."""
        cols = (sms_messages.c.id, sms_messages.c.call_ref, sms_messages.c.to, sms_messages.c.recipient_kind,
                sms_messages.c.template, sms_messages.c.status, sms_messages.c.error_code,
                sms_messages.c.error_message, sms_messages.c.created_at)
        total = self.session.execute(select(func.count()).select_from(sms_messages).where(*where)).scalar_one()
        rows = self.session.execute(select(*cols).where(*where).order_by(order).limit(limit)).all() \
            if total else []
        return list(rows), total
