"""OFF / ON by SMS: a professional on a shift marks themselves unavailable until it ends, or back (issue 13;
docs/domain.md, "Rotas"). While unavailable the rota does not count them on duty nor texts them
(adapters/rota_store.ContactRow.on_duty_at), so a referral's texts fall back along the chain.

`decide` reads the rota and says what the text does and what to answer; `record` writes a change in the
reply's own unit of work (service/replies.py), so a retried webhook (same MessageSid) changes nothing twice:
the professional's row, an `availability_changed` security event (the service and the change, never a
mobile number) and an outbox event. The relay turns that event into the duty lead's text
(`messages_for_event`, called by service/sms.py), as every other text goes."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..adapters.availability_store import AvailabilityStore
from ..domain.engine import Result
from ..domain.model import OutboxMessage
from ..domain.rota import Contact
from ..domain.sms.delivery import SmsMessage
from ..domain.sms.recipients import Recipient
from ..domain.sms.timetext import local_time_text
from . import rotas, security
from .errors import NotFound

if TYPE_CHECKING:
    from ..adapters.results import AnyRow
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

TOPIC = "professional.availability_changed"
OFF, ON = "off", "on"

# The outcomes stored with the reply (sms_inbound.outcome).
CHANGED_OFF, CHANGED_ON = "off", "on"
ALREADY_OFF, NO_SHIFT, NOT_OFF = "already_off", "off_no_shift", "on_not_off"

_NAME_MAX = 30  # the SMS field `staff_name` (domain/sms/fields.py)
_NOT_NAME = re.compile(r"[^A-Za-z .'-]")


@dataclass(frozen=True)
class Decision:
    """What an OFF or ON text does: the outcome, the answer, and for a change (`change` set) the new
    unavailable_until and who the duty lead's text goes to."""

    outcome: str
    answer: str
    change: str | None = None  # OFF or ON when the professional's state changes
    until: datetime | None = None  # OFF: the end of the shift they are on
    service: str = ""
    lead_id: int | None = None  # the duty lead told, a professional ...
    lead_is_directory: bool = False  # ... or the directory's duty-lead number of the service
    alone: bool = False  # OFF: nobody else on duty can be texted now (referrals go to the duty lead)


def _lead(duty: rotas.Duty, shifts: list[Any], professional_id: int) -> tuple[int | None, bool]:
    """The duty lead of the professional's shift(s), else the service's standing duty lead; never the
    professional themself. (professional id, whether it is the directory's number); (None, False): nobody."""
    wanted = [o.duty_lead for o in sorted(shifts, key=lambda o: o.end, reverse=True) if o.duty_lead is not None]
    leading = {p.id for p in duty.duty_leads}  # active, and not OFF themselves
    for lead in wanted:
        if lead != professional_id and lead in leading:
            return lead, False
    standing = duty.standing_duty_lead
    if standing is None or standing.id == professional_id:
        return None, False
    return standing.id, standing.id is None


def decide(svc: Services, prof: AnyRow, command: str, now: datetime) -> Decision:
    """OFF or ON from a registered, active professional, read against the rota now."""
    render = svc.sms_templates.render
    unavailable = prof.unavailable_until is not None and prof.unavailable_until > now
    try:
        duty = rotas.on_duty_now(svc, prof.service, now)
    except NotFound:  # a service gone from the directory: no shift to be on
        duty = None
    mine = [o for o in duty.shifts if prof.id in o.professionals or o.duty_lead == prof.id] if duty else []
    if command == "ON":
        if not unavailable:
            return Decision(NOT_OFF, render("reply_on_not_off"))
        lead, directory = _lead(duty, mine, prof.id) if duty is not None else (None, False)
        return Decision(CHANGED_ON, render("reply_on", service=prof.service), ON, None, prof.service, lead,
                        directory)
    if duty is None or not mine:
        return Decision(NO_SHIFT, render("reply_off_no_shift"))
    # Overlapping shifts: unavailable until the last of them ends.
    until = max(o.end for o in mine)
    answer = render("reply_off", due=local_time_text(until, now))
    if unavailable and prof.unavailable_until == until:
        return Decision(ALREADY_OFF, answer)
    others = [p.id for p in duty.professionals if p.id is not None and p.id != prof.id]
    with svc.uow() as uow:
        alone = not any(c.textable_at(now) for c in uow.rotas.contacts(others).values())
    lead, directory = _lead(duty, mine, prof.id)
    return Decision(CHANGED_OFF, answer, OFF, until, prof.service, lead, directory, alone)


def actor(prof: AnyRow) -> str:
    """An SMS reply's actor, as service/replies.py names the professional's."""
    return f"sms:{prof.name}"[:64]


def record(uow: UnitOfWork, now: datetime, prof: AnyRow, decision: Decision) -> None:
    """A change of state, in the caller's unit of work: the row, the security event, the outbox event."""
    if decision.change is None:
        return
    AvailabilityStore(uow.session).set_unavailable_until(prof.id, decision.until)
    until = decision.until.isoformat() if decision.until is not None else None
    security.record(uow, now, security.AVAILABILITY_CHANGED, actor(prof), subject=decision.service,
                    detail={"change": decision.change, "until": until, "professional_id": prof.id})
    payload = {"service": decision.service, "professional_id": prof.id, "change": decision.change, "until": until,
               "alone": decision.alone, "duty_lead_id": decision.lead_id,
               "directory_duty_lead": decision.lead_is_directory}
    uow.record(Result(outbox=[OutboxMessage(topic=TOPIC, payload=payload, created_at=now)]))


def sms_name(name: str, professional_id: int) -> str:
    """A name the SMS field accepts: plain letters kept, cut at a word within 30 characters; a name with
    nothing plain left is 'Professional <id>'."""
    plain = " ".join(_NOT_NAME.sub("", name).split()).lstrip(" .'-")
    if len(plain) > _NAME_MAX:
        cut = plain[:_NAME_MAX + 1].rsplit(" ", 1)[0] if " " in plain[:_NAME_MAX + 1] else plain[:_NAME_MAX]
        plain = cut[:_NAME_MAX].rstrip()
    return plain or f"Professional {professional_id}"


def messages_for_event(svc: Services, uow: UnitOfWork, message_id: str, payload: dict[str, Any]) -> list[SmsMessage]:
    """The duty lead's text about an OFF or ON (none when there is no duty lead to text: their number texted
    STOP, deactivated, OFF themselves, or no number)."""
    now = svc.clock.now()
    service, prof_id = payload["service"], payload["professional_id"]
    lead_id: int | None = payload.get("duty_lead_id")
    prof = uow.rotas.contacts([prof_id]).get(prof_id)
    if prof is None:
        return []
    # The duty lead passes the check every text chosen from the rota passes (rotas.reachable: active, not OFF
    # themselves, and their number not one that texted STOP, by the one rule of adapters/sms_store.stopped).
    if lead_id is not None:
        found = rotas.reachable(uow, now, [lead_id])
    elif payload.get("directory_duty_lead"):
        entry = svc.directory.services.get(service)
        if entry is None or not entry.duty_lead or entry.duty_lead == prof.mobile:
            return []
        found = rotas.reachable(uow, now, others=[Contact(f"the {service} duty lead", entry.duty_lead)])
    else:
        return []
    if not found:
        return []
    to = found[0].mobile
    fields = {"staff_name": sms_name(prof.name, prof.id), "service": service}
    if payload["change"] == OFF:
        template = "availability_off_alone" if payload.get("alone") else "availability_off"
        fields["due"] = local_time_text(datetime.fromisoformat(payload["until"]), now)
    else:
        template = "availability_on"
    body = svc.sms_templates.render(template, **fields)
    # Not about a call: no call reference (the column needs a value, so an empty one).
    return [SmsMessage(call_ref="", referral_id=None, recipient=Recipient("duty_lead", to, lead_id),
                       template=template, body=body, created_at=now, outbox_id=message_id)]
