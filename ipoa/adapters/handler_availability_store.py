"""Handlers taking phone calls (handler_availability, migration 0013): a flag per user with when it last
changed, written by service/call_takers.py."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .orm import handler_availability


class HandlerAvailabilityStore:
    def __init__(self, session: Session):
        self.session = session

    def set(self, user_id: int, taking_calls: bool, at: datetime) -> bool:
        """Sets the flag; False (and nothing written) if it was so already, so `changed_at` says since when."""
        if self.get(user_id) == taking_calls:
            return False
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(handler_availability).values(user_id=user_id, taking_calls=taking_calls,
                                                           changed_at=at)
        self.session.execute(stmt.on_conflict_do_update(
            index_elements=[handler_availability.c.user_id],
            set_={"taking_calls": taking_calls, "changed_at": at}))
        return True

    def get(self, user_id: int) -> bool | None:
        return self.session.scalar(select(handler_availability.c.taking_calls)
                                   .where(handler_availability.c.user_id == user_id))

    def since(self, user_id: int) -> datetime | None:
        return self.session.scalar(select(handler_availability.c.changed_at)
                                   .where(handler_availability.c.user_id == user_id))
