"""Read model of the supervisor's dashboard (service/dashboard.py): the grouped figures over open records,
the records behind one figure, and the texts on the exceptions panel. Every query reads open records
only (`closed_at IS NULL` and an open state) and groups in SQL, so the cost follows the open workload.
Which states are open, waiting or carry a tag comes from the caller (the deployed workflow versions).
The one write: a supervisor marking a text on the panel followed up (service/dashboard.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from .orm import calls, professionals, referrals, sms_messages, users
from .results import rowcount
from .state_filters import tagged


class FigureRows(NamedTuple):
    calls: list[Any]  # (centre, state, urgency, count, breached, oldest queued_at)
    referrals: list[Any]  # (service, centre, state, urgency, workflow_version, count, breached, oldest sent_at)
    handlers: list[Any]  # (centre, handlers signed in)
    # Who is on duty per service comes from the rotas (service/rotas.on_duty_counts), not a query here.


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
        """Figures per centre and per service, in three grouped queries over open records."""
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
        return FigureRows(list(call_rows), list(ref_rows), list(handler_rows))

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
        """(rows of (id, call_ref, to, recipient_kind, professional_id, template, status, error_code,
        error_message, created_at, service: the referral's, caller_name, centre and centre_path: the
        call's, for the access policy; all three None when no call has that reference), the full count). A
        text a supervisor has followed up (followed_up_at) has left the panel."""
        where = (*where, sms_messages.c.followed_up_at.is_(None))
        cols = (sms_messages.c.id, sms_messages.c.call_ref, sms_messages.c.to, sms_messages.c.recipient_kind,
                sms_messages.c.professional_id, sms_messages.c.template, sms_messages.c.status,
                sms_messages.c.error_code, sms_messages.c.error_message, sms_messages.c.created_at,
                referrals.c.service, calls.c.caller_name, calls.c.centre, calls.c.centre_path)
        total = self.session.execute(select(func.count()).select_from(sms_messages).where(*where)).scalar_one()
        if not total:
            return [], 0
        stmt = (select(*cols)
                .outerjoin(referrals, referrals.c.id == sms_messages.c.referral_id)
                .outerjoin(calls, calls.c.ref == sms_messages.c.call_ref)
                .where(*where).order_by(order).limit(limit))
        return list(self.session.execute(stmt).all()), total

    def text_on_panel(self, sms_id: str) -> tuple[list[Any], int]:
        """One text as `_texts` reads it, if not followed up."""
        return self._texts((sms_messages.c.id == sms_id,), sms_messages.c.created_at, 1)

    def recipients(self, professional_ids: set[int], numbers: set[str]) -> tuple[list[Any], list[Any]]:
        """Who the texts' numbers belong to: professionals (id, name, mobile, service) by id or mobile, and
        active users (mobile, display_name, role, centre) by mobile."""
        if not (professional_ids or numbers):
            return [], []
        pros = self.session.execute(
            select(professionals.c.id, professionals.c.name, professionals.c.mobile, professionals.c.service)
            .where(professionals.c.id.in_(sorted(professional_ids)) | professionals.c.mobile.in_(sorted(numbers)))
        ).all()
        people = self.session.execute(
            select(users.c.mobile, users.c.display_name, users.c.role, users.c.centre)
            .where(users.c.mobile.in_(sorted(numbers)), users.c.active.is_(True))
            .order_by(users.c.id)).all() if numbers else []
        return list(pros), list(people)

    def exception_text(self, sms_id: str) -> Any:
        """One text's (id, call_ref, status, created_at, followed_up_at, recipient_kind, template), locked
        for update (PostgreSQL; SQLite serialises writers already), or None."""
        return self.session.execute(
            select(sms_messages.c.id, sms_messages.c.call_ref, sms_messages.c.status, sms_messages.c.created_at,
                   sms_messages.c.followed_up_at, sms_messages.c.recipient_kind, sms_messages.c.template)
            .where(sms_messages.c.id == sms_id).with_for_update()).first()

    def mark_followed_up(self, sms_id: str, *, at: datetime, by: str, note: str) -> int:
        """Record a supervisor's follow-up on a text still not followed up; the rows changed (0: already)."""
        return rowcount(self.session.execute(
            update(sms_messages)
            .where(sms_messages.c.id == sms_id, sms_messages.c.followed_up_at.is_(None))
            .values(followed_up_at=at, followed_up_by=by, follow_up_note=note)))
