"""Who is signed in: `users.last_seen_at`, behind "handlers signed in" on the supervisor's dashboard.
Written at most once a minute per user, in a small transaction of its own."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bootstrap import Services

SEEN_EVERY = timedelta(minutes=1)


def record_seen(svc: Services, user_id: int, now: datetime) -> None:
    with svc.uow() as uow:
        uow.presence.seen(user_id, now, SEEN_EVERY)
        uow.commit()


def record_signed_out(svc: Services, user_id: int) -> None:
    """Signing out takes a user off the "signed in" count at once."""
    with svc.uow() as uow:
        uow.presence.signed_out(user_id)
        uow.commit()
