"""The in-memory fakes (tests/fakes.py) behave as the database does: the same use cases, run on both,
come to the same records, the same history and the same refusals. tests/service relies on this."""
from __future__ import annotations

from ipoa.domain.errors import VersionConflict
from ipoa.domain.sms.escalation import EscalationSettings
from ipoa.service import calls as call_service
from ipoa.service import professionals, replies
from tests.fakes import FakeServices
from tests.helpers import call_payload
from tests.helpers.scenarios import HANDLER, HANDLER_ASC, PROFESSIONAL_MOBILE, SUPERVISOR, referred, summary


def _outcome(run) -> str:
    try:
        return f"ok: {run()}"
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return f"{type(exc).__name__}: {exc}"


def scenario(svc) -> dict:
    """Log, refer, re-route, escalate twice, a stale change, a duplicate, a reply: what each came to."""
    svc.escalation_settings = EscalationSettings()
    ref, rid = referred(svc)
    out = {"referred": summary(svc, ref)}
    out["stale"] = _outcome(lambda: call_service.fire_call_trigger(
        svc, HANDLER, ref, {"trigger": "cancel", "expected_version": 1}).state)
    out["duplicate"] = _outcome(lambda: call_service.log_call(svc, HANDLER_ASC, call_payload(centre="ASC")).state)
    call, new = call_service.reroute_referral(svc, SUPERVISOR, ref, rid, {
        "service": "DN", "reason": "CRT at capacity", "expected_version": 1})
    out["rerouted"] = summary(svc, ref)
    out["escalated"] = _outcome(lambda: call_service.escalate_referral(svc, SUPERVISOR, ref, new.id, "Chase").state)
    svc.clock.advance(minutes=4)
    out["escalated_again"] = _outcome(lambda: call_service.escalate_referral(svc, SUPERVISOR, ref, new.id, "Chase"))
    professionals.add_professional(svc, name="Dee Nurse", service="DN", mobile="07700 900123")
    answer = replies.handle(svc, provider_sid="SM1", from_number=PROFESSIONAL_MOBILE, body=f"ACCEPT {ref}")
    out["reply"] = answer.replace(ref, "REF")
    out["reply_again"] = replies.handle(svc, provider_sid="SM1", from_number=PROFESSIONAL_MOBILE,
                                        body=f"ACCEPT {ref}").replace(ref, "REF")
    out["accepted"] = summary(svc, ref)
    return out


def test_the_fakes_come_to_what_the_database_comes_to(svc):
    real = scenario(svc)
    fake = scenario(FakeServices())
    assert ("DN", "accepted", 2, None) in real["accepted"]["referrals"]  # the scenario did what it says
    assert real["escalated_again"].startswith("EscalationTooSoon")
    assert real["stale"].startswith(VersionConflict.__name__) and real["duplicate"].startswith("DuplicateSuspected")
    assert fake == real

