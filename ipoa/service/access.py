"""The access policy applied: every use case that reads or changes a patient's record asks `authorise`
(domain/access.py decides), and every read of identifiable details leaves an access event in the same
transaction (`record_access`). Entry points never check relationships themselves."""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    return Facts(uow, actor, call, now).full()


class Facts:
    """What the policy knows of a call for one actor at one instant, for a use case to ask about more than
    one action (authorise, then _may_fire). The break-glass grant is looked up at most once, and only when
    the relationship alone does not allow the action: a grant can only add a relationship, and the weakest
    (domain/access.relationships lists break_glass last), so it never changes a decision the others make."""

    def __init__(self, uow: UnitOfWork, actor: Who, call: Call, now: datetime) -> None:
        self._uow, self._username, self._ref, self._now = uow, actor.username, call.ref, now
        self.subject = subject(actor)
        self.without_grant = policy.RecordFacts(centre=call.centre, centres=call.centres,
                                                services=policy.referring_services(
                                                    ((r.service, r.closed_at) for r in call.referrals), now))
        self._services_ever = {r.service for r in call.referrals}
        self._full: tuple[policy.RecordFacts, int | None] | None = None

    @property
    def services_ever(self) -> set[str]:
        """Every service the call was ever referred to, however long ago (for the words of a refusal)."""
        return self._services_ever

    def full(self) -> tuple[policy.RecordFacts, int | None]:
        """The facts with the grant looked up, and the grant's id."""
        if self._full is None:
            grant = self._uow.break_glass.active_grant(self._username, self._ref, self._now)
            self._full = (replace(self.without_grant, break_glass=grant is not None), grant)
        return self._full

    def for_action(self, action: str) -> tuple[policy.RecordFacts, int | None]:
        """Facts on which the policy decides action as it would on the full facts."""
        if policy.decide(self.subject, self.without_grant, action) is not None:
            return self.without_grant, None
        return self.full()


_REFUSED = {
    "view": "You can see the calls of your own centre, and calls transferred to or from it",
    "act": "You can change the calls that are with your own centre",
    "transfer": "You can transfer the calls that are with your own centre",
    "view_referral": "You can see the referrals to your own service",
    "act_referral": "You can act on the referrals to your own service",
    "view_access_log": "The access log of a call is for the supervisors of the centres it has been with",
}
# A referral is reached by its id (a professional's page, a text's link, an SMS reply): its refusal does
# not name the call behind it, which the user has no relationship with (docs/information-governance.md,
# section 3).
_BY_REFERRAL = frozenset({"view_referral", "act_referral"})


def authorise(uow: UnitOfWork, actor: Who, call: Call, action: str, now: datetime,
              known: Facts | None = None) -> Access:
    """Access, or OutsideRelationship (a 403) when the policy refuses. known: this actor's Facts of this
    call now, when the use case asks the policy more than once."""
    if known is None:
        known = Facts(uow, actor, call, now)
    record, grant = known.for_action(action)
    who = known.subject
    relationship = policy.decide(who, record, action)
    if relationship is None:
        if action == "transfer" and record.break_glass:
            # The grant is for this record for a limited time; a transfer would make it lasting
            # (docs/information-governance.md, section 4).
            raise OutsideRelationship(call.ref, "You opened this call by break-glass: ask a supervisor at "
                                                f"{call.centre} to transfer it.", break_glass=False)
        can_break_glass = not record.break_glass and policy.break_glass_would_allow(who, action)
        which = "This referral is" if action in _BY_REFERRAL else f"Call {call.ref} is"
        message = f"{_REFUSED[action]}. {which} not one of them"
        if action in _BY_REFERRAL and who.service in known.services_ever:
            hours = int(policy.REFERRAL_ACCESS_AFTER_CLOSE.total_seconds() // 3600)
            message = (f"Your service's access to this referral ended {hours} hours after it was closed: only "
                       "those who still need the person's details can see them")
        if can_break_glass:
            message += ("; if you need it now, open it by break-glass: choose a reason, and your "
                        "access is recorded and reviewed by its centre's supervisor")
        raise OutsideRelationship(call.ref, message + ".", break_glass=can_break_glass)
    return Access(relationship, grant if relationship == "break_glass" else None)


def permitted(uow: UnitOfWork, actor: Who, call: Call, action: str, now: datetime) -> bool:
    known = Facts(uow, actor, call, now)
    record, _ = known.for_action(action)
    return policy.decide(known.subject, record, action) is not None


def permitted_on(uow: UnitOfWork, actor: Who, ref: str, record: policy.RecordFacts, action: str,
                 now: datetime) -> bool:
    """As `permitted`, for a call known only by its reference and facts (a list's rows, read without
    loading each call): the break-glass grant is looked up only when the relationship alone refuses and a
    grant would allow the action."""
    who = subject(actor)
    if policy.decide(who, record, action) is not None:
        return True
    if record.break_glass or not policy.break_glass_would_allow(who, action):
        return False
    if uow.break_glass.active_grant(actor.username, ref, now) is None:
        return False
    return policy.decide(who, replace(record, break_glass=True), action) is not None


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
