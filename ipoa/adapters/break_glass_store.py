"""Break-glass grants (docs/information-governance.md): opening a record outside the relationship, for a time,
and the supervisors' review of each opening."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .orm import break_glass_grants as g
from .orm import users
from .results import AnyRow, inserted_int_id


class BreakGlassStore:
    def __init__(self, session: Session):
        self.session = session

    def active_grant(self, username: str, ref: str, now: datetime) -> int | None:
        """The id of this user's unexpired grant on this call (the latest to expire), if any."""
        return self.session.scalar(
            select(g.c.id).where(g.c.username == username, g.c.call_ref == ref, g.c.expires_at > now)
            .order_by(g.c.expires_at.desc()).limit(1))

    def add(self, *, call_ref: str, centre: str, username: str, role: str, user_centre: str | None,
            reason: str, note: str | None, granted_at: datetime, expires_at: datetime) -> int:
        return inserted_int_id(self.session.execute(insert(g).values(
            call_ref=call_ref, centre=centre, username=username, role=role, user_centre=user_centre,
            reason=reason, note=note, granted_at=granted_at, expires_at=expires_at)))

    def for_call(self, ref: str) -> list[AnyRow]:
        """Every opening of a call, oldest first: rows of break_glass_grants with the user's display_name."""
        return list(self.session.execute(
            select(g, users.c.display_name).outerjoin(users, users.c.username == g.c.username)
            .where(g.c.call_ref == ref).order_by(g.c.granted_at)))

    def for_review(self, centre: str, *, include_reviewed: bool, limit: int) -> list[AnyRow]:
        """Openings of calls held by a centre when opened: unreviewed first, newest first."""
        stmt = (select(g, users.c.display_name).outerjoin(users, users.c.username == g.c.username)
                .where(g.c.centre == centre))
        if not include_reviewed:
            stmt = stmt.where(g.c.reviewed_at.is_(None))
        return list(self.session.execute(stmt.order_by(g.c.reviewed_at.is_not(None), g.c.granted_at.desc())
                                         .limit(limit)))

    def get(self, grant_id: int) -> AnyRow | None:
        """(id, centre, call_ref, username, reviewed_at), or None."""
        return self.session.execute(select(g.c.id, g.c.centre, g.c.call_ref, g.c.username, g.c.reviewed_at)
                                    .where(g.c.id == grant_id)).first()

    def mark_reviewed(self, grant_id: int, *, at: datetime, by: str, comment: str) -> None:
        self.session.execute(update(g).where(g.c.id == grant_id, g.c.reviewed_at.is_(None))
                             .values(reviewed_at=at, reviewed_by=by, review_comment=comment))
