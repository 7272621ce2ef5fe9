"""SMS replies: ACCEPT / DECLINE <reason> / DONE / STATUS <ref>, and STOP / START.

A reply about a call acts, through the same service-layer transition the web pages use, in one of two ways:
- from a registered professional's number, on the call's referral to that professional's own service, as
  them (`sms:<name>`);
- from a number ipoa sent a text inviting a reply about that call's referral (domain/sms/invitations.py:
  today the referral text the service's duty lead gets when nobody on duty can be texted), on that
  referral, for its service, as that recipient (`sms-duty-lead:CRT`), the audit event's data saying so.
  A professional of another service texted as this service's duty lead acts this way too.
Anything else (a stranger's number, a number texted about another call, a ref that does not match, a text
that did not invite a reply) changes nothing and gets the same neutral answer, so the reply reveals
nothing. STOP / START are a registered professional's; so are OFF / ON (service/availability.py), from an
active one only. Each reply acts once, by Twilio's MessageSid."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..adapters.referral_store import ReplyTarget
from ..adapters.sms_reply_store import AlreadyReceived
from ..domain.errors import DomainError
from ..domain.meaning import SMS_COMMANDS
from ..domain.sms.invitations import acts_by_invitation, invited_actor
from ..domain.sms.replies import Reply, parse_reply
from . import availability, security
from . import calls as call_service
from .errors import NotFound
from .inputs import InvalidInput
from .sms import referral_link
from .workflow_meaning import definition_of

if TYPE_CHECKING:
    from ..adapters.results import AnyRow
    from ..adapters.sms_store import InvitationRow
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
    if prof is not None and not prof.active and reply.command not in ("STOP", "START"):
        # A deactivated professional acts for no service (no ACCEPT of an old text, no OFF / ON): a stranger
        # here. Their STOP / START is still recorded: it is their number's wish.
        prof = None
    opting = prof is not None and reply.command in ("STOP", "START")
    available = availability.decide(svc, prof, reply.command, now) if (
        prof is not None and reply.command in ("OFF", "ON")) else None

    about_a_call = reply.command in (*SMS_COMMANDS, "STATUS") and reply.ref is not None
    target = _target(svc, prof, from_number, reply.ref) if about_a_call and reply.ref is not None else None

    if opting:
        outcome, answer = reply.command.lower(), ""  # the carrier/Twilio sends the opt-out confirmation
    elif available is not None:
        outcome, answer = available.outcome, available.answer
    elif target is not None:
        outcome, answer = _act(svc, target, reply)
    elif prof is None:
        outcome = "unknown_number"
    elif about_a_call:
        outcome = "not_linked"

    try:
        with svc.uow() as uow:
            if opting and prof is not None:  # (opting is only ever from a known number)
                # With the reply's own record: the same STOP delivered twice at once changes it (and
                # logs it) once, as the second insert fails on its provider_sid.
                _set_opted_out(uow, prof.id, reply.command == "STOP", now)
            if available is not None and prof is not None:
                # With the reply's record too: a retried webhook (same MessageSid) changes nothing twice.
                availability.record(uow, now, prof, available)
            uow.sms_replies.add(
                provider_sid=provider_sid, professional_id=prof.id if prof else None, command=reply.command,
                call_ref=ref if prof or target else None, outcome=outcome, reply=answer, received_at=now)
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


@dataclass(frozen=True)
class _Target:
    """The referral a reply acts on, for which service, as whom (the audit's actor), and what the audit
    events' data adds when the sender is not one of the service's professionals."""

    ref: str  # the call's, as the reply gave it (normalised)
    row: ReplyTarget
    service: str
    actor: str
    on_behalf: dict[str, Any] | None = None


def _target(svc: Services, prof: AnyRow | None, number: str, ref: str) -> _Target | None:
    """For a registered professional, the call's referral to their own service (its open one first, else
    the latest), as them. For any number, the call's referral ipoa texted it an invitation to reply about
    (domain/sms/invitations.py), for that referral's service. A professional texted as another service's
    duty lead has both: the open one, their own service's first."""
    with svc.uow() as uow:
        def is_open(row: ReplyTarget | InvitationRow) -> bool:
            return row.state not in definition_of(svc, row, uow).final_states

        own = uow.referrals.reply_target(ref, prof.service) if prof is not None else None
        if prof is not None and own is not None and is_open(own):
            return _Target(ref, own, prof.service, f"sms:{prof.name}"[:64])
        invited = next((t for t in uow.sms.invitations(number, ref, svc.sms_templates.reply_inviting)
                        if acts_by_invitation(t.recipient_kind, t.status)), None)
        if prof is not None and own is not None and (invited is None or not is_open(invited)):
            return _Target(ref, own, prof.service, f"sms:{prof.name}"[:64])
    if invited is None:
        return None
    on_behalf: dict[str, Any] = {"acting_for": invited.service, "texted_as": invited.recipient_kind}
    if prof is not None:  # a professional of another service, texted as this one's duty lead
        on_behalf["professional_id"] = prof.id
    return _Target(ref, ReplyTarget(invited.referral_id, invited.state, invited.version, invited.workflow,
                                    invited.workflow_version),
                   invited.service, invited_actor(invited.recipient_kind, invited.service), on_behalf)


def _act(svc: Services, target: _Target, reply: Reply) -> tuple[str, str]:
    """A reply naming a call that may act on target's referral."""
    ref, row = target.ref, target.row
    if reply.command == "STATUS":
        return "status", _status(svc, ref, target.service, row)
    actor = call_service.Actor(username=target.actor, role="professional", centre=None)
    # ACCEPT, DECLINE and DONE fire the referral version's trigger with that role (domain/meaning.py).
    role = SMS_COMMANDS[reply.command]
    payload = {"trigger": definition_of(svc, row).trigger_with_role(role), "expected_version": row.version,
               "reason": reply.reason if reply.command == "DECLINE" else None}
    try:
        call = call_service.fire_referral_trigger(svc, actor, ref, row.id, payload, as_service=target.service,
                                                  on_behalf=target.on_behalf)
    except (DomainError, InvalidInput):
        # Not possible in its current state (already accepted, say), or a reason the record would refuse:
        # tell them where it stands; never a 5xx, which Twilio would retry.
        return "not_allowed", _status(svc, ref, target.service, row)
    referral = call.referral(row.id)
    if referral is None or referral.state is None:  # never: the trigger has just moved it, on this call
        raise NotFound(f"referral {row.id} of call {ref} was not found after its trigger fired")
    return role, svc.sms_templates.render("reply_ack", ref=ref, state=referral.state.replace("_", " "))


def _status(svc: Services, ref: str, service: str, row: ReplyTarget) -> str:
    # Its link is only made (or looked up) when a status reply needs it.
    return svc.sms_templates.render("reply_status", state=row.state, ref=ref, service=service,
                                    link=referral_link(svc, row.id))
