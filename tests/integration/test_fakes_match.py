"""The in-memory fakes (tests/fakes.py) behave as the database does: the same use cases, run on both,
come to the same records, the same history and the same refusals. tests/service relies on this."""
from __future__ import annotations

from ipoa.domain.errors import VersionConflict
from ipoa.domain.sms.escalation import EscalationSettings
from ipoa.service import calls as call_service
from ipoa.service import professionals, replies, users
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



SUPERVISOR_MOBILE, NEW_MOBILE, STRANGER = "+447700900301", "+447700900124", "+447700900999"


def stop_scenario(svc) -> dict:
    """STOPs by a supervisor's mobile (by number) and by a professional (on their row), one rule read back by
    opted_out, a professional's number edited (their STOP stays with the old number), START from a stranger:
    what each came to, and the security log."""
    users.create_user(svc, "admin", username="sup.cnh", role="supervisor", centre="CNH",
                      password=users.generate_password(), mobile="07700 900301")
    nia = professionals.add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900123")
    out = {"supervisor_stop": replies.handle(svc, provider_sid="SMs1", from_number=SUPERVISOR_MOBILE, body="STOP"),
           "nia_stop": replies.handle(svc, provider_sid="SMs2", from_number=PROFESSIONAL_MOBILE, body="stop"),
           "stranger": replies.handle(svc, provider_sid="SMs3", from_number=STRANGER, body="START")}
    every = [SUPERVISOR_MOBILE, PROFESSIONAL_MOBILE, NEW_MOBILE, STRANGER]
    with svc.uow() as uow:
        out["opted_out"] = sorted(uow.sms.opted_out(every))
    out["edited"] = professionals.edit_professional(svc, "admin", nia, mobile="07700 900124")
    with svc.uow() as uow:
        out["opted_out_after_edit"] = sorted(uow.sms.opted_out(every))
        # The professional by name: PostgreSQL's ids go on from earlier tests, the fake's start at 1.
        out["events"] = [(e.kind, e.actor, "nia" if e.subject == str(nia) else e.subject, e.detail) for e in reversed(
            uow.security_events.newest_first(kind=None, user=None, before=None, limit=20))
            if e.kind != "user_created"]
    return out


def test_the_fakes_read_stops_as_the_database_does(svc):
    real = stop_scenario(svc)
    fake = stop_scenario(FakeServices())
    assert real["opted_out"] == [PROFESSIONAL_MOBILE, SUPERVISOR_MOBILE]  # the scenario did what it says
    assert real["opted_out_after_edit"] == [PROFESSIONAL_MOBILE, SUPERVISOR_MOBILE]  # not NEW_MOBILE
    assert ("sms_opt_out", "sms", "+447700******", {"users": ["sup.cnh"]}) in real["events"]
    assert fake == real
