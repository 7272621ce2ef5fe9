"""Loading and saving calls. Reads for screens and figures live in adapters/queries.py."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import select, text
from sqlalchemy.orm import Session, joinedload

from ..domain.model import AuditEvent, Call
from .orm import audit_events, calls


class OpenCallRow(NamedTuple):
    ref: str
    centre: str
    centre_path: str | None
    state: str
    logged_at: datetime
    need: str
    urgency: str


class CallRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, call: Call) -> None:
        self.session.add(call)

    def get(self, ref: str) -> Call | None:
        """The call with its referrals, in one SELECT (joined) rather than the mapping's two (selectin):
        every use case that changes a call reads them (the access policy's facts, the workflow)."""
        return self.session.scalars(select(Call).where(calls.c.ref == ref)
                                    .options(joinedload(_referrals()))).unique().one_or_none()

    def open_for_nhs_number(self, nhs_number: str, final_states: set[str], limit: int = 10) -> list[OpenCallRow]:
        """The most recent open calls for a person (ref, centre, state, logged_at, need, urgency): enough
        for the handler to recognise a duplicate. Bounded, and plain rows rather than entities, because
        every intake asks."""
        stmt = (select(calls.c.ref, calls.c.centre, calls.c.centre_path, calls.c.state, calls.c.logged_at,
                       calls.c.need, calls.c.urgency)
                .where(calls.c.nhs_number == nhs_number, calls.c.state.not_in(sorted(final_states)))
                .order_by(calls.c.logged_at.desc()).limit(limit))
        return [OpenCallRow(*row) for row in self.session.execute(stmt)]

    def lock_intake(self, nhs_number: str) -> None:
        """Serialise intakes for one NHS number from the duplicate check to commit. Without it, concurrent
        intakes all find no open call and all insert one (10 at once made 7). On PostgreSQL a transaction-
        scoped advisory lock, released by commit or rollback; its own statement, before the check, because
        a statement's snapshot is taken when it starts (READ COMMITTED): the check must start after the lock
        is held to see the call its holder committed. SQLite needs nothing: BEGIN IMMEDIATE already makes
        each writing transaction wait for the one before."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        digest = hashlib.sha256(nhs_number.encode()).digest()
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), CAST(:key AS integer))"),
            {"space": _INTAKE_LOCK_SPACE, "key": int.from_bytes(digest[:4], "big", signed=True)})

    def logged_in(self, centre: str, start: datetime, end: datetime, limit: int) -> list[Call]:
        """A centre's calls logged in [start, end), oldest first, at most limit."""
        return list(self.session.scalars(
            select(Call).where(calls.c.centre == centre, calls.c.logged_at >= start, calls.c.logged_at < end)
            .order_by(calls.c.logged_at).limit(limit)))

    def history(self, ref: str) -> list[AuditEvent]:
        stmt = select(AuditEvent).where(audit_events.c.call_ref == ref).order_by(audit_events.c.seq)
        return list(self.session.scalars(stmt))


def _referrals() -> Any:
    """Call.referrals as the mapping (adapters/orm.py) instruments it: the domain class types it a list."""
    return cast(Any, Call).referrals


# pg_advisory_xact_lock(space, key): this space is the duplicate check's, so its keys never meet another
# advisory lock's. The key is a hash of the NHS number, not the number: locks show in pg_locks.
_INTAKE_LOCK_SPACE = 0x1A0A
