"""Nobody who rang is left not knowing (issue 15, point 3): a caller who hung up while queued after more than
the threshold becomes a call in `awaiting_callback`, promised a callback within sla.yaml's
`abandoned_call.call_back_within` (20 minutes by default) of hanging up. Its callback clock runs and escalates
like any promised callback's. A caller with a call already awaiting a callback is not given a second one:
the hang-up is recorded on that call's audit trail instead.

Runs inside the phone leg's own unit of work (service/phone_calls.py): the leg's end, the call, its audit
events, outbox events and timer commit together or not at all. Nothing here names the caller's number in an
audit reason, an outbox payload or a log line: the number is on the call (caller_phone), as a handler types it."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..adapters.phone_leg_store import PhoneLegStore
from ..domain import meaning
from ..domain.engine import CALL_WORKFLOW, Engine
from ..domain.model import AuditEvent, Call, new_ref
from ..domain.telephony.legs import PhoneLeg

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

log = logging.getLogger(__name__)

ACTOR = "telephony"  # who the audit names for what the phone line does by itself
# The callback of a hang-up learnt of too late for its window: due this soon after now (call_back).
DUE_AT_ONCE = timedelta(seconds=1)
NEED = "other"  # nobody heard what the call was about: the handler who calls back triages it
SUMMARY = ("Phone call not answered: the caller hung up after {waited} s in the {queue} queue. "
           "Call them back on the number they rang from.")


def awaiting_callback_states(engine: Engine) -> frozenset[str]:
    """The states where a call waits for a promised callback, in every deployed version of the call workflow."""
    return frozenset().union(*(d.states_tagged(meaning.AWAITING_CALLBACK)
                               for d in engine.definitions() if d.name == CALL_WORKFLOW))


def call_back(svc: Services, uow: UnitOfWork, leg: PhoneLeg, now: datetime, *, waited_seconds: int) -> str | None:
    """The ref of the call that makes sure this caller is called back: a new one in `awaiting_callback`, or
    their open call awaiting a callback already. None when the number was withheld (or is not a UK number):
    nobody can call back, and the leg's outcome still counts it as abandoned."""
    if leg.caller_number is None:
        return None
    engine = uow.engine(svc)
    waiting_states = awaiting_callback_states(engine)
    queue = leg.queue or leg.centre
    store = PhoneLegStore(uow.session)
    store.one_caller_at_a_time(leg.caller_number)  # two of their legs at once: one callback, not two
    for row in store.open_calls_for(leg.caller_number):
        if row.state in waiting_states:
            uow.add_event(AuditEvent(
                call_ref=row.ref, entity="call", entity_id=row.ref, actor=ACTOR, at=now, from_state=row.state,
                to_state=row.state, trigger="rang_again",
                reason="The caller rang again and hung up in the queue before being answered.",
                data={"centre": queue, "waited_seconds": waited_seconds}))
            log.info("phone call abandoned in the %s queue after %d s: call %s awaits its callback already",
                     queue, waited_seconds, row.ref)
            return str(row.ref)
    sla = svc.catalogue.sla
    if sla is None:
        raise RuntimeError("no SLA policy: an abandoned call's callback clock cannot run")
    wf = engine.latest(CALL_WORKFLOW)
    urgency = "urgent" if leg.priority else "same_day"  # a professional's call is answered first too
    decision = svc.routing.decide(NEED, urgency, now, postcode=None)
    call = Call(
        ref=new_ref(), centre=queue, caller_type=leg.caller_type or "public", caller_name=None,
        caller_phone=leg.caller_number, nhs_number=None, given_name="", family_name="", date_of_birth=None,
        postcode=None, locality=decision.locality, out_of_area=decision.out_of_area, need=NEED, urgency=urgency,
        summary=SUMMARY.format(waited=waited_seconds, queue=queue), workflow=wf.name, workflow_version=wf.version,
        logged_at=now, logged_by=ACTOR, recommended=decision.to_dict(), consent="not_asked")
    result = engine.start_call(call, actor=ACTOR, now=now)
    state = call.state or wf.initial
    promise = wf.trigger_for(state, effect="set_callback")
    if promise is None:
        raise RuntimeError(f"call v{wf.version}: no transition from {state} promises a callback (set_callback)")
    # A hang-up learnt of after the callback window (its webhooks lost, found by service/lost_calls.py once
    # ipoa was back): the callback is overdue already, so it is due at once: its clock breaches now and
    # escalates callback.overdue_after later (docs/telephony.md, "Lost webhooks"). A promise in the past is
    # refused (domain/guards.py), which failed every later check.
    promised_at = max((leg.hung_up_at or now) + sla.abandoned.call_back_within, now + DUE_AT_ONCE)
    result.extend(engine.fire(
        call, promise, actor=ACTOR, now=now, data={"callback_at": promised_at.isoformat()},
        reason=f"Abandoned phone call: a callback is due within {sla.abandoned.call_back_text} of the hang-up."))
    uow.add_new_call(call, result)
    log.info("phone call abandoned in the %s queue after %d s: call %s made to call the caller back",
             queue, waited_seconds, call.ref)
    return call.ref
