"""Who is signed in: users.last_seen_at, behind "handlers signed in" on the supervisor's dashboard."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from .orm import users


class PresenceStore:
    def __init__(self, session: Session):
        self.session = session

    def seen(self, user_id: int, now: datetime, every: timedelta) -> None:
        """Marks the user seen now, unless they were marked less than `every` ago (one UPDATE either way;
        the condition keeps the row unwritten then)."""
        self.session.execute(update(users).where(
            users.c.id == user_id, or_(users.c.last_seen_at.is_(None), users.c.last_seen_at <= now - every))
            .values(last_seen_at=now))

    def signed_out(self, user_id: int) -> None:
        self.session.execute(update(users).where(users.c.id == user_id).values(last_seen_at=None))
