"""Use-case scenarios run both against the in-memory fakes (tests/service) and against the database
(tests/integration/test_fakes_match.py), so that the fakes are checked to behave as the stores do."""
from __future__ import annotations

from typing import Any

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.helpers import call_payload

HANDLER = Actor(username="handler", role="handler", centre="CNH")
HANDLER_ASC = Actor(username="handler.asc", role="handler", centre="ASC")
SUPERVISOR = Actor(username="supervisor", role="supervisor", centre="CNH")
PROFESSIONAL_MOBILE = "+447700900123"  # Ofcom's drama range: never a real phone (07700 900123)


def referred(svc: Any, **payload: Any) -> tuple[str, str]:
    """A call logged, triaged and referred to CRT by a CNH handler: (its ref, the referral's id)."""
    call = call_service.log_call(svc, HANDLER, call_payload(**payload))
    call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, HANDLER, call.ref, {
        "trigger": "refer", "expected_version": 2, "data": {"service": "CRT"}, "reason": "Known to this service"})
    return call.ref, call.referrals[0].id


def summary(svc: Any, ref: str) -> dict[str, Any]:
    """What a call has come to, as the service layer reads it back: comparable across stores."""
    call, history = call_service.get_call(svc, ref)
    return {"state": call.state, "version": call.version, "centre": call.centre,
            # Sorted: referrals sent in the same instant (the scenario's fixed clock) have no order of their own.
            "referrals": sorted(((r.service, r.state, r.version, r.outcome_reason) for r in call.referrals),
                                key=lambda r: (r[0], r[1], r[2], r[3] or "")),
            "history": [(e.entity, e.trigger, e.from_state, e.to_state, e.actor, e.reason) for e in history]}
