"""Who has viewed a call's record: its access events, oldest first, with each user's display name."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .orm import access_events as a
from .orm import users


class AccessLogQueries:
    def __init__(self, session: Session):
        self.session = session

    def for_call(self, ref: str) -> list[Any]:
        """Rows of (at, username, display_name, role, centre, route, purpose, referral_id)."""
        return list(self.session.execute(
            select(a.c.at, a.c.username, users.c.display_name, a.c.role, a.c.centre, a.c.route, a.c.purpose,
                   a.c.referral_id)
            .outerjoin(users, users.c.username == a.c.username)
            .where(a.c.call_ref == ref).order_by(a.c.seq)).all())
