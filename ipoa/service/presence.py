"""Who is signed in: `users.last_seen_at`, behind "handlers signed in" on the supervisor's dashboard.
Written at most once a minute per user, in a small transaction of its own."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update

from ..adapters.orm import users

SEEN_EVERY = timedelta(minutes=1)


def record_seen(svc, user_id: int, now: datetime) -> None:
    with svc.uow() as uow:
        uow.session.execute(update(users).where(
            users.c.id == user_id, or_(users.c.last_seen_at.is_(None), users.c.last_seen_at <= now - SEEN_EVERY))
            .values(last_seen_at=now))
        uow.commit()


def record_signed_out(svc, user_id: int) -> None:
    """Signing out takes a user off the "signed in" count at once."""
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.id == user_id).values(last_seen_at=None))
        uow.commit()
