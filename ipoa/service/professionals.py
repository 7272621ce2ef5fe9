"""Professionals of the onward services: who is texted when a referral arrives."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain.validation import normalise_uk_mobile

if TYPE_CHECKING:
    from ..bootstrap import Services


class InvalidProfessional(ValueError):
    pass


def add_professional(svc: Services, *, name: str, service: str, mobile: str, on_duty: bool = True) -> int:
    if service not in svc.directory.services:
        raise InvalidProfessional(f"unknown service {service}")
    e164 = normalise_uk_mobile(mobile)
    if e164 is None:
        raise InvalidProfessional("the mobile must be a valid UK mobile number")
    with svc.uow() as uow:
        if uow.professionals.mobile_registered(e164):
            raise InvalidProfessional("that mobile is already registered")
        new_id = uow.professionals.add(name=name, mobile=e164, service=service, on_duty=on_duty,
                                       created_at=svc.clock.now())
        uow.commit()
    return new_id


def for_user(svc: Services, user_id: int) -> Any:
    """The professional record a signed-in professional user is linked to, or None."""
    with svc.uow() as uow:
        return uow.professionals.for_user(user_id)


def link_user(svc: Services, mobile: str, user_id: int) -> None:
    e164 = normalise_uk_mobile(mobile)
    with svc.uow() as uow:
        uow.professionals.link_user(e164, user_id)
        uow.commit()


def service_referrals(svc: Services, service: str, limit: int = 200) -> list[Any]:
    """Referrals to one service, open ones first, newest first: the professional's own worklist."""
    with svc.uow() as uow:
        return uow.referrals.to_service(service, limit)
