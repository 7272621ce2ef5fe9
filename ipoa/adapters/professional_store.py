"""Professionals of the onward services (who is texted when a referral arrives) and their opting out."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .orm import professionals
from .results import AnyRow, inserted_int_id


class ProfessionalStore:
    def __init__(self, session: Session):
        self.session = session

    def by_mobile(self, e164: str) -> AnyRow | None:
        """The professional's row (id, name, mobile, service, opted_out_at, user_id, created_at),
        or None."""
        return self.session.execute(select(professionals).where(professionals.c.mobile == e164)).first()

    def mobile_registered(self, e164: str) -> bool:
        return bool(self.session.scalar(select(professionals.c.id).where(professionals.c.mobile == e164)))

    def add(self, *, name: str, mobile: str, service: str, created_at: datetime) -> int:
        return inserted_int_id(self.session.execute(insert(professionals).values(
            name=name, mobile=mobile, service=service, created_at=created_at)))

    def for_user(self, user_id: int) -> AnyRow | None:
        """The row of the professional a user account is linked to, or None."""
        return self.session.execute(select(professionals).where(professionals.c.user_id == user_id)).first()

    def link_user(self, e164: str | None, user_id: int) -> None:
        self.session.execute(update(professionals).where(professionals.c.mobile == e164).values(user_id=user_id))

    def set_opted_out(self, professional_id: int, at: datetime | None) -> None:
        """STOP (at: when) or START (None)."""
        self.session.execute(update(professionals).where(professionals.c.id == professional_id)
                             .values(opted_out_at=at))
