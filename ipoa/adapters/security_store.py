"""Reading the security log, `security_events` (service/security.py, and the lockout's counting in
service/signin.py; docs/security.md). Events are written through the unit of work's chain
(adapters/audit_store.py), never here."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..domain.model import SecurityEvent
from .orm import security_events as table


class SecurityEventStore:
    def __init__(self, session: Session):
        self.session = session

    def newest_first(self, *, kind: str | None, user: str | None, before: int | None,
                     limit: int) -> list[SecurityEvent]:
        """Up to `limit` events by number, newest first: of one kind, naming one user as actor or subject,
        numbered below `before`, when given."""
        stmt = select(table).order_by(table.c.seq.desc()).limit(limit)
        if kind:
            stmt = stmt.where(table.c.kind == kind)
        if user:
            stmt = stmt.where(or_(table.c.actor == user, table.c.subject == user))
        if before is not None:
            stmt = stmt.where(table.c.seq < before)
        return [SecurityEvent(**row._mapping) for row in self.session.execute(stmt)]

    def latest(self, kind: str) -> SecurityEvent | None:
        row = self.session.execute(select(table).where(table.c.kind == kind)
                                   .order_by(table.c.seq.desc()).limit(1)).first()
        return SecurityEvent(**row._mapping) if row is not None else None

    def last_at(self, actor: str, kind: str, after: datetime) -> datetime | None:
        """When `actor` last had an event of `kind` after `after`, or None."""
        return self.session.scalar(select(func.max(table.c.at)).where(
            table.c.actor == actor, table.c.kind == kind, table.c.at > after))

    def count(self, actor: str, kinds: Iterable[str], after: datetime) -> int:
        """How many events of these kinds `actor` had after `after`."""
        return self.session.scalar(select(func.count()).select_from(table).where(
            table.c.actor == actor, table.c.kind.in_(kinds), table.c.at > after)) or 0
