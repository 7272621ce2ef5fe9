"""What changes underneath a handler while a call's page is open, for the page to poll every few seconds
(web/live_pages.py): the call's state, urgency and breach, its running SLA clocks, each referral's state
and breach, and the changes made since the page was drawn.

Not a view of the record: this carries no identifier of the person (no name, NHS number, date of birth,
address, postcode, phone, summary, outcome or any other text staff typed), so asking for it leaves no access
event, where opening the call page leaves one each time (service/records.py; the access log records each
view of identifiable details: docs/information-governance.md). Who may ask is still the access policy's
decision, exactly as for the page: `view` on the call, or OutsideRelationship."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..domain.model import AuditEvent, Call
from . import access
from .errors import NotFound
from .timers import RunningClock, running_clocks

if TYPE_CHECKING:
    from ..bootstrap import Services
    from .access import Who


@dataclass(frozen=True)
class ReferralStatus:
    id: str
    service: str
    state: str
    breach: str | None
    breached_at: datetime | None


@dataclass(frozen=True)
class Change:
    """One audited change since the page was drawn: what, to whom (the call or one referral), by whom,
    when. Never its reason: staff type reasons, and a reason may name the person."""
    entity: str  # call | referral
    service: str | None  # the referral's service
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CallStatus:
    """The same names as domain.model.Call's, so one template draws either."""
    ref: str
    centre: str
    origin_centre: str
    state: str
    urgency: str
    breach: str | None
    breached_at: datetime | None
    referrals: tuple[ReferralStatus, ...]
    clocks: list[RunningClock]
    edition: str  # edition() now
    changes: list[Change]  # audited after the page's last event, oldest first


def edition(call: Call) -> str:
    """The versions the page's forms were drawn with, as one value: the call's and each referral's
    (every form posts one of them as expected_version). When it differs, a form on the page would be
    refused as a conflict, so the page says so. A breach changes no version (service/timers.py) and so
    no edition: it is shown live instead."""
    return ".".join(str(v) for v in (call.version, *(r.version for r in call.referrals)))


def last_event_seq(history: list[AuditEvent]) -> int:
    """The audit sequence number of the newest event a page shows (0 for none): the changes after it are
    news to that page."""
    return max((e.seq or 0 for e in history), default=0)


def call_status(svc: Services, actor: Who, ref: str, after_seq: int = 0) -> CallStatus:
    """The call as the open page needs it refreshed, for someone who may see the call (NotFound,
    OutsideRelationship otherwise); the changes audited after after_seq."""
    now = svc.clock.now()
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        if call is None:
            raise NotFound(f"no call {ref}")
        access.authorise(uow, actor, call, "view", now)  # and no access event: nothing identifying is read out
        history = uow.calls.history(ref)
        services = {r.id: r.service for r in call.referrals}
        changes = [Change(e.entity, services.get(e.entity_id) if e.entity == "referral" else None, e.trigger,
                          e.from_state, e.to_state, e.actor, e.at)
                   for e in history if (e.seq or 0) > after_seq]
    return CallStatus(
        ref=call.ref, centre=call.centre, origin_centre=call.origin_centre, state=call.state or "",
        urgency=call.urgency, breach=call.breach, breached_at=call.breached_at,
        referrals=tuple(ReferralStatus(r.id, r.service, r.state or "", r.breach, r.breached_at)
                        for r in call.referrals),
        clocks=running_clocks(svc, [ref]).get(ref, []), edition=edition(call), changes=changes)


__all__ = ["CallStatus", "Change", "ReferralStatus", "call_status", "edition", "last_event_seq"]
