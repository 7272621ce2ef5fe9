"""Loading and saving calls. Reads for screens and figures live in adapters/queries.py."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.model import AuditEvent, Call
from .orm import calls


class CallRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, call: Call) -> None:
        self.session.add(call)

    def get(self, ref: str) -> Call | None:
        return self.session.scalars(select(Call).where(Call.ref == ref)).one_or_none()

    def open_for_nhs_number(self, nhs_number: str, final_states: set[str], limit: int = 10) -> list:
        """The most recent open calls for a person (ref, centre, state, logged_at, need, urgency): enough
        for the handler to recognise a duplicate. Bounded, and plain rows rather than entities, because
        every intake asks."""
        stmt = (select(calls.c.ref, calls.c.centre, calls.c.centre_path, calls.c.state, calls.c.logged_at,
                       calls.c.need, calls.c.urgency)
                .where(calls.c.nhs_number == nhs_number, calls.c.state.not_in(sorted(final_states)))
                .order_by(calls.c.logged_at.desc()).limit(limit))
        return list(self.session.execute(stmt))

    def history(self, ref: str) -> list[AuditEvent]:
        stmt = select(AuditEvent).where(AuditEvent.call_ref == ref).order_by(AuditEvent.seq)
        return list(self.session.scalars(stmt))
