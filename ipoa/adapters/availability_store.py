"""A professional's OFF / ON within a shift: professionals.unavailable_until (migration 0012), written by
service/availability.py. Kept apart from professional_store.py, which the administrators' pages change."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from .orm import professionals


class AvailabilityStore:
    def __init__(self, session: Session):
        self.session = session

    def set_unavailable_until(self, professional_id: int, until: datetime | None) -> None:
        """OFF (until: the end of the shift they are on) or ON (None)."""
        self.session.execute(update(professionals).where(professionals.c.id == professional_id)
                             .values(unavailable_until=until))
