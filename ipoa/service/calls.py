"""Use cases on calls. Each runs in one unit of work: validate, load, let the engine decide, record the
audit events and outbox messages, commit. Entry points (web, API, CLI, jobs) call only these."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.engine import CALL_WORKFLOW
from ..domain.errors import DomainError, TriggerNotAllowed
from ..domain.model import Call, new_ref
from ..domain.routing import Decision
from .commands import DecideRoute, FireTrigger, InvalidInput, LogCall, parse


@dataclass(frozen=True)
class Actor:
    username: str
    role: str
    centre: str | None

    def may_use_centre(self, centre: str) -> bool:
        return self.role in ("supervisor", "admin") or self.centre == centre


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class DuplicateSuspected(DomainError):
    """Open calls exist for this NHS number; the handler must see them before making another."""

    def __init__(self, open_calls: list[Call]):
        self.open_calls = open_calls
        super().__init__(f"{len(open_calls)} open call(s) for this NHS number")


def _context(svc) -> dict[str, Any]:
    return {"centres": svc.directory.centres, "needs": svc.routing.needs,
            "today": svc.clock.now().date()}


def decide_route(svc, payload: dict[str, Any]) -> Decision:
    cmd: DecideRoute = parse(DecideRoute, payload, **_context(svc))
    return svc.routing.decide(cmd.need, cmd.urgency, cmd.at, postcode=cmd.postcode)


def recommend(svc, call: Call, at: datetime | None = None) -> Decision:
    return svc.routing.decide(call.need, call.urgency, at or svc.clock.now(), postcode=call.postcode)


def log_call(svc, actor: Actor, payload: dict[str, Any], *, allow_duplicate: bool = False) -> Call:
    cmd: LogCall = parse(LogCall, payload, **_context(svc))
    if not actor.may_use_centre(cmd.centre):
        raise Forbidden(f"{actor.username} logs calls for {actor.centre} only")
    now = svc.clock.now()
    decision = svc.routing.decide(cmd.need, cmd.urgency, now, postcode=cmd.subject.postcode)
    with svc.uow() as uow:
        engine = svc.engine(session=uow.session)
        wf = engine.latest(CALL_WORKFLOW)
        if cmd.subject.nhs_number and not allow_duplicate:
            existing = uow.calls.open_for_nhs_number(cmd.subject.nhs_number, wf.final_states)
            if existing:
                raise DuplicateSuspected(existing)
        call = Call(
            ref=new_ref(), centre=cmd.centre, caller_type=cmd.caller.type, caller_name=cmd.caller.name,
            caller_phone=cmd.caller.phone, nhs_number=cmd.subject.nhs_number,
            given_name=cmd.subject.given_name, family_name=cmd.subject.family_name,
            date_of_birth=cmd.subject.date_of_birth, postcode=cmd.subject.postcode,
            locality=decision.locality, out_of_area=decision.out_of_area, need=cmd.need,
            urgency=cmd.urgency, summary=cmd.summary, workflow=wf.name, workflow_version=wf.version,
            logged_at=now, logged_by=actor.username, recommended=decision.to_dict(),
            updates_to=cmd.caller.phone if cmd.caller.wants_updates else None)
        result = engine.start_call(call, actor=actor.username, now=now)
        uow.calls.add(call)
        uow.record(result)
        uow.commit()
    return call


def _check_centre(actor: Actor, call: Call) -> None:
    # Handlers act on the calls in their own centre; a transfer hands the call to the other centre.
    if not actor.may_use_centre(call.centre):
        raise Forbidden(f"call {call.ref} is with {call.centre}; {actor.username} works for {actor.centre}")


def get_call(svc, ref: str) -> tuple[Call, list]:
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        return call, uow.calls.history(ref)


def fire_call_trigger(svc, actor: Actor, ref: str, payload: dict[str, Any]) -> Call:
    cmd: FireTrigger = parse(FireTrigger, payload)
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        _check_centre(actor, call)
        engine = svc.engine(needs=(call.workflow, call.workflow_version), session=uow.session)
        decision = recommend(svc, call, now)
        result = engine.fire(call, cmd.trigger, actor=actor.username, now=now, data=cmd.data,
                             reason=cmd.reason, expected_version=cmd.expected_version,
                             recommendation=decision)
        uow.record(result)
        uow.commit()
    return call


# What the receiving service's professionals may do to a referral; withdrawing is the referrer's.
SERVICE_TRIGGERS = frozenset({"accept", "start", "complete", "decline"})


def fire_referral_trigger(svc, actor: Actor, ref: str, referral_id: str, payload: dict[str, Any], *,
                          as_service: str | None = None) -> Call:
    """as_service: a professional of that service acting (by SMS) on a referral to it, whatever the
    call's centre; anyone else acts as a member of the call's centre."""
    cmd: FireTrigger = parse(FireTrigger, payload)
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None or call.referral(referral_id) is None:
            raise NotFound(f"no referral {referral_id} on call {ref}")
        referral = call.referral(referral_id)
        if as_service is None:
            _check_centre(actor, call)
        elif referral.service != as_service:
            raise Forbidden(f"referral {referral_id} is to {referral.service}, not {as_service}")
        elif cmd.trigger not in SERVICE_TRIGGERS:
            raise Forbidden(f"'{cmd.trigger}' is for the referring centre, not the service")
        engine = svc.engine(needs=(referral.workflow, referral.workflow_version), session=uow.session)
        result = engine.fire_referral(call, referral_id, cmd.trigger, actor=actor.username, now=now,
                                      data=cmd.data, reason=cmd.reason,
                                      expected_version=cmd.expected_version)
        uow.record(result)
        uow.commit()
    return call


def allowed_actions(svc, entity) -> list:
    return svc.engine(needs=(entity.workflow, entity.workflow_version)).allowed(entity)


__all__ = [
    "Actor", "NotFound", "Forbidden", "DuplicateSuspected", "InvalidInput", "TriggerNotAllowed",
    "decide_route", "recommend", "log_call", "get_call", "fire_call_trigger", "fire_referral_trigger",
    "allowed_actions",
]
