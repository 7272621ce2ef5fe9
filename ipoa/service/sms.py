"""Text messages caused by committed events: who is told, rendering, recording and sending.

Creating the messages and marking their outbox event processed happen in one transaction, and each
message has a unique (event, recipient, template) key, so a re-delivered event texts nobody twice. A
message is sent by its own job, which records `submitting` before the gateway call: a job that finds a
message still `submitting` (its worker died mid-send) asks the gateway before sending again. A text whose
number texted STOP after it was queued is not sent: the claim leaves it (adapters/sms_store.stopped) and
_claim_unfinished records it `failed` with Twilio's opt-out code (docs/domain.md, "SMS to professionals").

Retries and recovery depend on the database and the clock only. `next_attempt_at` says when the relay is
to hand a text to a worker (again) if nothing has moved it on: a new text's job lost with a killed worker,
a text claimed by a worker that died (no outcome within SEND_LEASE_SECONDS), a text waiting out its
back-off after Twilio's 429 or a time-out. The relay looks every second and queues plain jobs
(due_for_handover); no RQ scheduler, whose lock a killed worker keeps for up to 10 minutes.

Escalations go through a window per number (sms_escalation_windows, locked by the recording
transaction): the first escalation goes at once; more to the same number within ESCALATION_DIGEST_SECONDS
are held in one digest text that goes when the window ends (domain.sms.escalation.window_decision).

Links in texts are short random codes kept in sms_links (`/r/<code>`); the 22-character tokens of texts
sent before still resolve (resolve_link)."""
from __future__ import annotations

import base64
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.rate_limit import SenderBuckets
from ..adapters.sms_gateway import PermanentSmsError, Submitted, TransientSmsError, masked
from ..adapters.sms_store import DIGEST_TEMPLATE  # the send claim's SQL needs it too
from ..domain.rota.recipients import (
    NOBODY,
    ON_DUTY,
    SHIFT_DUTY_LEAD,
    STANDING_DUTY_LEAD,
    SUPERVISOR,
    RecipientChoice,
)
from ..domain.sms.delivery import (
    HANDOVER_LEASE_SECONDS,
    OPTED_OUT_CODE,
    SEND_LEASE_SECONDS,
    STATUS_RANK,
    SmsMessage,
    handover_lease,
    retry_delay,
)
from ..domain.sms.escalation import BREACH_WORDS, EscalationSettings, EscalationWindow, window_decision
from ..domain.sms.links import LINK_TOKEN_LENGTH, normalise_link_code
from ..domain.sms.rate import SenderRates
from ..domain.sms.recipients import (
    Recipient,
    escalation_recipients,
    referrer_update,
)
from ..domain.sms.timetext import local_time_text
from ..domain.validation import whole_number
from . import availability, rotas, security
from .errors import NotFound
from .shift_handover import HANDOVER_TOPIC, texts_for_handover

if TYPE_CHECKING:
    from ..adapters.outbox_store import ClaimedEvent
    from ..adapters.rota_store import ChoiceRow
    from ..adapters.sms_store import WindowRow
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services
    from .access import Who

log = logging.getLogger(__name__)

ESCALATION_TOPICS = ("sla.breached", "referral.escalated")
# Events whose texts may carry a referral's link: their codes are made for the whole batch at once.
_LINKED_TOPICS = ("referral.sent", "referral.state_changed", HANDOVER_TOPIC, *ESCALATION_TOPICS)
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # a window row made only to be locked: no text yet
# A referral text's recipient kind (sms_messages.recipient_kind) by the step of the chain that chose it.
RECIPIENT_KIND = {ON_DUTY: "on_duty", SHIFT_DUTY_LEAD: "duty_lead", STANDING_DUTY_LEAD: "duty_lead",
                  SUPERVISOR: "supervisor"}


def escalation_settings(svc: Services) -> EscalationSettings:
    """ESCALATION_REPEAT_MINUTES and ESCALATION_DIGEST_SECONDS, parsed once from the configuration when the
    services were built (ipoa/config.py, bootstrap.build_services)."""
    return svc.escalation_settings


# -- links -------------------------------------------------------------------------------------------------

def link_token(referral_id: str) -> str:
    """The 22-character token texts carried before the short codes (the referral id, base64url): no
    longer put in texts, still resolved for the texts already on people's phones."""
    return base64.urlsafe_b64encode(uuid.UUID(hex=referral_id).bytes).decode().rstrip("=")


def referral_id_from_token(token: str) -> str | None:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(token + "==")).hex
    except (ValueError, TypeError):
        return None


def prepare_link_codes(uow: UnitOfWork, referral_ids: Iterable[str], now: datetime, new: Iterable[str] = ()) -> None:
    """The codes for these referrals, made where missing, in one to three statements whatever their number
    (the relay's batch); `new`: those whose first text this is (adapters/sms_store.py)."""
    uow.sms.prepare_link_codes(referral_ids, now, new)


def link_code(uow: UnitOfWork, now: datetime, *, referral_id: str | None = None, scope: str | None = None) -> str:
    """The code of a referral's secure page, or of a digest's list (scope "centre:CNH" or "service:DN"),
    made the first time it is needed."""
    return uow.sms.link_code(now, referral_id=referral_id, scope=scope)


def _link(svc: Services, uow: UnitOfWork, now: datetime, **target: str | None) -> str:
    return svc.sms_templates.link_for(link_code(uow, now, **target))


def referral_link(svc: Services, referral_id: str) -> str:
    """A referral's link for a text rendered outside the relay (a reply, the demo): its own transaction."""
    with svc.uow() as uow:
        link = _link(svc, uow, svc.clock.now(), referral_id=referral_id)
        uow.commit()
    return link


@dataclass(frozen=True)
class LinkTarget:
    referral_id: str | None = None
    call_ref: str | None = None
    scope: str | None = None  # a digest's list: "centre:CNH" or "service:DN"


def resolve_link(svc: Services, token: str) -> LinkTarget | None:
    """Where `/r/<token>` leads: a code from sms_links, or a 22-character token of an earlier text."""
    code = normalise_link_code(token)
    referral_id: str | None
    if code is not None:
        with svc.uow() as uow:
            row = uow.sms.link(code)
        if row is None:
            return None
        if row.referral_id is None:
            return LinkTarget(scope=row.scope)
        referral_id = row.referral_id
    elif len(token) == LINK_TOKEN_LENGTH:
        referral_id = referral_id_from_token(token)
    else:
        return None
    ref = call_ref_for_referral(svc, referral_id) if referral_id else None
    return LinkTarget(referral_id=referral_id, call_ref=ref) if ref else None


# -- what an event causes --------------------------------------------------------------------------------

def prepare(svc: Services, uow: UnitOfWork, events: Sequence[ClaimedEvent]) -> None:
    """Before a batch of events is turned into texts (rows with .topic and .payload): the referrals'
    link codes in one go, and the escalation windows of every number the batch escalates to locked in one
    order, so two relays handling batches at once wait for each other instead of deadlocking."""
    now = svc.clock.now()
    prepare_link_codes(uow, [e.payload["referral_id"] for e in events
                             if e.topic in _LINKED_TOPICS and e.payload.get("referral_id")], now,
                       new=[e.payload["referral_id"] for e in events
                            if e.topic == "referral.sent" and e.payload.get("referral_id")])
    if escalation_settings(svc).digest_window > timedelta(0):
        numbers = {r.to for e in events if e.topic in ESCALATION_TOPICS
                   for r in _escalation_recipients(svc, uow, e.topic, e.payload)}
        for number in sorted(numbers):
            _lock_window(uow, number)


def messages_for_event(svc: Services, uow: UnitOfWork, message_id: str, topic: str,
                       payload: dict[str, Any]) -> list[SmsMessage]:
    """The SMS an outbox event causes now (none for most events). Escalations held for a digest are
    recorded here (the digest row, pending until its window ends) and not returned."""
    now = svc.clock.now()
    if topic in ESCALATION_TOPICS:
        return _escalation(svc, uow, message_id, topic, payload, now)
    if topic == HANDOVER_TOPIC:  # re-sent to the incoming shift at a shift change
        return texts_for_handover(svc, uow, message_id, payload, now, RECIPIENT_KIND)
    if topic == availability.TOPIC:  # a professional's OFF / ON: their duty lead is told
        return availability.messages_for_event(svc, uow, message_id, payload)  # its duty lead passes reachable
    referral_id = payload.get("referral_id")
    if referral_id is None or topic not in ("referral.sent", "referral.state_changed"):
        return []
    fields = {"ref": payload["ref"], "service": payload.get("service", ""),
              "urgency": payload.get("urgency", "").replace("_", " "),
              "sent_at": local_time_text(now, now)}  # BST or GMT in the repeated hour
    out: list[SmsMessage] = []
    if topic == "referral.sent":
        # The rota at this instant, down the fall-back chain (service/rotas.referral_recipients); the step
        # and its reason are kept with the texts for the call page, and a referral that reached nobody
        # for the exceptions panel.
        choice = rotas.referral_recipients(svc, uow, payload["service"], payload.get("centre"), now)
        _record_choice(uow, outbox_id=message_id, call_ref=payload["ref"], referral_id=referral_id,
                       service=payload["service"], step=choice.step, reason=choice.reason, created_at=now)
        if choice.nobody:
            log.warning("referral %s: nobody to text for service %s", payload["ref"], payload["service"])
            return []
        # The referring centre's supervisor relays it by phone and does not act for the service: a text that
        # asks them to ring the service, not one inviting ACCEPT (domain/sms/invitations.py).
        template = "referral_relay" if choice.step == SUPERVISOR else "referral_sent"
        body = svc.sms_templates.render(template, **fields, link=_link(svc, uow, now, referral_id=referral_id))
        kind = RECIPIENT_KIND[choice.step]
        # Chosen through rotas.reachable in this unit of work: no number that texted STOP is among them, so
        # they are not read again (_not_stopped's read per event was half the relay's work for a text:
        # docs/performance.md, "The texts' relay slower after the STOP rule").
        return [SmsMessage(call_ref=payload["ref"], referral_id=referral_id,
                           recipient=Recipient(kind, c.mobile, c.professional_id), template=template,
                           body=body, created_at=now, outbox_id=message_id) for c in choice.recipients]
    else:
        updates_to = uow.sms.updates_to(payload["ref"])
        update_ = referrer_update(_trigger_roles(svc, uow, referral_id, payload.get("trigger")),
                                  updates_to) if updates_to else None
        if update_ is not None:
            recipient, template = update_
            body = svc.sms_templates.render(template, **fields,
                                            link=_link(svc, uow, now, referral_id=referral_id))
            out.append(SmsMessage(call_ref=payload["ref"], referral_id=referral_id, recipient=recipient,
                                  template=template, body=body, created_at=now, outbox_id=message_id))
    return _not_stopped(uow, out)


def _not_stopped(uow: UnitOfWork, texts: list[SmsMessage]) -> list[SmsMessage]:
    """Texts not chosen from the rota (a referrer's update), less those to a number
    that texted STOP (adapters/sms_store.stopped, the rule rotas.reachable applies to the rota's people): they
    ask nobody to act, and the STOP asks for no more. (The send checks again: a STOP after they were queued.)"""
    if not texts:
        return texts
    stopped = uow.sms.opted_out(t.to for t in texts)
    return [t for t in texts if t.to not in stopped] if stopped else texts


_BATCH_CHOICES = "ipoa_batch_choices"  # session.info: the recipient choices of a relay's batch, not yet written


def _record_choice(uow: UnitOfWork, **choice: Any) -> None:
    """Who a referral's texts go to and why. In a relay's batch (begin_batch), kept until record_batch
    writes every choice of the batch in one statement; otherwise written now."""
    batch = uow.session.info.get(_BATCH_CHOICES)
    if batch is None:
        uow.rotas.record_choice(**choice)
    else:
        batch.append(choice)


def begin_batch(uow: UnitOfWork) -> None:
    """A relay's batch starts in this transaction: the recipient choices of its referrals are written
    together by record_batch (one statement for the batch, not a SELECT and an INSERT per referral)."""
    uow.session.info[_BATCH_CHOICES] = []


def record_batch(uow: UnitOfWork, texts: list[SmsMessage]) -> None:
    """The end of a relay's batch: its texts and recipient choices added to the transaction, each kind in
    one statement (the ORM flushes the texts together at the commit)."""
    choices = uow.session.info.pop(_BATCH_CHOICES, None)
    if choices:
        uow.rotas.record_choices(choices)
    uow.sms.add_all(texts)


# Events whose texts are worked out from the texts already recorded (an escalation's window and digest,
# a hand-over's "already texted", a professional's OFF / ON): before one of these in a batch, the texts
# recorded so far go to the session, so its reads see them (service/outbox.py).
READS_TEXTS = (*ESCALATION_TOPICS, HANDOVER_TOPIC, availability.TOPIC)


def referral_recipients(svc: Services, service_code: str, centre: str | None = None) -> RecipientChoice:
    """Who a referral to this service from this centre sent now is texted, and why (what
    messages_for_event will choose: service/rotas.referral_recipients)."""
    return rotas.preview_recipients(svc, service_code, centre)


def recipient_choices(svc: Services, ref: str) -> list[ChoiceRow]:
    """Who each of a call's referrals was texted and why, oldest first (for the call page)."""
    with svc.uow() as uow:
        return uow.rotas.choices_for_call(ref)


def _trigger_roles(svc: Services, uow: UnitOfWork, referral_id: str, trigger: str | None) -> frozenset[str]:
    """The roles (domain/meaning.py) of the trigger that moved a referral, in the referral's own workflow
    version: whether its referrer hears of it is the trigger's role, not the state's name."""
    row = uow.sms.referral_workflow(referral_id)
    if row is None or not trigger:
        return frozenset()
    return uow.engine(svc, needs=row).definition(*row).roles_of(trigger)


def _escalation_recipients(svc: Services, uow: UnitOfWork, topic: str, payload: dict[str, Any]) -> list[Recipient]:
    """A breached clock: the service's duty lead(s) (referral clocks) and the receiving centre's
    supervisors. A supervisor's own escalation of a referral: the duty lead(s) only (the supervisors are
    the ones asking). The duty leads are the rota's, by the steps referral texts follow after the people on
    duty (service/rotas.duty_lead_recipients): the shift's duty lead(s), else the standing duty lead, else the
    directory's number. Everyone passes the check referral texts' recipients pass (rotas.reachable): never a
    deactivated or OFF professional, nor a number that texted STOP."""
    now = svc.clock.now()
    referral_id = payload.get("referral_id")
    service = payload.get("service", "") if referral_id else ""
    leads = rotas.duty_lead_recipients(svc, uow, service, now) if service in svc.directory.services else ()
    by_supervisor = topic == "referral.escalated"
    supervisors = [] if by_supervisor else rotas.supervisors_to_text(uow, payload["centre"], now)
    recipients = escalation_recipients(None, [c.mobile for c in supervisors])
    seen = {r.to for r in recipients}
    return [*(Recipient("duty_lead", c.mobile, c.professional_id) for c in leads if c.mobile not in seen),
            *recipients]


def _escalation(svc: Services, uow: UnitOfWork, message_id: str, topic: str, payload: dict[str, Any],
                now: datetime) -> list[SmsMessage]:
    recipients = _escalation_recipients(svc, uow, topic, payload)
    referral_id = payload.get("referral_id")
    by_supervisor = topic == "referral.escalated"
    if not recipients:
        log.warning("breach on %s (%s clock): nobody to text", payload["ref"], payload["clock"])
        if referral_id and payload.get("service"):
            # On the exceptions panel, as a referral whose texts reached nobody is: someone phones instead.
            what = "escalated by a supervisor" if by_supervisor else BREACH_WORDS.get(payload["clock"], "overdue")
            _record_choice(uow, outbox_id=message_id, call_ref=payload["ref"], referral_id=referral_id,
                           service=payload["service"], step=NOBODY, created_at=now,
                           reason=f"escalation ({what}): no duty lead for {payload['service']} nor supervisor "
                                  f"with a mobile could be texted, phone {payload['service']} instead")
        return []
    fields = {"ref": payload["ref"], "urgency": payload.get("urgency", "").replace("_", " "),
              "breach": "supervisor escalated" if by_supervisor else BREACH_WORDS.get(payload["clock"], "overdue"),
              "due": local_time_text(datetime.fromisoformat(payload["due_at"]), now)}
    if referral_id:
        template = "escalation"
        fields.update(service=payload["service"], link=_link(svc, uow, now, referral_id=referral_id))
    else:
        template, fields["centre"] = "escalation_call", payload["centre"]
    body = svc.sms_templates.render(template, **fields)
    out = []
    for r in recipients:
        text = SmsMessage(call_ref=payload["ref"], referral_id=referral_id, recipient=r, template=template,
                          body=body, created_at=now, outbox_id=message_id)
        if _goes_now(svc, uow, text, payload, now):
            out.append(text)
    return out


# -- escalation windows and digests ----------------------------------------------------------------------

def _lock_window(uow: UnitOfWork, number: str) -> WindowRow:
    """The number's window row, made if missing, locked until the transaction ends (PostgreSQL; SQLite's
    BEGIN IMMEDIATE has every writing transaction wait for the one before anyway)."""
    return uow.sms.lock_window(number, _NEVER)


def _set_window(uow: UnitOfWork, number: str, **values: Any) -> None:
    uow.sms.set_window(number, **values)


def _scope(text: SmsMessage, payload: dict[str, Any]) -> str:
    # The list a digest links to: the receiving centre's breaches for its supervisors, the service's for
    # its duty lead.
    if text.recipient_kind == "duty_lead" and payload.get("service"):
        return f"service:{payload['service']}"
    return f"centre:{payload['centre']}"


def _digest_body(svc: Services, uow: UnitOfWork, held: int, since: datetime, scope: str, now: datetime) -> str:
    return svc.sms_templates.render(DIGEST_TEMPLATE, total=str(min(held, 9999)),
                                    sent_at=local_time_text(since, now), link=_link(svc, uow, now, scope=scope))


def _goes_now(svc: Services, uow: UnitOfWork, text: SmsMessage, payload: dict[str, Any], now: datetime) -> bool:
    """Apply the digest rule (domain.sms.escalation.window_decision) to one escalation text: True when it is
    to go at once; otherwise it has been counted into the number's digest (made if need be)."""
    digest_window = escalation_settings(svc).digest_window
    if digest_window <= timedelta(0):
        return True
    row = _lock_window(uow, text.to)
    window = EscalationWindow(last_at=row.last_at, digest_id=row.digest_id, held=row.held)
    decision = window_decision(window, now, digest_window)
    if decision == "now":
        _set_window(uow, text.to, last_at=now, digest_id=None, held=0, scope=None)
        return True
    digest_id = window.digest_id
    if decision == "join" and digest_id is not None:  # "join" only while a digest collects (window_decision)
        held = window.held + 1
        since = uow.sms.created_at(digest_id)
        if since is not None:
            body = _digest_body(svc, uow, held, since, row.scope or _scope(text, payload), now)
            # Only while it is still pending: the sending job's claim is one statement too, so each
            # escalation is either counted in the text that goes or starts the next digest.
            if uow.sms.join_digest(digest_id, body, now):
                _set_window(uow, text.to, held=held)
                return False
    # A new digest, going when the window ends; the next window runs from then. (The row's last_at: the
    # window's, never None in the row; only "now" is decided without one.)
    due = row.last_at + digest_window
    scope = _scope(text, payload)
    digest = SmsMessage(call_ref=text.call_ref, referral_id=None,
                        recipient=Recipient(text.recipient_kind, text.to, text.professional_id),
                        template=DIGEST_TEMPLATE, body=_digest_body(svc, uow, 1, now, scope, now),
                        created_at=now, outbox_id=text.outbox_id)
    digest.next_attempt_at = due
    new_digest_id = uow.sms.add(digest)  # flushed: its id, for the window
    _set_window(uow, text.to, last_at=due, digest_id=new_digest_id, held=1, scope=scope)
    log.info("escalation on %s to %s held for the digest due %s", text.call_ref, text.recipient_kind,
             due.isoformat())
    return False


# -- handing over again --------------------------------------------------------------------------------

def _ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def due_for_handover(svc: Services, hand_over: Callable[[list[tuple[str, str]]], None] | None = None,
                     limit: int = 500) -> list[tuple[str, str]]:
    """Texts to hand to a worker again now, each claimed for this hand-over (so two relays never both
    queue it): (id, ticket). The ticket is the text's new next_attempt_at; the job carries it, and a
    job holding the current ticket may act on a text another job could not touch yet (send).
    `hand_over(claimed)` queues the jobs before the claim commits: if Redis is down it raises, the claim
    rolls back, and the texts are due again on the relay's next look rather than a lease later."""
    now = svc.clock.now()
    lost_after = now - timedelta(seconds=HANDOVER_LEASE_SECONDS)
    out: list[tuple[str, str]] = []
    with svc.uow() as uow:
        for r in uow.sms.due_for_handover(now, lost_after, limit):
            ticket = _ms(now + handover_lease(now - r.updated_at))
            if uow.sms.claim_handover(r.id, r.next_attempt_at, ticket):
                out.append((r.id, ticket.isoformat()))
        if out and hand_over is not None:
            hand_over(out)
        uow.commit()
    return out


# -- sending -------------------------------------------------------------------------------------------------

def status_callback_url(svc: Services) -> str:
    return f"{svc.public_base_url.rstrip('/')}/webhooks/twilio/sms/status"


def _may_act(msg: SmsMessage, now: datetime, ticket: datetime | None) -> bool:
    """Whether a job may take this pending or submitting text now. Yes when it has never been tried (its
    first job may simply be late: a long queue) unless it is a digest held for its window; when it is due
    (next_attempt_at passed); or when the job holds the current ticket (the relay's latest hand-over).
    No while another worker is sending it (its lease runs) or it waits out a back-off."""
    t = msg.next_attempt_at
    return ((msg.status == "pending" and msg.attempts == 0 and msg.template != DIGEST_TEMPLATE)
            or t is None or t <= now or (ticket is not None and t == ticket))


def send(svc: Services, sms_id: str, ticket: str | None = None) -> str:
    """Send one message once. Returns its status afterwards, or "retrying" when a transient gateway error
    (or a failed check) has it waiting out a back-off, after which the relay hands it over again. A
    permanent error marks it failed at once. "deferred" when the sender's token bucket is booked for longer
    than a worker waits (_wait_for_turn): the text is pending again, due when the sender is free."""
    return send_many(svc, [sms_id], ticket)[sms_id]


# A text the gateway took whose outcome is not recorded yet: (id, what the gateway said).
_Unrecorded = tuple[str, Submitted]

# A batch job claims its texts CLAIM_EVERY at a time, one statement each; a claim's lease
# (SEND_LEASE_SECONDS) covers its texts only while a send started now ends within it (the gateway's
# time-out, 10 s, and a margin). A text the job reaches later than this after its claim is put back for
# the relay to hand over again, never sent under a lease that may run out mid-send.
SEND_WITHIN_SECONDS = SEND_LEASE_SECONDS - 12
# What the gateway said of a batch's texts is recorded together: every RECORD_EVERY texts, or once the
# first unrecorded one is RECORD_WITHIN_SECONDS old, before a wait for the sender's turn, and at the end;
# by the recorder thread while the job sends on (_Outcomes), the job's end waiting for them all.
# (A worker killed in between leaves them `submitting`: the next job asks the gateway before sending.)
# 50 and 0.1 s rather than 20 and 0.05 s: each record is a transaction and a commit, and fewer of them gave
# 0.72-0.77 of the client's rate rather than 0.70 (docs/performance.md, texts' eighth step). Against
# Twilio's answer time (100-200 ms a text) the time limit records each text as it goes.
RECORD_EVERY = 50
RECORD_WITHIN_SECONDS = 0.1
_elapsed: Callable[[], float] = time.monotonic  # the job's own clock for the two above (the tests' is fake)
# A job's texts are claimed as the job reaches them, one statement each: FIRST_CLAIM, then CLAIM_EVERY at
# a time. When its sends (its waits for the sender's turns left out) have taken HAND_BACK_AFTER_SECONDS by
# a claim, the texts left go back to the queue in jobs of CLAIM_EVERY (send_many's hand_back): a job of
# SMS_BATCH_SIZE texts (200) pays RQ's work once for all of them when the gateway answers at once (the
# benchmark's emulator, about 1 ms a text), and against Twilio's answer time (100-200 ms a text) the
# other workers share its texts after about FIRST_CLAIM of them, as they shared jobs of 50 before
# (docs/performance.md, texts' eighth step).
FIRST_CLAIM = 10
CLAIM_EVERY = 50
HAND_BACK_AFTER_SECONDS = 0.5


def send_many(svc: Services, sms_ids: Sequence[str], ticket: str | None = None,
              hand_back: Callable[[list[str]], None] | None = None) -> dict[str, str]:
    """Send texts one after the other, each once, as send() would: each one's status afterwards. A batch
    job's texts (workers/jobs.send_sms_batch) are claimed as it reaches them (FIRST_CLAIM, then
    CLAIM_EVERY at a time), one statement each, and their outcomes recorded a few dozen at a time, by the
    recorder thread while the job sends on (docs/performance.md, SMS): two transactions for up to
    RECORD_EVERY texts rather than one per text, and none the sends wait for but the claims. A text the
    claim did not take (sent already, another job on it, cut off mid-send by a killed worker) goes the
    single text's way (_claim_unfinished).

    `hand_back` (the worker's: a function queueing texts as new jobs): when the sends are slow (Twilio's
    answer time), the texts not yet claimed go back to the queue for other workers rather than waiting
    for this one (HAND_BACK_AFTER_SECONDS), each "requeued"."""
    ticket_at = datetime.fromisoformat(ticket) if ticket else None
    ids = list(dict.fromkeys(sms_ids))
    out: dict[str, str] = {}
    # The job's share of waiting for the sender's turns, all its texts together: a batch for a busy
    # sender puts the rest back rather than holding the worker.
    budget = _WaitBudget()
    outcomes = _Outcomes(svc, out)
    claimed: dict[str, tuple[str, str, int]] = {}
    claimed_at = started = _elapsed()
    next_claim = 0
    try:
        for n, sms_id in enumerate(ids):
            if n == next_claim:
                if n and hand_back is not None and _elapsed() - started - budget.waited >= HAND_BACK_AFTER_SECONDS:
                    hand_back(ids[n:])  # raises with Redis down: the texts stay pending, for the relay
                    out.update(dict.fromkeys(ids[n:], "requeued"))
                    break
                # Claimed a few at a time, as the job reaches them, not the whole job's at its start:
                # against Twilio's answer time (hundreds of ms a text) a job of SMS_BATCH_SIZE would put
                # back most of its texts under leases taken too early (SEND_WITHIN_SECONDS).
                next_claim = n + (FIRST_CLAIM if n == 0 else CLAIM_EVERY)
                claimed, claimed_at = _claim(svc, ids[n:next_claim], ticket_at), _elapsed()
            budget.wanted = len(ids) - n  # turns worth taking together (_wait_for_turn)
            got, since = claimed.get(sms_id), claimed_at
            if got is None:
                unfinished = _claim_unfinished(svc, sms_id, ticket_at)
                if isinstance(unfinished, str):
                    out[sms_id] = unfinished
                    continue
                got, since = unfinished, _elapsed()
            status = _send_claimed(svc, sms_id, got, since, budget, outcomes)
            if status is not None:
                out[sms_id] = status
    finally:
        outcomes.finish()
    return out


def _claim(svc: Services, sms_ids: list[str], ticket_at: datetime | None) -> dict[str, tuple[str, str, int]]:
    """Texts of a job claimed in one statement: {id: (to, body, attempts)} for those claimed. Two jobs for
    one text cannot both claim it (_may_act, in SQL: adapters/sms_store.py). The lease: a worker that dies
    now leaves them `submitting` with this deadline."""
    now = svc.clock.now()
    with svc.uow() as uow:
        claimed = uow.sms.claim_many(sms_ids, now, now + timedelta(seconds=SEND_LEASE_SECONDS), ticket_at)
        uow.commit()
    return claimed


class _Outcomes:
    """What the gateway said of a batch's texts, not yet recorded (RECORD_EVERY, RECORD_WITHIN_SECONDS).
    Recorded by the process's recorder thread (_recorder) while the job sends on: the job's sends do not
    wait for PostgreSQL's answers (docs/performance.md, texts' fourth step). finish() waits for every
    record, at the job's end; a record that failed raises in the job at its next text or at the end, as
    it did when the job recorded them itself (the texts stay `submitting`: the next attempt asks the
    gateway before sending again)."""

    def __init__(self, svc: Services, out: dict[str, str]):
        self.svc, self.out = svc, out
        self.held: list[_Unrecorded] = []
        self.first = 0.0
        self.recording: list[Future[dict[str, str]]] = []

    def add(self, sms_id: str, result: Submitted) -> None:
        if not self.held:
            self.first = _elapsed()
        self.held.append((sms_id, result))
        if len(self.held) >= RECORD_EVERY:
            self.flush()

    def due(self) -> None:
        if self.recording and self.recording[0].done():
            self._collect(lambda f: f.done())
        if self.held and _elapsed() - self.first >= RECORD_WITHIN_SECONDS:
            self.flush()

    def flush(self) -> None:
        held, self.held = self.held, []
        if held:
            self.recording.append(_recorder().submit(_record_many, self.svc, held))

    def finish(self) -> None:
        """Everything held recorded, and waited for."""
        self.flush()
        self._collect(lambda f: True)

    def _collect(self, ready: Callable[[Future[dict[str, str]]], bool]) -> None:
        while self.recording and ready(self.recording[0]):
            self.out.update(self.recording.pop(0).result())  # raises what the record raised


_recorders: dict[int, ThreadPoolExecutor] = {}


def _recorder() -> ThreadPoolExecutor:
    """This process's recorder thread (one: records go one after the other, as a job made them). Made at
    first use, and again in a forked child (a thread does not survive the fork)."""
    pid = os.getpid()
    executor = _recorders.get(pid)
    if executor is None:
        _recorders.clear()
        executor = _recorders[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sms-recorder")
    return executor


# Turns a job takes ahead for its next texts (domain/sms/rate.reserve's `within`): each is used within this
# long of asking for it (the job's clock), else given up and asked for again. Long enough for a batch's
# sends at the client's pace (about 1 ms each here); the bucket counts each as sent this late, so the
# longer it is, the less of a burst the turns taken together leave (rate x this, at most).
TURNS_WITHIN_SECONDS = 0.05


class _WaitBudget:
    """Seconds a job has waited for turns so far (at most SMS_RATE_MAX_WAIT_SECONDS in all); the turns it
    holds for its next texts (`spare`, good until `until` on the job's clock); how many texts it has left
    to send (`wanted`: the most turns worth asking for at once)."""

    def __init__(self) -> None:
        self.waited = 0.0
        self.spare = 0
        self.until = 0.0
        self.wanted = 1


def _send_claimed(svc: Services, sms_id: str, claimed: tuple[str, str, int], since: float,
                  budget: _WaitBudget, outcomes: _Outcomes) -> str | None:
    """Wait for the sender's turn and send a text this job has claimed (at `since`, monotonic). The status
    when settled here; None when the gateway took it (its outcome is in `outcomes`, to be recorded)."""
    to, body, attempts = claimed
    if _elapsed() - since > SEND_WITHIN_SECONDS:  # its lease may run out mid-send: not sent by this job
        outcomes.flush()
        return _put_back(svc, sms_id, attempts, 0.001)
    outcomes.due()
    # The sender's turn, after the claim and anything else so that the gateway is asked right after the
    # turn comes (a turn taken ahead is good for TURNS_WITHIN_SECONDS only).
    booked = _wait_for_turn(svc, budget, before_waiting=outcomes.flush)
    if booked is not None:
        return _put_back(svc, sms_id, attempts, booked)
    try:
        result = svc.sms_gateway.send(to, body, status_callback_url(svc))
    except PermanentSmsError as exc:
        with svc.uow() as uow:
            msg = _claimed_message(uow, sms_id)
            msg.apply_status("failed", svc.clock.now(), exc.code, exc.message)
            msg.next_attempt_at = None
            if exc.code == OPTED_OUT_CODE:
                _learn_opt_out(uow, msg.to, svc.clock.now())
            uow.commit()
        log.warning("sms %s failed permanently: %s", sms_id, exc.code)
        return "failed"
    except TransientSmsError as exc:
        return _hold_back(svc, sms_id, attempts, exc, "submitting" if exc.maybe_sent else "pending")
    outcomes.add(sms_id, result)
    return None


def _record_many(svc: Services, held: list[_Unrecorded]) -> dict[str, str]:
    """Record what the gateway said of texts still `submitting`: the usual outcome ("queued", "accepted")
    for all of them in one transaction (one executemany); one by one, by the rank rules, when one is
    another status or moved on meanwhile."""
    now = svc.clock.now()
    plain = [(i, r.provider_sid, r.status) for i, r in held
             if r.status not in ("sent", "delivered") and STATUS_RANK.get(r.status, 0) > STATUS_RANK["submitting"]]
    if len(plain) == len(held):
        with svc.uow() as uow:
            recorded = uow.sms.record_submitted_many(plain, now)
            uow.commit()
        if recorded == len(plain):
            return {i: status for i, _, status in plain}
    # Rare: an odd status, or a text moved on. Those recorded above are left as they are (same sid,
    # same status: the rank rules change nothing).
    return {i: _record_submitted(svc, i, r.provider_sid, r.status) for i, r in held}


_buckets: weakref.WeakKeyDictionary[Services, SenderBuckets] = weakref.WeakKeyDictionary()


def _sender_buckets(svc: Services) -> tuple[str, SenderBuckets] | None:
    """The gateway's sender and the shared buckets, when the gateway has a sender (Twilio's number or
    Messaging Service) and the configuration its rates (ipoa/config.py; services built without them,
    the console gateway and the tests' scripted ones send unthrottled)."""
    sender = getattr(svc.sms_gateway, "sender", None)
    rates = svc.twilio.get("rates")
    if not sender or not isinstance(rates, SenderRates):
        return None
    buckets = _buckets.get(svc)
    if buckets is None or buckets.rates is not rates:
        buckets = _buckets[svc] = SenderBuckets(svc.redis(), rates)
    return sender, buckets


def _wait_for_turn(svc: Services, budget: _WaitBudget, sleep: Callable[[float], None] = time.sleep,
                   before_waiting: Callable[[], None] | None = None) -> float | None:
    """Take the sender's next turn in its token bucket (shared by every worker: adapters/rate_limit.py)
    and wait for it; None when it has come. Returns the seconds the sender is booked for instead when
    that is longer than what is left of the job's SMS_RATE_MAX_WAIT_SECONDS (nothing taken): the text is
    put back until then."""
    found = _sender_buckets(svc)
    if found is None:
        return None
    if budget.spare:
        budget.spare -= 1
        if _elapsed() < budget.until:
            return None  # a turn taken with an earlier one: no round trip to Redis for this text
        budget.spare = 0  # too late for them: the bucket counted them as gone by now; ask again
    sender, buckets = found
    asked = _elapsed()  # before Redis's clock read the request: the turns' deadline errs early
    turn = buckets.reserve(sender, max_wait=buckets.rates.max_wait - budget.waited, count=budget.wanted,
                           within=TURNS_WITHIN_SECONDS)
    if not turn.granted:
        return max(turn.wait, 0.001)
    budget.spare, budget.until = turn.count - 1, asked + TURNS_WITHIN_SECONDS
    if turn.wait > 0:
        budget.waited += turn.wait
        if before_waiting is not None:
            before_waiting()  # what was sent before is recorded rather than held through the wait
        sleep(turn.wait)
    return None


def _put_back(svc: Services, sms_id: str, attempts: int, booked: float) -> str:
    """A claimed text whose sender is booked for longer than a worker waits: back to `pending`, its
    attempt not counted (the gateway was not asked, so it cannot have gone), due when the sender is
    free; the relay hands it over then (due_for_handover)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        uow.sms.update_submitting(sms_id, status="pending", attempts=max(0, attempts - 1), updated_at=now,
                                  next_attempt_at=_ms(now + timedelta(seconds=booked)))
        uow.commit()
    log.info("sms %s: sender busy, put back for %.1fs", sms_id, booked)
    return "deferred"


def _claimed_message(uow: UnitOfWork, sms_id: str) -> SmsMessage:
    """A text this job has claimed (or had the gateway take): there unless deleted meanwhile."""
    msg = uow.sms.get(sms_id)
    if msg is None:
        raise NotFound(f"sms {sms_id} is gone: it was claimed for sending, then deleted")
    return msg


def _hold_back(svc: Services, sms_id: str, attempts: int, exc: TransientSmsError, status: str) -> str:
    """A transient failure: the text waits out its back-off, then the relay hands it over again. `pending`
    when the gateway certainly did not take it (429); `submitting` when it may have (a time-out), so the
    next attempt asks first. Given up as failed after MAX_SEND_ATTEMPTS."""
    now = svc.clock.now()
    delay = retry_delay(attempts)
    what = f"{type(exc).__name__}: {exc}"[:200]
    with svc.uow() as uow:
        if delay is None:
            uow.sms.update_submitting(sms_id, status="failed", updated_at=now, next_attempt_at=None,
                                      error_code=exc.code,
                                      error_message=f"gave up after {attempts} attempts"
                                      + (" (the last may have reached Twilio)" if status == "submitting" else "")
                                      + f": {what}")
            uow.commit()
            log.warning("sms %s failed: gave up after %d attempts", sms_id, attempts)
            return "failed"
        uow.sms.update_submitting(sms_id, status=status, updated_at=now,
                                  next_attempt_at=now + timedelta(seconds=delay),
                                  error_message=f"retrying (attempt {attempts}): {what}")
        uow.commit()
    log.info("sms %s: transient failure (%s), attempt %d, again in %ds", sms_id, type(exc).__name__, attempts, delay)
    return "retrying"


def _claim_unfinished(svc: Services, sms_id: str, ticket: datetime | None) -> str | tuple[str, str, int]:
    """A message the one-statement claim did not take: missing, already with the gateway (returns its
    status), not to be touched yet (returns "pending" or "submitting"), or cut off mid-send by a killed
    worker: then the gateway is asked before sending again. Returns (to, body, attempts) when it is to
    be sent now."""
    now = svc.clock.now()
    with svc.uow() as uow:
        msg = uow.sms.get(sms_id, for_update=True)
        if msg is None:
            log.warning("sms %s not found", sms_id)
            return "missing"
        if msg.status not in ("pending", "submitting"):
            return msg.status  # already with the gateway: a retried job never sends twice
        if not _may_act(msg, now, ticket):
            return msg.status  # another worker is on it, or it waits out a back-off: the relay hands it over
        if msg.status == "submitting":
            since = msg.submitted_at
            if since is None:  # never so: whatever makes a text `submitting` sets submitted_at
                log.warning("sms %s is submitting with no submitted_at: asking the gateway since its creation",
                            sms_id)
                since = msg.created_at
            try:
                found = svc.sms_gateway.find_submitted(msg.to, msg.body, since)
            except TransientSmsError as exc:
                msg.attempts += 1
                attempts = msg.attempts
                uow.commit()
                return _hold_back(svc, sms_id, attempts, exc, "submitting")
            if found is not None:
                msg.provider_sid = found.provider_sid
                msg.apply_status(found.status, now)
                msg.next_attempt_at = None
                uow.commit()
                log.info("sms %s was already with the gateway: not sent again", sms_id)
                return msg.status
        if uow.sms.opted_out([msg.to]):
            # Its number texted STOP after it was queued (the claim leaves such a text: adapters/sms_store
            # stopped): not sent, and failed as Twilio would have failed it, for the exceptions panel.
            msg.status, msg.error_code = "failed", OPTED_OUT_CODE
            msg.error_message = "not sent: the number texted STOP after this text was queued"
            msg.updated_at, msg.next_attempt_at = now, None
            uow.commit()
            log.info("sms %s not sent: its number texted STOP", sms_id)
            return "failed"
        msg.status = "submitting"
        msg.attempts += 1
        msg.submitted_at = msg.updated_at = now
        msg.next_attempt_at = now + timedelta(seconds=SEND_LEASE_SECONDS)
        to, body, attempts = msg.to, msg.body, msg.attempts
        uow.commit()
    return to, body, attempts


def _record_fast(uow: UnitOfWork, sms_id: str, result: Submitted, now: datetime) -> bool:
    """What the gateway said of a text still `submitting`, in one statement; False when that will not do
    (the text moved on meanwhile, or an odd status): _record_submitted's ORM path decides then."""
    status = result.status
    if STATUS_RANK.get(status, 0) <= STATUS_RANK["submitting"]:
        return False
    if status not in ("sent", "delivered"):
        return uow.sms.record_submitted(sms_id, result.provider_sid, status, now)
    values = {"provider_sid": result.provider_sid, "status": status, "updated_at": now, "next_attempt_at": None,
              "error_message": None, "error_code": None}
    if status == "sent":
        values["sent_at"] = now
    if status == "delivered":
        values["delivered_at"] = now
    return bool(uow.sms.update_submitting(sms_id, **values))


def _record_submitted(svc: Services, sms_id: str, provider_sid: str, status: str) -> str:
    now = svc.clock.now()
    if STATUS_RANK.get(status, 0) > STATUS_RANK["submitting"]:
        with svc.uow() as uow:
            done = _record_fast(uow, sms_id, Submitted(provider_sid, status), now)
            uow.commit()
        if done:
            return status
    with svc.uow() as uow:  # moved on meanwhile, or an odd status: the ORM's rank rules decide
        msg = _claimed_message(uow, sms_id)
        msg.provider_sid = provider_sid
        msg.apply_status(status, now)
        if msg.status not in ("pending", "submitting"):
            msg.next_attempt_at = None
        uow.commit()
        return msg.status


def call_ref_for_referral(svc: Services, referral_id: str) -> str | None:
    with svc.uow() as uow:
        return uow.sms.call_ref_for_referral(referral_id)


def messages_for_call(svc: Services, ref: str) -> list[SmsMessage]:
    with svc.uow() as uow:
        return uow.sms.for_call(ref)


def record_status(svc: Services, provider_sid: str, status: str, error_code: str | None = None) -> bool:
    """A delivery receipt. Statuses only move up (a late `sent` never overwrites `delivered`), so
    repeated or out-of-order callbacks are harmless. Unknown sids are ignored."""
    code = whole_number(str(error_code or ""), 9)
    with svc.uow() as uow:
        msg = uow.sms.by_provider_sid_for_update(provider_sid)
        if msg is None:
            return False
        changed = msg.apply_status(status, svc.clock.now(), code, f"Twilio error {code}" if code else None)
        if changed and code == OPTED_OUT_CODE and msg.status in ("failed", "undelivered"):
            _learn_opt_out(uow, msg.to, svc.clock.now())
        uow.commit()
    return changed


def _learn_opt_out(uow: UnitOfWork, number: str, now: datetime) -> None:
    """Twilio refused a text with 21610: the number texted STOP to Twilio, whether or not ipoa heard it (Twilio
    honours a STOP itself even when its webhook to ipoa failed, and does not send that webhook again). It is
    recorded as the STOP ipoa would have recorded (service/replies.py: on a professional's row, else in
    sms_opt_outs, with its security event naming them by id or the number masked), so that the rota's choice
    (rotas.reachable) falls back past the number instead of choosing it for texts Twilio will refuse
    (docs/domain.md, "SMS to professionals"). A START from the number lifts it as any STOP."""
    if uow.sms.opted_out([number]):
        return
    prof = uow.professionals.by_mobile(number)
    if prof is not None:
        uow.professionals.set_opted_out(prof.id, now)
        subject = str(prof.id)
    else:
        uow.sms.set_number_opted_out(number, now)
        subject = masked(number)
    security.record(uow, now, security.SMS_OPT_OUT, "sms", subject=subject,
                    detail={"reported_by": "twilio", "error_code": OPTED_OUT_CODE})
    log.info("sms: the gateway says a number texted STOP (%s): recorded", OPTED_OUT_CODE)


def recent(svc: Services, limit: int = 200) -> list[SmsMessage]:
    """Every centre's texts: for operators and tests. People see recent_for (their centre's)."""
    with svc.uow() as uow:
        return uow.sms.recent(limit)


def recent_for(svc: Services, actor: Who, limit: int = 200) -> list[SmsMessage]:
    """The texts about calls the user may see: their centre's, and those transferred to or from it
    (the access policy: service/access.py). Nobody without a centre sees any."""
    from .access import may_see_centre

    if not actor.centre or not may_see_centre(actor, actor.centre):
        return []
    with svc.uow() as uow:
        return uow.sms.recent_for_centre(actor.centre, limit)
