"""SMS replies: ACCEPT / DECLINE <reason> / DONE / STATUS <ref>, and STOP / START.

A reply about a call acts, through the same service-layer transition the web pages use, in one of two ways:
- from a registered professional's number, on the call's referral to that professional's own service, as
  them (`sms:<name>`);
- from a number ipoa sent a text inviting a reply about that call's referral (domain/sms/invitations.py:
  today the referral text the service's duty lead gets when nobody on duty can be texted), on that
  referral, for its service, as that recipient (`sms-duty-lead:CRT`), the audit event's data saying so.
  A professional of another service texted as this service's duty lead acts this way too.
Either way only while that service may still see the referral (the access policy: a service's access ends
REFERRAL_ACCESS_AFTER_CLOSE after its referral closed, domain/access.py). Anything else (a stranger's
number, a deactivated professional's whatever was texted to it, a number texted about another call, a ref
that does not match, a text that did not invite a reply, a referral the service may no longer see) changes
nothing and gets the same neutral answer, so the reply reveals nothing. STOP / START are recorded for a
registered professional (on their row) and for any other number ipoa texts (sms_opt_outs: a supervisor's
mobile, a directory duty-lead number), each with its security event; OFF / ON are a professional's
(service/availability.py), from an active one only.

Each reply acts once, by Twilio's MessageSid: its sms_inbound row is claimed before it acts (as the API's
Idempotency-Key records are, docs/security.md "Races and retries"), so the same webhook delivered again
meanwhile neither acts nor overwrites the record; it is given the first one's answer once there is one."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.referral_store import ReplyTarget
from ..adapters.sms_gateway import masked
from ..adapters.sms_reply_store import RECEIVED
from ..domain.errors import DomainError
from ..domain.meaning import SMS_COMMANDS
from ..domain.sms.invitations import acts_by_invitation, invited_actor
from ..domain.sms.replies import Reply, parse_reply
from . import access, availability, security
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


# A claim left unanswered this long belongs to an attempt that died (longer than any request runs:
# gunicorn's timeout is 30 s); a retry takes it over. Acting again is safe: a referral's trigger is refused
# once it has moved (the retry is then told where it stands).
CLAIM_LEASE = timedelta(seconds=60)
# How long a duplicate delivered while the first is still acting waits for the first's answer before it
# answers nothing (Twilio gives up on a webhook after 15 s).
WAIT_FOR_FIRST_SECONDS = 5.0


def handle(svc: Services, *, provider_sid: str, from_number: str, body: str) -> str:
    """The text to answer with ('' for none). Idempotent per provider_sid."""
    now = svc.clock.now()
    claimed = _claim(svc, provider_sid, now)
    if isinstance(claimed, str):
        return claimed
    reply = parse_reply(body)
    with svc.uow() as uow:
        prof = uow.professionals.by_mobile(from_number)
        # STOP / START from a number ipoa texts that is not a professional's (a supervisor's mobile): its
        # opt-out is recorded by number (docs/domain.md: STOP/START are honoured, whoever is texted).
        number_opting = prof is None and reply.command in ("STOP", "START") and uow.sms.texted(from_number)
    neutral = svc.sms_templates.render("reply_unknown")
    outcome, answer, ref = "ignored", neutral, reply.ref
    # A deactivated professional acts for no service (docs/domain.md, "Rotas"): not as a professional,
    # nor through a text their number was sent before (as a duty lead, say). Their STOP / START is still
    # recorded: it is their number's wish.
    deactivated = prof is not None and not prof.active
    if deactivated and reply.command not in ("STOP", "START"):
        prof = None
    opting = prof is not None and reply.command in ("STOP", "START")
    available = availability.decide(svc, prof, reply.command, now) if (
        prof is not None and reply.command in ("OFF", "ON")) else None

    about_a_call = reply.command in (*SMS_COMMANDS, "STATUS") and reply.ref is not None
    target = _target(svc, prof, from_number, reply.ref, now) if (
        about_a_call and reply.ref is not None and not deactivated) else None

    if opting or number_opting:
        outcome, answer = reply.command.lower(), ""  # the carrier/Twilio sends the opt-out confirmation
    elif available is not None:
        outcome, answer = available.outcome, available.answer
    elif target is not None:
        outcome, answer = _act(svc, target, reply)
    elif prof is None:
        outcome = "unknown_number"
    elif about_a_call:
        outcome = "not_linked"

    with svc.uow() as uow:
        # The claim completed with what the reply changed: a STOP, an OFF recorded once, by the attempt
        # holding the claim (a retried webhook changes nothing twice).
        if uow.sms_replies.complete(claimed, professional_id=prof.id if prof else None, command=reply.command,
                                    call_ref=ref if prof or target else None, outcome=outcome, reply=answer):
            if opting and prof is not None:  # (opting is only ever from a known number)
                _set_opted_out(uow, prof.id, from_number, reply.command == "STOP", now)
            if number_opting:
                _set_number_opted_out(svc, uow, from_number, reply.command == "STOP", now)
            if available is not None and prof is not None:
                availability.record(uow, now, prof, available)
            uow.commit()
        else:  # taken over by a retry after CLAIM_LEASE: its record stands
            log.warning("sms reply %s: claim taken over before it was answered", provider_sid)
    log.info("sms reply %s: %s %s -> %s", provider_sid, reply.command, ref or "-", outcome)
    return answer


def _claim(svc: Services, provider_sid: str, now: datetime) -> int | str:
    """This attempt's claim on the reply (its row id), or the answer to give instead: the first delivery's
    answer, or '' when the first is still acting after WAIT_FOR_FIRST_SECONDS (Twilio sends the first's)."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        with svc.uow() as uow:
            store = uow.sms_replies
            claimed = store.claim(provider_sid, now)
            row = store.find(provider_sid) if claimed is None else None
            # Abandoned by an attempt that died: replaced, so that attempt's id fences nothing.
            if (row is not None and row.outcome == RECEIVED and row.received_at <= now - CLAIM_LEASE
                    and store.remove_unanswered(row.id)):
                claimed = store.claim(provider_sid, now)
            uow.commit()
        if claimed is not None:
            return claimed
        if row is not None and row.outcome != RECEIVED:
            return row.reply
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.05)


def _set_opted_out(uow: UnitOfWork, professional_id: int, number: str, stop: bool, now: datetime) -> None:
    """STOP / START: the professional gets no texts from us until START. The security log names them by
    their record's id, never their number."""
    uow.professionals.set_opted_out(professional_id, now if stop else None)
    if not stop:
        # The number may have texted STOP before it was theirs (a supervisor's mobile, the directory's
        # duty-lead number), on record by number: either holds for the number (adapters/sms_store.stopped),
        # so START lifts both.
        uow.sms.set_number_opted_out(number, None)
    security.record(uow, now, security.SMS_OPT_OUT if stop else security.SMS_OPT_IN, "sms",
                    subject=str(professional_id))


def _set_number_opted_out(svc: Services, uow: UnitOfWork, number: str, stop: bool, now: datetime) -> None:
    """STOP / START of a number ipoa texts that is not a professional's, recorded by number (sms_opt_outs),
    with its security event as a professional's has (docs/information-governance.md, section 7). The event
    never holds the number whole: masked as the pages mask a text's recipient (adapters/sms_gateway.masked),
    with whose it is on record: the users with that mobile, the services whose directory duty-lead number it
    is."""
    uow.sms.set_number_opted_out(number, now if stop else None)
    detail: dict[str, Any] = {}
    if holders := uow.sms.users_with_mobile(number):
        detail["users"] = holders
    if leading := sorted(code for code, s in svc.directory.services.items() if s.duty_lead == number):
        detail["duty_lead_of"] = leading
    security.record(uow, now, security.SMS_OPT_OUT if stop else security.SMS_OPT_IN, "sms",
                    subject=masked(number), detail=detail)


@dataclass(frozen=True)
class _Target:
    """The referral a reply acts on, for which service, as whom (the audit's actor), and what the audit
    events' data adds when the sender is not one of the service's professionals."""

    ref: str  # the call's, as the reply gave it (normalised)
    row: ReplyTarget
    service: str
    actor: str
    on_behalf: dict[str, Any] | None = None


def _target(svc: Services, prof: AnyRow | None, number: str, ref: str, now: datetime) -> _Target | None:
    """For a registered professional, the call's referral to their own service (its open one first, else
    the latest), as them. For any number, the call's referral ipoa texted it an invitation to reply about
    (domain/sms/invitations.py), for that referral's service. A professional texted as another service's
    duty lead has both: the open one, their own service's first. None when the service may no longer see
    the referral (the access policy)."""
    found = _found_target(svc, prof, number, ref)
    if found is None:
        return None
    with svc.uow() as uow:
        # The one access policy the pages use (service/access.py): a service's access to a referral ends
        # REFERRAL_ACCESS_AFTER_CLOSE after it closed (docs/information-governance.md, section 3).
        call = uow.calls.get(ref)
        who = call_service.Actor(username=found.actor, role="professional", centre=None, service=found.service)
        if call is None or not access.permitted(uow, who, call, "view_referral", now):
            return None
    return found


def _found_target(svc: Services, prof: AnyRow | None, number: str, ref: str) -> _Target | None:
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
        # Told where it stands now, read again: a reply that lost a race to another is told it is already
        # accepted (or declined), not the state read before it tried.
        return "not_allowed", _status(svc, ref, target.service, _reread(svc, ref, row))
    referral = call.referral(row.id)
    if referral is None or referral.state is None:  # never: the trigger has just moved it, on this call
        raise NotFound(f"referral {row.id} of call {ref} was not found after its trigger fired")
    return role, svc.sms_templates.render("reply_ack", ref=ref, state=referral.state.replace("_", " "))


def _reread(svc: Services, ref: str, row: ReplyTarget) -> ReplyTarget:
    with svc.uow() as uow:
        call = uow.calls.get(ref)
    referral = call.referral(row.id) if call is not None else None
    if referral is None or referral.state is None:
        return row
    return row._replace(state=referral.state, version=referral.version)


def _status(svc: Services, ref: str, service: str, row: ReplyTarget) -> str:
    # Its link is only made (or looked up) when a status reply needs it.
    return svc.sms_templates.render("reply_status", state=row.state, ref=ref, service=service,
                                    link=referral_link(svc, row.id))
