"""Server-side sessions, the rows of `user_sessions` (service/sessions.py; docs/security.md, "Sign-in,
sessions and multi-factor"). Sessions are found by key: the SHA-256 of the cookie's id, never the id."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from .orm import user_sessions as table
from .results import rowcount


class SessionRow(NamedTuple):
    """A server-side session as stored (service/sessions.py reads it as its `Row`)."""

    key: str  # the SHA-256 of the cookie's id
    user_id: int | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    mfa_verified_at: datetime | None
    data: str | None

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None and self.mfa_verified_at is not None

    @property
    def pending_mfa(self) -> bool:
        """The password was right; the second factor (or enrolment) is still to come."""
        return self.user_id is not None and self.mfa_verified_at is None


class SessionStore:
    def __init__(self, session: Session):
        self.session = session

    def open(self, key: str) -> SessionRow | None:
        """The session's row if it has not ended."""
        found = self.session.execute(select(table.c.id, table.c.user_id, table.c.created_at, table.c.last_seen_at,
                                            table.c.expires_at, table.c.mfa_verified_at, table.c.data)
                                     .where(table.c.id == key, table.c.ended_at.is_(None))).first()
        return SessionRow(*found) if found is not None else None

    def add(self, **values: Any) -> None:
        self.session.execute(table.insert().values(**values))

    def update_open(self, key: str, **values: Any) -> int:
        """Change a session not yet ended; how many rows changed (0 or 1)."""
        return rowcount(self.session.execute(update(table).where(table.c.id == key, table.c.ended_at.is_(None))
                                    .values(**values)))

    def end_for_user(self, user_id: int, now: datetime, reason: str | None) -> int:
        """End every open session of a user; the number ended."""
        return rowcount(self.session.execute(update(table).where(table.c.user_id == user_id, table.c.ended_at.is_(None))
                                    .values(ended_at=now, end_reason=reason)))

    def retire(self, key: str, now: datetime, reason: str) -> None:
        """Remove a visitor's session, or end it if it belonged to someone."""
        self.session.execute(delete(table).where(table.c.id == key, table.c.user_id.is_(None)))
        self.session.execute(update(table).where(table.c.id == key, table.c.ended_at.is_(None))
                             .values(ended_at=now, end_reason=reason))

    def prune(self, now: datetime, idle_since: datetime, ended_before: datetime) -> int:
        """Remove visitors' sessions unused since `idle_since`, and sessions ended or run out before
        `ended_before`; how many."""
        return rowcount(self.session.execute(delete(table).where(or_(
            and_(table.c.user_id.is_(None), table.c.last_seen_at < idle_since),
            table.c.ended_at < ended_before,
            table.c.expires_at < ended_before))))
