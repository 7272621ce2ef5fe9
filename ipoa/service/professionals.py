"""Professionals of the onward services: who is texted when a referral arrives (when a rota puts them on
duty: service/rotas.py), and their management by administrators (the pages of web/professionals_admin.py
and `flask --app ipoa professionals ...`): add, edit, deactivate and reactivate, each one unit of work with
its professional_changed security event, which names the service and the fields changed, never a mobile
number (docs/security.md)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from ..adapters.professional_store import HeldShift
from ..domain.calendar import LONDON
from ..domain.validation import invisible_problem, normalise_uk_mobile, text_problem
from . import security
from .errors import NotFound
from .rotas import forget_outlook
from .timers import running_clocks

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services
    from ..domain.model import Call, Referral


NAME_MAX = 120  # professionals.name
MOBILE_MAX = 32  # what anyone types for a UK mobile, spaces and all; longer is not one
USERNAME_MAX = 64  # users.username
SYSTEM = "system"  # the actor of a professional added by code with no one named (the demo's seeding)


class InvalidProfessional(ValueError):
    """A change refused, in plain English; `field` names the input at fault (name, mobile, service, user)
    and `errors` holds every field's problem, so a page can mark each field and a command its option."""

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.errors = dict(errors) if errors else ({field: message} if field else {})


class Keep(enum.Enum):
    """edit_professional: leave this field as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@dataclass(frozen=True)
class ProfessionalListing:
    id: int
    name: str
    service: str
    mobile: str  # E.164
    username: str | None  # the linked user's
    active: bool
    opted_out: bool  # their number texted STOP (on their row or in sms_opt_outs: adapters/sms_store.stopped)


@dataclass(frozen=True)
class RemovedFrom:
    """What taking a professional off the rota changed (or would change): the shifts they worked or led,
    and the services whose standing duty lead they were."""

    shifts: tuple[HeldShift, ...]
    standing_duty_lead_of: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.shifts or self.standing_duty_lead_of)


def _refuse(errors: dict[str, str]) -> None:
    if errors:
        field, message = next(iter(errors.items()))
        raise InvalidProfessional(message, field, errors)


def _check_name(name: object, errors: dict[str, str]) -> str:
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "Enter the professional's name"
        return ""
    cleaned = name.strip()
    if len(cleaned) > NAME_MAX:
        errors["name"] = f"The name must be {NAME_MAX} characters or fewer"
    elif text_problem(cleaned) is not None:
        errors["name"] = ("The name must be on one line, without control characters or "
                          "bidirectional-text overrides")
    elif problem := invisible_problem(cleaned, field="name"):  # as every name's (domain/validation.py)
        errors["name"] = problem
    return cleaned


def _check_mobile(mobile: object, errors: dict[str, str]) -> str:
    if not isinstance(mobile, str) or not mobile.strip():
        errors["mobile"] = "Enter the professional's UK mobile number, like 07700 900123"
        return ""
    e164 = (normalise_uk_mobile(mobile) if len(mobile) <= MOBILE_MAX and text_problem(mobile) is None
            else None)
    if e164 is None:
        errors["mobile"] = "The mobile must be a valid UK mobile number, like 07700 900123"
        return ""
    return e164


def _check_service(svc: Services, service: object, errors: dict[str, str]) -> str:
    if not isinstance(service, str) or not service:
        errors["service"] = "Choose the professional's service"
        return ""
    if service not in svc.directory.services:
        errors["service"] = "Choose a service from the directory's list"
        return ""
    return service


def _username(user: object, errors: dict[str, str]) -> str | None:
    """The username typed (None: no linked user), checked for shape only."""
    if user is None:
        return None
    if not isinstance(user, str):
        errors["user"] = "The linked user must be a username"
        return None
    cleaned = user.strip()
    if not cleaned:
        return None
    if len(cleaned) > USERNAME_MAX or text_problem(cleaned) is not None:
        errors["user"] = f"A username is at most {USERNAME_MAX} characters, without control characters"
        return None
    return cleaned


def _linkable(uow: UnitOfWork, username: str, errors: dict[str, str], except_id: int | None = None) -> int | None:
    """The id of an active user with the role professional not linked to another professional."""
    found = uow.users.find(username)
    if found is None:
        errors["user"] = "There is no user with that username"
    elif found.role != "professional":
        errors["user"] = "The linked user must have the role professional"
    elif not found.active:
        errors["user"] = "That user is deactivated: reactivate them first or choose another"
    elif uow.professionals.linked_to(found.id, except_id) is not None:
        errors["user"] = "That user is already linked to another professional"
    else:
        return int(found.id)
    return None


def _record(uow: UnitOfWork, now: datetime, actor: str, client: str | None, professional_id: int, change: str,
            **detail: Any) -> None:
    """The professional_changed event about the professional's id (as an opt-out's names them): the
    change, the service and the fields, never the mobile."""
    security.record(uow, now, security.PROFESSIONAL_CHANGED, actor, subject=str(professional_id), client=client,
                    detail={"change": change, **detail})


def add_professional(svc: Services, *, name: str, service: str, mobile: str, actor: str = SYSTEM,
                     user: str | None = None, client: str | None = None) -> int:
    """Register a professional of a service (on duty when a rota says so), optionally linked to a user
    (by username) for their referral page; its id. One unit of work with its professional_changed event."""
    errors: dict[str, str] = {}
    name = _check_name(name, errors)
    e164 = _check_mobile(mobile, errors)
    service = _check_service(svc, service, errors)
    username = _username(user, errors)
    now = svc.clock.now()
    with svc.uow() as uow:
        if e164 and uow.professionals.mobile_taken(e164):
            errors["mobile"] = "That mobile number is already registered to another professional"
        user_id = _linkable(uow, username, errors) if username else None
        _refuse(errors)
        new_id = uow.professionals.add(name=name, mobile=e164, service=service, created_at=now)
        if user_id is not None:
            uow.professionals.update(new_id, user_id=user_id)
        _record(uow, now, actor, client, new_id, "added", service=service, **({"user": username} if username else {}))
        uow.commit()
    return new_id


def _get(uow: UnitOfWork, professional_id: int) -> Any:
    row = uow.professionals.get(professional_id)
    if row is None:
        raise NotFound(f"no professional has the id {professional_id}")
    return row


def _today(svc: Services) -> date:
    return svc.clock.now().astimezone(LONDON).date()


def _take_off(uow: UnitOfWork, professional_id: int, service: str | None, today: date) -> RemovedFrom:
    held = uow.professionals.shifts_held(professional_id, service, today)
    uow.professionals.take_off_shifts(professional_id, [s.id for s in held])
    leads = uow.professionals.standing_lead_of(professional_id)
    uow.professionals.drop_standing_lead(professional_id)
    return RemovedFrom(tuple(held), tuple(leads))


def edit_professional(svc: Services, actor: str, professional_id: int, *, name: str | Keep = KEEP,
                      mobile: str | Keep = KEEP, service: str | Keep = KEEP,
                      user: str | None | Keep = KEEP, client: str | None = None) -> list[str]:
    """Change a professional's name, mobile (E.164, not another professional's), service (from the
    directory) and linked user (a username: an active user with the role professional not linked to
    another professional; None or "" unlinks); the fields that changed. A STOP stays with the number that
    texted it: a new mobile has not opted out, the old one still has. A professional moved to another
    service is taken off the old service's shifts and standing duty lead, since a rota holds only its own
    service's people. One unit of work with its professional_changed event (the fields, never the number)."""
    errors: dict[str, str] = {}
    wanted: dict[str, Any] = {}
    if name is not KEEP:
        wanted["name"] = _check_name(name, errors)
    if mobile is not KEEP:
        wanted["mobile"] = _check_mobile(mobile, errors)
    if service is not KEEP:
        wanted["service"] = _check_service(svc, service, errors)
    username = _username(user, errors) if user is not KEEP else None
    now = svc.clock.now()
    with svc.uow() as uow:
        row = _get(uow, professional_id)
        if wanted.get("mobile") and uow.professionals.mobile_taken(wanted["mobile"], professional_id):
            errors["mobile"] = "That mobile number is already registered to another professional"
        if user is not KEEP:
            wanted["user_id"] = _linkable(uow, username, errors, professional_id) if username else None
        _refuse(errors)
        changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
        if not changed:
            return []
        detail: dict[str, Any] = {"fields": sorted("user" if k == "user_id" else k for k in changed),
                                  "service": changed.get("service", row.service)}
        if "mobile" in changed and row.opted_out_at is not None:
            # A STOP is the number's that texted it (docs/domain.md, "SMS to professionals"): the old number
            # stays opted out (sms_opt_outs, as any number not a professional's), the new one has not opted out.
            uow.sms.set_number_opted_out(row.mobile, row.opted_out_at)
            uow.professionals.set_opted_out(professional_id, None)
            detail["opt_out"] = "kept with the old number"
        uow.professionals.update(professional_id, **changed)
        if "service" in changed:
            removed = _take_off(uow, professional_id, row.service, _today(svc))
            detail["from_service"] = row.service
            if removed.shifts:
                detail["removed_from_shifts"] = [s.id for s in removed.shifts]
        if "user_id" in changed:
            detail["user"] = username or None
        _record(uow, now, actor, client, professional_id, "edited", **detail)
        uow.commit()
    forget_outlook(svc)  # the dashboard's look ahead names who is on duty
    return sorted("user" if k == "user_id" else k for k in changed)


def on_rota(svc: Services, professional_id: int) -> RemovedFrom:
    """What deactivating the professional would take them off: the confirmation page names it."""
    with svc.uow() as uow:
        _get(uow, professional_id)
        return RemovedFrom(tuple(uow.professionals.shifts_held(professional_id, None, _today(svc))),
                           tuple(uow.professionals.standing_lead_of(professional_id)))


def deactivate_professional(svc: Services, actor: str, professional_id: int,
                            client: str | None = None) -> RemovedFrom | None:
    """The professional is kept (their texts and audit events name them) but is never on duty nor texted
    (service/rotas.py reads `active`), and is taken off the weekly pattern shifts, the one-off shifts
    from today on and the standing duty lead, so the rota shows the truth; what they were taken off, or
    None when they already were deactivated (nothing changes, nothing recorded)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = _get(uow, professional_id)
        if not row.active:
            return None
        uow.professionals.update(professional_id, active=False)
        removed = _take_off(uow, professional_id, None, _today(svc))
        _record(uow, now, actor, client, professional_id, "deactivated", service=row.service,
                removed_from_shifts=[s.id for s in removed.shifts],
                **({"standing_duty_lead_of": list(removed.standing_duty_lead_of)}
                   if removed.standing_duty_lead_of else {}))
        uow.commit()
    forget_outlook(svc)
    return removed


def reactivate_professional(svc: Services, actor: str, professional_id: int, client: str | None = None) -> bool:
    """The professional may be rostered and texted again (the rota is not restored: they are put on
    shifts again by whoever keeps the rota); False when they already were active."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = _get(uow, professional_id)
        if row.active:
            return False
        uow.professionals.update(professional_id, active=True)
        _record(uow, now, actor, client, professional_id, "reactivated", service=row.service)
        uow.commit()
    forget_outlook(svc)
    return True


def _listing(r: Any) -> ProfessionalListing:
    return ProfessionalListing(r.id, r.name, r.service, r.mobile, r.username, bool(r.active), bool(r.stopped))


def list_professionals(svc: Services, service: str | None = None,
                       include_inactive: bool = True) -> list[ProfessionalListing]:
    """Professionals by service, the active first, then by name: for the administrators' page and CLI."""
    with svc.uow() as uow:
        return [_listing(r) for r in uow.professionals.listing(service, include_inactive)]


def get_professional(svc: Services, professional_id: int) -> ProfessionalListing:
    with svc.uow() as uow:
        found = uow.professionals.listing(only=professional_id)
        if not found:
            raise NotFound(f"no professional has the id {professional_id}")
        return _listing(found[0])


def for_user(svc: Services, user_id: int) -> Any:
    """The professional record a signed-in professional user is linked to, or None. A deactivated
    professional is of no service any more: their user sees and acts on no referral (docs/domain.md,
    "Rotas")."""
    with svc.uow() as uow:
        row = uow.professionals.for_user(user_id)
    return row if row is not None and row.active else None


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
