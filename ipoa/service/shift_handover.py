"""Hand-over at a shift change (issue 13, point 5; docs/domain.md, "Rotas"): the referrals sent to a service
before one of its shift changes and still awaiting acceptance are re-sent to the incoming shift, once per
change, audited on the referral's call, for each service whose directory entry leaves
`resend_at_handover` on.

`run` is called by the scheduler every 30 s (workers/scheduler.ShiftHandovers) and by `flask --app ipoa
rota handover`. Each service's changes are looked at from where the last run stopped (handover_checks),
at most a day back, so a scheduler that was down catches up and a change is seen once. Each change is one
unit of work: the handover_resends rows (their primary key makes a re-send happen once, even with two
schedulers racing: the second finds the row and does nothing), an audit event per referral, the outbox
events whose texts go to the incoming shift, and the service's checked_until moved on.

Nobody is texted twice about a referral: who is on duty now (the rota's fall-back chain,
service/rotas.referral_recipients) less anyone a text about it already went to. When nobody new remains
(a 00:00-00:00 pattern joining the next day: the same people) the change is recorded as looked at and
nothing is sent. When the chain finds nobody ipoa may text at all (every one OFF, deactivated or their
number opted out), the referral goes on the supervisors' exceptions panel ("not re-sent at the 20:00
hand-over: nobody on duty for DN could be texted, phone DN instead"), as a referral whose first texts
reached nobody does. "Awaiting acceptance" is a state's tag in the referral's own workflow version, never a
state's name (service/workflow_meaning.py).

The texts are the referral's own (`referral_sent`: reference, service, urgency, when it was first sent,
and the invitation to reply ACCEPT / DECLINE with the ref: domain/sms/invitations.py), made by the relay
from the `referral.handed_over` event (service/sms.messages_for_event). Who they went to and why is kept
with the texts for the call page, as for the first text ("re-sent at the 20:00 hand-over to Night Nurse
(on duty)")."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.handover_store import HandoverStore, Waiting
from ..domain import meaning
from ..domain.date_parts import london_clock
from ..domain.engine import REFERRAL_WORKFLOW, Result, outbox_event
from ..domain.model import AuditEvent
from ..domain.rota import Contact, handover_due
from ..domain.rota.recipients import NOBODY, ON_DUTY, SHIFT_DUTY_LEAD, STANDING_DUTY_LEAD, SUPERVISOR
from ..domain.sms.delivery import SmsMessage
from ..domain.sms.recipients import Recipient
from ..domain.sms.timetext import local_time_text
from . import rotas, workflow_meaning

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

log = logging.getLogger(__name__)

HANDOVER_TOPIC = "referral.handed_over"  # the outbox event whose texts go to the incoming shift
ACTOR = "system:handover"
TRIGGER = "handed_over"  # the audit event's "what": "referral handed over (DN)" in the call's history
LOOK_BACK = timedelta(hours=24)  # a scheduler down longer catches up on the last day's changes only
TEMPLATE = "referral_sent"  # the referral's own text: the incoming shift acts on it as on the first

# How the call page and the audit trail say who a re-send went to, by the step of the fall-back chain.
_AS = {ON_DUTY: "on duty", SHIFT_DUTY_LEAD: "the shift's duty lead", STANDING_DUTY_LEAD: "the standing duty lead",
       SUPERVISOR: "the referring centre's supervisor"}


def _names(people: Sequence[Contact]) -> str:
    names = [p.name for p in people]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def resent_words(at: datetime, step: str, people: Sequence[Contact]) -> str:
    """"re-sent at the 20:00 hand-over to Night Nurse (on duty)": for the call page and the audit trail."""
    return f"re-sent at the {london_clock(at, '%H:%M')} hand-over to {_names(people)} ({_AS.get(step, step)})"


def nobody_words(at: datetime, service: str) -> str:
    """"not re-sent at the 20:00 hand-over: ...": for the exceptions panel, the call page and the audit trail."""
    return (f"not re-sent at the {london_clock(at, '%H:%M')} hand-over: nobody on duty for {service} could be "
            f"texted, phone {service} instead")


def incoming(svc: Services, uow: UnitOfWork, service: str, centre: str | None, already: set[str],
             now: datetime) -> tuple[str, list[Contact]]:
    """Who a referral's re-send goes to now: the fall-back chain's step and its people, less the numbers
    already texted about the referral."""
    choice = rotas.referral_recipients(svc, uow, service, centre, now)
    return choice.step, [c for c in choice.recipients if c.mobile not in already]


def run(svc: Services, now: datetime | None = None) -> int:
    """Look at every service's shift changes since the last run; how many referrals were re-sent."""
    now = now or svc.clock.now()
    awaiting = workflow_meaning.tagged_by_version(svc, REFERRAL_WORKFLOW, meaning.AWAITING_ACCEPTANCE)
    total = 0
    for code, service in svc.directory.services.items():
        if service.resend_at_handover:
            total += _run_service(svc, code, now, awaiting)
    return total


def _run_service(svc: Services, service: str, now: datetime, awaiting: dict[int, frozenset[str]]) -> int:
    with svc.uow() as uow:
        store = HandoverStore(uow.session)
        checked = store.checked_until(service)
        # No row yet: from now (no catching up on history the first time); never more than a day back.
        previous = max(checked or now, now - LOOK_BACK)
        changes = handover_due(uow.rotas.rota(service, previous - timedelta(seconds=1), now + timedelta(seconds=1)),
                               service, previous, now) if previous < now else []
        if not changes:
            store.advance(service, now)
            uow.commit()
            return 0
    total = 0
    # The numbers each referral's re-send goes to in this run: when a run catches up on several changes,
    # the earlier change's texts are not made yet (the relay makes them), and nobody is texted twice.
    promised: dict[str, set[str]] = {}
    for change in changes:
        total += _hand_over(svc, service, change.at, change.key, now, awaiting, promised)
    with svc.uow() as uow:
        HandoverStore(uow.session).advance(service, now)
        uow.commit()
    return total


def _hand_over(svc: Services, service: str, at: datetime, key: str, now: datetime,
               awaiting: dict[int, frozenset[str]], promised: dict[str, set[str]]) -> int:
    """One shift change of one service, in one unit of work; how many referrals were re-sent."""
    with svc.uow() as uow:
        store = HandoverStore(uow.session)
        waiting = store.waiting(service, at, at, awaiting, REFERRAL_WORKFLOW)
        texted = store.texted(r.referral_id for r in waiting)
        result = Result()
        for r in waiting:
            already = texted[r.referral_id] | promised.get(r.referral_id, set())
            step, people = incoming(svc, uow, service, r.centre, already, now)
            if not people and step != NOBODY:
                continue  # the incoming shift already has it: looked at
            if not store.claim(r.referral_id, at, service, now):
                continue  # another run re-sent it at this change: it did the rest too
            # Nobody ipoa may text on the incoming shift: the event still goes, so that the relay puts the
            # referral on the exceptions panel (texts_for_handover) for someone to phone the service.
            promised.setdefault(r.referral_id, set()).update(c.mobile for c in people)
            words = resent_words(at, step, people) if people else nobody_words(at, service)
            result.audit.append(AuditEvent(
                call_ref=r.ref, entity="referral", entity_id=r.referral_id, actor=ACTOR, at=now,
                from_state=r.state, to_state=r.state, trigger=TRIGGER, reason=words[0].upper() + words[1:],
                data={"service": service, "handover_at": at.isoformat(), "to": words}))
            result.outbox.append(_event(r, at, key, now))
        store.advance(service, at)
        uow.record(result)
        uow.commit()
    if result.outbox:
        log.info("hand-over at %s for %s: %d referral(s) re-sent", at.isoformat(), service, len(result.outbox))
    return len(result.outbox)


class _Ref:
    """A referral's or call's attributes as outbox_event reads them."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _event(r: Waiting, at: datetime, key: str, now: datetime) -> Any:
    call = _Ref(ref=r.ref, centre=r.centre, urgency=r.urgency, need=r.need, version=r.call_version)
    referral = _Ref(id=r.referral_id, service=r.service, version=r.version)
    # Codes, references and instants only, like every outbox payload (docs/security.md).
    return outbox_event(HANDOVER_TOPIC, call, referral, now, handover_at=at.isoformat(),
                        sent_at=r.sent_at.isoformat(), key=key)


def texts_for_handover(svc: Services, uow: UnitOfWork, message_id: str, payload: dict[str, Any],
                       now: datetime, kind_of: Mapping[str, str]) -> list[SmsMessage]:
    """The texts of a `referral.handed_over` event (service/sms.messages_for_event, which hands in its
    recipient kind per step of the chain): the referral's own text to whoever is on duty now and was not
    texted about it yet; who and why recorded for the call page."""
    referral_id, service = payload["referral_id"], payload["service"]
    already = HandoverStore(uow.session).texted([referral_id])[referral_id]
    step, people = incoming(svc, uow, service, payload.get("centre"), already, now)
    if not people:
        # Two different truths: the chain found nobody ipoa may text now (all OFF, deactivated or their numbers
        # texted STOP: service/rotas.reachable), or everyone it found was already texted about the referral.
        if step == NOBODY:
            log.warning("hand-over of a %s referral on %s: nobody on duty can be texted", service, payload["ref"])
            # On the exceptions panel, as a referral whose first texts reached nobody is.
            uow.rotas.record_choice(outbox_id=message_id, call_ref=payload["ref"], referral_id=referral_id,
                                    service=service, step=NOBODY, created_at=now,
                                    reason=nobody_words(datetime.fromisoformat(payload["handover_at"]), service))
        else:
            log.info("hand-over of a %s referral on %s: everyone on duty was already texted", service,
                     payload["ref"])
        return []
    at = datetime.fromisoformat(payload["handover_at"])
    uow.rotas.record_choice(outbox_id=message_id, call_ref=payload["ref"], referral_id=referral_id,
                            service=service, step=step, reason=resent_words(at, step, people), created_at=now)
    body = svc.sms_templates.render(
        TEMPLATE, ref=payload["ref"], service=service, urgency=payload.get("urgency", "").replace("_", " "),
        sent_at=local_time_text(datetime.fromisoformat(payload["sent_at"]), now),
        link=svc.sms_templates.link_for(uow.sms.link_code(now, referral_id=referral_id)))
    kind = kind_of[step]
    return [SmsMessage(call_ref=payload["ref"], referral_id=referral_id,
                       recipient=Recipient(kind, c.mobile, c.professional_id), template=TEMPLATE, body=body,
                       created_at=now, outbox_id=message_id) for c in people]
