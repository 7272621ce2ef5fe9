"""Professionals' SMS replies: ACCEPT / DECLINE <reason> / DONE / STATUS <ref>, and STOP / START.
A reply acts only from a registered number on a referral to that professional's own service, through
the same service-layer transition the web pages use; anything else changes nothing and gets the same
neutral answer, so the reply reveals nothing to a stranger."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..adapters.sms_reply_store import AlreadyReceived
from ..domain.errors import DomainError
from ..domain.meaning import SMS_COMMANDS
from ..domain.sms.replies import Reply, parse_reply
from . import calls as call_service
from . import security
from .errors import NotFound
from .inputs import InvalidInput
from .sms import referral_link
from .workflow_meaning import definition_of

if TYPE_CHECKING:
    from ..adapters.referral_store import ReplyTarget
    from ..adapters.results import AnyRow
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

log = logging.getLogger(__name__)


def handle(svc: Services, *, provider_sid: str, from_number: str, body: str) -> str:
    """The text to answer with ('' for none). Idempotent per provider_sid."""
    with svc.uow() as uow:
        seen = uow.sms_replies.answer_to(provider_sid)
        if seen is not None:
            return seen
        prof = uow.professionals.by_mobile(from_number)
    reply = parse_reply(body)
    now = svc.clock.now()
    neutral = svc.sms_templates.render("reply_unknown")
    outcome, answer, ref = "ignored", neutral, reply.ref
    opting = prof is not None and reply.command in ("STOP", "START")

    if prof is None:
        outcome = "unknown_number"
    elif opting:
        outcome, answer = reply.command.lower(), ""  # the carrier/Twilio sends the opt-out confirmation
    elif reply.command in (*SMS_COMMANDS, "STATUS") and reply.ref:
        outcome, answer = _act(svc, prof, reply, reply.ref, neutral)

    try:
        with svc.uow() as uow:
            if opting and prof is not None:  # (opting is only ever from a known number)
                # With the reply's own record: the same STOP delivered twice at once changes it (and
                # logs it) once, as the second insert fails on its provider_sid.
                _set_opted_out(uow, prof.id, reply.command == "STOP", now)
            uow.sms_replies.add(
                provider_sid=provider_sid, professional_id=prof.id if prof else None, command=reply.command,
                call_ref=ref if prof else None, outcome=outcome, reply=answer, received_at=now)
            uow.commit()
    except AlreadyReceived:  # the same webhook, delivered twice at once: the first one's answer stands
        with svc.uow() as uow:
            first = uow.sms_replies.answer_to(provider_sid)
        # Its row holds its answer (never NULL); gone only if deleted since: then no answer ('').
        return first if first is not None else ""
    log.info("sms reply %s: %s %s -> %s", provider_sid, reply.command, ref or "-", outcome)
    return answer


def _set_opted_out(uow: UnitOfWork, professional_id: int, stop: bool, now: datetime) -> None:
    """STOP / START: the professional gets no texts from us until START. The security log names them by
    their record's id, never their number."""
    uow.professionals.set_opted_out(professional_id, now if stop else None)
    security.record(uow, now, security.SMS_OPT_OUT if stop else security.SMS_OPT_IN, "sms",
                    subject=str(professional_id))


def _act(svc: Services, prof: AnyRow, reply: Reply, ref: str, neutral: str) -> tuple[str, str]:
    """A reply naming a call (ref: the reply's, normalised) from a registered professional (prof: their row)."""
    with svc.uow() as uow:
        # The call's open referral to their service first, else the latest.
        row = uow.referrals.reply_target(ref, prof.service)
    if row is None:
        return "not_linked", neutral
    if reply.command == "STATUS":
        return "status", _status(svc, ref, prof, row)
    actor = call_service.Actor(username=f"sms:{prof.name}"[:64], role="professional", centre=None)
    # ACCEPT, DECLINE and DONE fire the referral version's trigger with that role (domain/meaning.py).
    role = SMS_COMMANDS[reply.command]
    payload = {"trigger": definition_of(svc, row).trigger_with_role(role), "expected_version": row.version,
               "reason": reply.reason if reply.command == "DECLINE" else None}
    try:
        call = call_service.fire_referral_trigger(svc, actor, ref, row.id, payload, as_service=prof.service)
    except (DomainError, InvalidInput):
        # Not possible in its current state (already accepted, say), or a reason the record would refuse:
        # tell them where it stands; never a 5xx, which Twilio would retry.
        return "not_allowed", _status(svc, ref, prof, row)
    referral = call.referral(row.id)
    if referral is None or referral.state is None:  # never: the trigger has just moved it, on this call
        raise NotFound(f"referral {row.id} of call {ref} was not found after its trigger fired")
    return role, svc.sms_templates.render("reply_ack", ref=ref, state=referral.state.replace("_", " "))


def _status(svc: Services, ref: str, prof: AnyRow, row: ReplyTarget) -> str:
    # Its link is only made (or looked up) when a status reply needs it.
    return svc.sms_templates.render("reply_status", state=row.state, ref=ref, service=prof.service,
                                    link=referral_link(svc, row.id))
