"""Reading a patient's record: the call page, the API, a professional's referral page, a CSV export.
Each read goes through the access policy (service/access.py) and leaves an access event in the same
transaction: who, role, when, which record, which route, and why they could. Break-glass opens one
record outside the relationship, for a limited time, with a reason; the centre's supervisors review it
(never the one who opened it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain import access as policy
from ..domain.model import AuditEvent, Call, Referral, SecurityEvent
from ..domain.validation import text_problem
from . import access
from .errors import Forbidden, NotFound

if TYPE_CHECKING:
    from ..adapters.results import AnyRow
    from ..bootstrap import Services
    from .calls import Actor


@dataclass(frozen=True)
class CallView:
    call: Call
    history: list[AuditEvent]
    access: access.Access
    may_act: bool
    may_view_access_log: bool
    break_glass: list[Any]  # every break-glass opening of this call: rows of break_glass_grants (their fields)
    may_transfer: bool = False  # move it to another centre: never under break-glass (domain/access.py)


def view_call(svc: Services, actor: Actor, ref: str, route: str) -> CallView:
    """The call and its history for someone entitled to see it (OutsideRelationship otherwise)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        granted = access.authorise(uow, actor, call, "view", now)
        may_act = access.permitted(uow, actor, call, "act", now)
        may_log = access.permitted(uow, actor, call, "view_access_log", now)
        may_transfer = access.permitted(uow, actor, call, "transfer", now)
        history = uow.calls.history(ref)
        openings: list[Any] = list(uow.break_glass.for_call(ref))
        if call.pseudonymised_at is not None:
            history = [_without_free_text(e) for e in history]
            openings = [_note_removed(g) for g in openings]
        access.record_access(uow, actor, ref, route, granted, now)
        uow.commit()
    return CallView(call, history, granted, may_act, may_log, openings, may_transfer)


REMOVED = "[removed under retention]"


def _without_free_text(event: AuditEvent) -> AuditEvent:
    """A pseudonymised call's history as shown: what staff typed (reasons) may name the person, so it is
    not shown; the chained rows themselves stay as they were (docs/audit-and-retention.md)."""
    import dataclasses

    def scrub(value: Any) -> Any:  # the event's data: JSON values
        if isinstance(value, dict):
            return {k: (REMOVED if k in ("reason", "override_reason") and v else scrub(v)) for k, v in value.items()}
        return value

    return dataclasses.replace(event, reason=REMOVED if event.reason else None, data=scrub(event.data or {}))


def _note_removed(grant: AnyRow) -> Any:
    """A break-glass opening of a pseudonymised call as shown: its note is what the user typed, which may name
    the person, so it is not shown, as the history's reasons are not; the grant row itself stays
    (docs/audit-and-retention.md)."""
    from types import SimpleNamespace

    fields = grant._asdict()
    return SimpleNamespace(**{**fields, "note": REMOVED if fields.get("note") else None,
                              "review_comment": REMOVED if fields.get("review_comment") else None})


def view_referral(svc: Services, actor: Actor, referral_id: str, route: str) -> tuple[Call, Referral, access.Access]:
    """A referral, with its call's details, for a professional of the receiving service."""
    now = svc.clock.now()
    with svc.uow() as uow:
        ref = uow.referrals.call_ref(referral_id)
        call = uow.calls.get(ref) if ref else None
        referral = call.referral(referral_id) if call is not None else None
        if call is None or referral is None:
            raise NotFound(f"no referral {referral_id}")
        granted = access.authorise(uow, actor, call, "view_referral", now)
        if actor.service != referral.service:
            raise Forbidden(f"This referral is to {referral.service}; you can see the referrals to your own "
                            f"service ({actor.service}).")
        access.record_access(uow, actor, call.ref, route, granted, now, referral_id=referral_id)
        uow.commit()
    return call, referral, granted


EXPORT_MAX = 5000


def export_centre_calls(svc: Services, actor: Actor, start: datetime, end: datetime, route: str) -> list[Call]:
    """The calls of the user's centre logged in [start, end), for an identifiable export: only those the
    policy lets the user see, each leaving an access event (one per call) in one transaction."""
    if not actor.centre or not access.may_see_centre(actor, actor.centre):
        raise Forbidden("Exports of a centre's calls are for that centre's staff.")
    now = svc.clock.now()
    out: list[Call] = []
    with svc.uow() as uow:
        for call in uow.calls.logged_in(actor.centre, start, end, EXPORT_MAX):
            try:
                granted = access.authorise(uow, actor, call, "view", now)
            except Forbidden:
                continue
            access.record_access(uow, actor, call.ref, route, granted, now)
            out.append(call)
        uow.commit()
    return out


# --- break-glass --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    id: int
    call_ref: str
    reason: str
    expires_at: datetime


def break_glass(svc: Services, actor: Actor, ref: str, payload: Any, route: str) -> Grant:
    """Open one call outside the user's relationship: a reason from the list (and a note; required for
    'other'), for policy.BREAK_GLASS_FOR. Recorded (the grant and an access event), shown on the record,
    and listed for review by the supervisors of the centre that holds the call."""
    from .inputs import InvalidInput

    if not isinstance(payload, dict):
        raise InvalidInput({"body": "Expected a JSON object with reason and note."})
    reason, note = payload.get("reason"), payload.get("note")
    if isinstance(note, str):
        note = note.strip() or None
    errors = policy.check_break_glass_request(reason, note)
    who = access.subject(actor)
    if not policy.may_break_glass(actor.role):
        raise Forbidden(f"Your role ({actor.role}) cannot open records by break-glass.")
    if errors:
        raise InvalidInput(errors)
    if not isinstance(reason, str):  # never: check_break_glass_request passes only a listed reason
        raise InvalidInput({"reason": "Choose a reason."})
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        record, grant = access.facts(uow, actor, call, now)
        if policy.decide(who, record, "view") is not None and grant is None:
            raise Forbidden(f"You can already see call {ref}: break-glass is not needed.")
        expires = now + policy.BREAK_GLASS_FOR
        grant_id = uow.break_glass.add(
            call_ref=ref, centre=call.centre, username=actor.username, role=actor.role, user_centre=actor.centre,
            reason=reason, note=note, granted_at=now, expires_at=expires)
        access.record_access(uow, actor, ref, route, access.Access("break_glass", grant_id), now)
        uow.commit()
    return Grant(grant_id, ref, reason, expires)


def break_glass_reviews(svc: Services, actor: Actor, *, include_reviewed: bool = False,
                        limit: int = 200) -> list[AnyRow]:
    """Break-glass openings of calls held by the supervisor's centre when opened: unreviewed first."""
    if actor.role != "supervisor" or not actor.centre:
        raise Forbidden("The break-glass review list is for a centre's supervisors.")
    with svc.uow() as uow:
        return uow.break_glass.for_review(actor.centre, include_reviewed=include_reviewed, limit=limit)


def review_break_glass(svc: Services, actor: Actor, grant_id: int, comment: Any) -> None:
    """A supervisor of the centre marks a break-glass opening reviewed, with a comment (audited)."""
    from .inputs import InvalidInput

    now = svc.clock.now()
    with svc.uow() as uow:
        row = uow.break_glass.get(grant_id)
        if row is None:
            raise NotFound(f"no break-glass access {grant_id}")
        if actor.role != "supervisor" or actor.centre != row.centre:
            raise Forbidden(f"Break-glass access {grant_id} is reviewed by the supervisors of {row.centre}.")
        if row.reviewed_at is not None:
            raise Forbidden(f"Break-glass access {grant_id} was already reviewed.")
        if row.username == actor.username:
            # A review is someone else's look at the opening (docs/information-governance.md, section 4); a
            # supervisor moved to the call's centre since they opened it would otherwise review themselves.
            raise Forbidden(f"Break-glass access {grant_id} is yours: another supervisor of {row.centre} "
                            "reviews it.")
        if not isinstance(comment, str) or not comment.strip():
            raise InvalidInput({"comment": "Say what you found: the review is recorded."})
        if len(comment) > policy.NOTE_MAX:
            raise InvalidInput({"comment": f"At most {policy.NOTE_MAX} characters."})
        if problem := text_problem(comment, multiline=True, field="comment"):  # a NUL, a bidi override
            raise InvalidInput({"comment": problem})
        uow.break_glass.mark_reviewed(grant_id, at=now, by=actor.username, comment=comment.strip())
        uow.add_event(SecurityEvent(at=now, kind="break_glass_reviewed", actor=actor.username,
                                    subject=row.username, detail={"grant_id": grant_id, "call_ref": row.call_ref}))
        uow.commit()


# --- who has viewed a record ----------------------------------------------------------------------

@dataclass(frozen=True)
class AccessRow:
    at: datetime
    username: str
    display_name: str | None
    role: str
    centre: str | None
    route: str
    purpose: str
    referral_id: str | None


def access_log(svc: Services, actor: Actor | None, ref: str) -> list[AccessRow]:
    """Who has viewed this call's record, oldest first. actor None: an operator at the command line
    answering a subject access request (flask --app ipoa access report REF)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        if actor is not None:
            access.authorise(uow, actor, call, "view_access_log", now)
        rows = uow.access_log.for_call(ref)
    return [AccessRow(*r) for r in rows]
