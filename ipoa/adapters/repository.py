"""Loading and saving calls. Reads for screens and figures live in adapters/queries.py."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.model import AuditEvent, Call


class CallRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, call: Call) -> None:
        self.session.add(call)

    def get(self, ref: str) -> Call | None:
        return self.session.scalars(select(Call).where(Call.ref == ref)).one_or_none()

    def open_for_nhs_number(self, nhs_number: str, final_states: set[str]) -> list[Call]:
        stmt = (select(Call).where(Call.nhs_number == nhs_number, Call.state.not_in(final_states))
                .order_by(Call.logged_at))
        return list(self.session.scalars(stmt))

    def history(self, ref: str) -> list[AuditEvent]:
        stmt = select(AuditEvent).where(AuditEvent.call_ref == ref).order_by(AuditEvent.at, AuditEvent.id)
        return list(self.session.scalars(stmt))
