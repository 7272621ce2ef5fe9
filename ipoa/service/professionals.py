"""Professionals of the onward services: who is texted when a referral arrives (when a rota puts them on
duty: service/rotas.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.validation import normalise_uk_mobile
from .timers import running_clocks

if TYPE_CHECKING:
    from ..bootstrap import Services
    from ..domain.model import Call, Referral


class InvalidProfessional(ValueError):
    pass


def add_professional(svc: Services, *, name: str, service: str, mobile: str) -> int:
    if service not in svc.directory.services:
        raise InvalidProfessional(f"unknown service {service}")
    e164 = normalise_uk_mobile(mobile)
    if e164 is None:
        raise InvalidProfessional("the mobile must be a valid UK mobile number")
    with svc.uow() as uow:
        if uow.professionals.mobile_registered(e164):
            raise InvalidProfessional("that mobile is already registered")
        new_id = uow.professionals.add(name=name, mobile=e164, service=service, created_at=svc.clock.now())
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


@dataclass(frozen=True)
class Referrer:
    """Who sent a referral, for the receiving professional to ring back: the user's name (their username
    if they are not a user any more), their centre and the centre's number (directory.yaml, if listed)."""

    username: str
    name: str
    centre: str | None
    centre_name: str | None
    centre_phone: str | None


@dataclass(frozen=True)
class AcceptBy:
    """The referral's running acceptance clock: when it must be accepted by, and whether that has passed."""

    due_at: datetime
    overdue: bool


def referrer(svc: Services, referral: Referral, call: Call) -> Referrer:
    """The referral's sender as the receiving professional needs them: a name, a centre, a number."""
    with svc.uow() as uow:
        user = uow.users.find(referral.sent_by)
        name = user.display_name if user is not None and user.display_name else referral.sent_by
        centre_code = (user.centre if user is not None else None) or call.centre
    centre = svc.directory.centres.get(centre_code) if centre_code else None
    return Referrer(username=referral.sent_by, name=name, centre=centre_code,
                    centre_name=centre.name if centre else None, centre_phone=centre.phone if centre else None)


def accept_by(svc: Services, referral: Referral, call: Call) -> AcceptBy | None:
    """The acceptance deadline of a referral whose acceptance clock runs (None once accepted, declined...):
    overdue when the clock breached or its time has passed."""
    now = svc.clock.now()
    for clock in running_clocks(svc, [call.ref]).get(call.ref, []):
        if clock.kind == "acceptance" and clock.referral_id == referral.id:
            return AcceptBy(due_at=clock.due_at, overdue=clock.breached or clock.overdue(now))
    return None
