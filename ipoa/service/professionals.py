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
