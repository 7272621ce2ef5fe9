"""Professionals of the onward services: who is texted when a referral arrives."""
from __future__ import annotations

from sqlalchemy import insert, select

from ..adapters.orm import professionals
from ..domain.validation import normalise_uk_mobile


class InvalidProfessional(ValueError):
    pass


def add_professional(svc, *, name: str, service: str, mobile: str, on_duty: bool = True) -> int:
    if service not in svc.directory.services:
        raise InvalidProfessional(f"unknown service {service}")
    e164 = normalise_uk_mobile(mobile)
    if e164 is None:
        raise InvalidProfessional("the mobile must be a valid UK mobile number")
    with svc.uow() as uow:
        if uow.session.scalar(select(professionals.c.id).where(professionals.c.mobile == e164)):
            raise InvalidProfessional("that mobile is already registered")
        new_id = uow.session.execute(insert(professionals).values(
            name=name, mobile=e164, service=service, on_duty=on_duty,
            created_at=svc.clock.now())).inserted_primary_key[0]
        uow.commit()
    return new_id


def for_user(svc, user_id: int):
    """The professional record a signed-in professional user is linked to, or None."""
    with svc.uow() as uow:
        return uow.session.execute(select(professionals).where(professionals.c.user_id == user_id)).first()


def link_user(svc, mobile: str, user_id: int) -> None:
    from sqlalchemy import update

    e164 = normalise_uk_mobile(mobile)
    with svc.uow() as uow:
        uow.session.execute(update(professionals).where(professionals.c.mobile == e164).values(user_id=user_id))
        uow.commit()


def service_referrals(svc, service: str, limit: int = 200) -> list:
    """Referrals to one service, open ones first, newest first: the professional's own worklist."""
    from ..adapters.orm import calls, referrals

    # Open: not yet in a final state of the referral's own version (the engine sets closed_at as it enters one).
    open_first = referrals.c.closed_at.is_(None).desc()
    with svc.uow() as uow:
        return list(uow.session.execute(
            select(referrals.c.id, referrals.c.state, referrals.c.version, referrals.c.sent_at,
                   calls.c.ref, calls.c.urgency, calls.c.need, calls.c.locality)
            .join(calls, calls.c.id == referrals.c.call_id)
            .where(referrals.c.service == service)
            .order_by(open_first, referrals.c.sent_at.desc()).limit(limit)))
