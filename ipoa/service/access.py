"""The access policy applied: every use case that reads or changes a patient's record asks `authorise`
(domain/access.py decides), and every read of identifiable details leaves an access event in the same
transaction (`record_access`). Entry points never check relationships themselves."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..domain import access as policy
from ..domain.model import AccessEvent, Call
from .errors import OutsideRelationship

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork


class Who(Protocol):
    """Who is asking, as the policy needs them: service.calls.Actor (whose `service`, a professional's,
    is read when it has one)."""

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def centre(self) -> str | None: ...


@dataclass(frozen=True)
class Access:
    """Why a user may see or change a record: the relationship, and the break-glass grant if that is it."""

    relationship: str
    grant_id: int | None = None


def subject(actor: Who) -> policy.Subject:
    return policy.Subject(username=actor.username, role=actor.role, centre=actor.centre,
                          service=getattr(actor, "service", None))


def facts(uow: UnitOfWork, actor: Who, call: Call, now: datetime) -> tuple[policy.RecordFacts, int | None]:
    grant = uow.break_glass.active_grant(actor.username, call.ref, now)
    record = policy.RecordFacts(centre=call.centre, centres=call.centres,
                                services=tuple(r.service for r in call.referrals), break_glass=grant is not None)
    return record, grant


_REFUSED = {
    "view": "You can see the calls of your own centre, and calls transferred to or from it",
    "act": "You can change the calls that are with your own centre",
    "view_referral": "You can see the referrals to your own service",
    "act_referral": "You can act on the referrals to your own service",
    "view_access_log": "The access log of a call is for the supervisors of the centres it has been with",
}


def authorise(uow: UnitOfWork, actor: Who, call: Call, action: str, now: datetime) -> Access:
    """Access, or OutsideRelationship (a 403) when the policy refuses."""
    record, grant = facts(uow, actor, call, now)
    who = subject(actor)
    relationship = policy.decide(who, record, action)
    if relationship is None:
        can_break_glass = not record.break_glass and policy.break_glass_would_allow(who, action)
        message = f"{_REFUSED[action]}. Call {call.ref} is not one of them"
        if can_break_glass:
            message += ("; if you need it now, open it by break-glass: choose a reason, and your "
                        "access is recorded and reviewed by its centre's supervisor")
        raise OutsideRelationship(call.ref, message + ".", break_glass=can_break_glass)
    return Access(relationship, grant if relationship == "break_glass" else None)


def permitted(uow: UnitOfWork, actor: Who, call: Call, action: str, now: datetime) -> bool:
    record, _ = facts(uow, actor, call, now)
    return policy.decide(subject(actor), record, action) is not None


def may_create_in(actor: Who, centre: str) -> bool:
    """Logging a call creates a record in that centre: the user must be able to act there."""
    return policy.decide(subject(actor), policy.RecordFacts(centre=centre, centres=(centre,)), "act") is not None


def may_see_centre(actor: Who, centre: str) -> bool:
    """A centre's own lists (its queue, its texts) are for those who may see its calls."""
    return policy.decide(subject(actor), policy.RecordFacts(centre=centre, centres=(centre,)), "view") is not None


def record_access(uow: UnitOfWork, actor: Who, ref: str, route: str, access: Access, now: datetime,
                  referral_id: str | None = None) -> None:
    uow.add_event(AccessEvent(at=now, username=actor.username, role=actor.role, centre=actor.centre,
                              call_ref=ref, route=route[:120], purpose=access.relationship,
                              referral_id=referral_id, grant_id=access.grant_id))
