"""Professionals of the onward services (who is texted when a referral arrives), their opting out, and
what the administrators' pages and CLI read and change: the list, a professional's shifts, taking them off
the rota."""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from .orm import professionals, rota_shift_members, rota_shifts, standing_duty_leads, users
from .results import AnyRow, inserted_int_id
from .sms_store import stopped


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

    # -- administrators' pages and CLI (service/professionals.py) -------------------------------------

    def get(self, professional_id: int) -> AnyRow | None:
        return self.session.execute(select(professionals).where(professionals.c.id == professional_id)).first()

    def listing(self, service: str | None = None, include_inactive: bool = True,
                only: int | None = None) -> list[AnyRow]:
        """Professionals (or the one whose id is `only`) with the username of the user linked to them
        (None if none) and whether their number texted STOP (`stopped`, by sms_store.stopped's one rule): by
        service, the active first, then by name."""
        p = professionals.c
        stmt = (select(p.id, p.name, p.mobile, p.service, p.active, p.opted_out_at, p.user_id,
                       users.c.username.label("username"), stopped(p.mobile).label("stopped"))
                .select_from(professionals.outerjoin(users, users.c.id == p.user_id)))
        if service is not None:
            stmt = stmt.where(p.service == service)
        if not include_inactive:
            stmt = stmt.where(p.active.is_(True))
        if only is not None:
            stmt = stmt.where(p.id == only)
        return list(self.session.execute(stmt.order_by(p.service, p.active.desc(), p.name, p.id)))

    def mobile_taken(self, e164: str, except_id: int | None = None) -> bool:
        """Whether another professional (not except_id) has this mobile."""
        stmt = select(professionals.c.id).where(professionals.c.mobile == e164)
        if except_id is not None:
            stmt = stmt.where(professionals.c.id != except_id)
        return self.session.scalar(stmt.limit(1)) is not None

    def linked_to(self, user_id: int, except_id: int | None = None) -> int | None:
        """The id of a professional (not except_id) the user is linked to, or None."""
        stmt = select(professionals.c.id).where(professionals.c.user_id == user_id)
        if except_id is not None:
            stmt = stmt.where(professionals.c.id != except_id)
        return self.session.scalar(stmt.limit(1))

    def update(self, professional_id: int, **values: Any) -> None:
        """Change columns: name, mobile, service, user_id, active."""
        self.session.execute(update(professionals).where(professionals.c.id == professional_id).values(**values))

    def shifts_held(self, professional_id: int, service: str | None, from_day: date) -> list[HeldShift]:
        """The rota shifts the professional works or leads: every active weekly pattern, and the one-off
        shifts on or after from_day (earlier ones are the record of what happened), of one service or all."""
        s = rota_shifts.c
        member = select(rota_shift_members.c.shift_id).where(
            rota_shift_members.c.professional_id == professional_id)
        stmt = select(rota_shifts, s.id.in_(member).label("is_member")).where(
            s.active.is_(True), or_(s.weekday.is_not(None), s.day >= from_day),
            or_(s.id.in_(member), s.duty_lead_id == professional_id))
        if service is not None:
            stmt = stmt.where(s.service == service)
        rows = self.session.execute(stmt.order_by(s.day.is_not(None), s.weekday, s.day, s.start_time, s.id))
        return [HeldShift(r.id, r.service, r.weekday, r.day, r.start_time, r.end_time, r.label,
                          bool(r.is_member), r.duty_lead_id == professional_id) for r in rows]

    def take_off_shifts(self, professional_id: int, shift_ids: list[int]) -> None:
        """Remove the professional from these shifts' members and duty lead."""
        if not shift_ids:
            return
        self.session.execute(delete(rota_shift_members).where(
            rota_shift_members.c.professional_id == professional_id, rota_shift_members.c.shift_id.in_(shift_ids)))
        self.session.execute(update(rota_shifts).where(
            rota_shifts.c.id.in_(shift_ids), rota_shifts.c.duty_lead_id == professional_id).values(duty_lead_id=None))

    def standing_lead_of(self, professional_id: int) -> list[str]:
        """The services whose standing duty lead the professional is."""
        return list(self.session.scalars(select(standing_duty_leads.c.service).where(
            standing_duty_leads.c.professional_id == professional_id).order_by(standing_duty_leads.c.service)))

    def drop_standing_lead(self, professional_id: int) -> None:
        self.session.execute(delete(standing_duty_leads).where(
            standing_duty_leads.c.professional_id == professional_id))


class HeldShift(NamedTuple):
    """A shift a professional is on: a weekly pattern (weekday) or a one-off (day)."""

    id: int
    service: str
    weekday: int | None
    day: date | None
    start: time
    end: time
    label: str | None
    member: bool
    duty_lead: bool
