"""Use cases on calls (ipoa/service/calls.py) against the fakes: what they decide, record and refuse."""
from __future__ import annotations

import pytest

from ipoa.domain.errors import TriggerNotAllowed, VersionConflict
from ipoa.service import calls as call_service
from ipoa.service.errors import Forbidden, OutsideRelationship
from ipoa.service.inputs import InvalidInput
from tests.helpers import call_payload
from tests.helpers.scenarios import HANDLER, HANDLER_ASC, SUPERVISOR, referred, summary


def test_logging_a_call_commits_it_with_its_audit_event_and_outbox_message(svc, db):
    call = call_service.log_call(svc, HANDLER, call_payload())
    assert summary(svc, call.ref) == {"state": "logged", "version": 1, "centre": "CNH", "referrals": [],
                                      "history": [("call", "log", None, "logged", "handler", None)]}
    assert call.logged_at == svc.clock.now() and call.recommended["service"]
    assert [m.topic for m in db.outbox] == ["call.logged"]
    assert db.published == [m.id for m in db.outbox]  # handed to the publisher once committed
    assert [(t.kind, t.call_ref, t.referral_id) for t in db.timers] == [("triage", call.ref, None)]


def test_a_handler_logs_calls_for_their_own_centre_only(svc, db):
    with pytest.raises(Forbidden, match="your own centre only"):
        call_service.log_call(svc, HANDLER, call_payload(centre="ASC"))
    assert not db.calls and not db.audit and not db.outbox


def test_invalid_input_is_refused_field_by_field_before_anything_is_recorded(svc, db):
    with pytest.raises(InvalidInput) as refused:
        call_service.log_call(svc, HANDLER, call_payload(urgency="whenever", need=""))
    assert {"urgency", "need"} <= set(refused.value.errors)
    assert not db.calls and svc.uow().commits == 0


def test_a_second_open_call_for_one_nhs_number_is_refused_until_the_handler_allows_it(svc, db):
    first = call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(call_service.DuplicateSuspected) as refused:
        call_service.log_call(svc, HANDLER, call_payload())
    assert [(c.ref, c.state, c.visible, c.need) for c in refused.value.open_calls] == [
        (first.ref, "logged", True, "urgent_community_health")]
    assert db.intake_locks == ["9990000026", "9990000026"]  # the check ran under the intake lock each time
    second = call_service.log_call(svc, HANDLER, call_payload(), allow_duplicate=True)
    assert second.ref != first.ref and len(db.calls) == 2
    assert db.intake_locks == ["9990000026", "9990000026"]  # allowing a duplicate neither checks nor waits


def test_a_duplicate_outside_the_relationship_says_only_that_it_exists(svc):
    call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(call_service.DuplicateSuspected) as refused:
        call_service.log_call(svc, HANDLER_ASC, call_payload(centre="ASC"))
    (seen,) = refused.value.open_calls
    assert (seen.centre, seen.visible, seen.need, seen.urgency) == ("CNH", False, None, None)


def test_triage_then_referral_sends_it_and_moves_the_clocks(svc, db):
    ref, rid = referred(svc)
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]
    assert summary(svc, ref)["history"][1:] == [
        ("call", "start_triage", "logged", "in_triage", "handler", None),
        ("call", "refer", "in_triage", "referred", "handler", "Known to this service"),
        ("referral", "refer", None, "sent", "handler", "Known to this service")]
    assert "referral.sent" in [m.topic for m in db.outbox]
    # The triage clock stopped as the call left triage; the referral's acceptance clock runs.
    assert [(t.kind, t.referral_id) for t in db.timers if t.stopped_at is None] == [("acceptance", rid)]


def test_a_stale_version_is_a_conflict_and_records_nothing(svc, db):
    call = call_service.log_call(svc, HANDLER, call_payload())
    call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "start_triage", "expected_version": 1})
    before = (len(db.audit), len(db.outbox))
    with pytest.raises(VersionConflict):
        call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "resolve", "expected_version": 1})
    assert (len(db.audit), len(db.outbox)) == before
    assert summary(svc, call.ref)["state"] == "in_triage"


def test_a_trigger_the_state_does_not_allow_is_refused(svc):
    call = call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(TriggerNotAllowed) as refused:
        call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "close", "expected_version": 1})
    assert "start_triage" in refused.value.allowed


def test_another_centres_handler_may_not_change_the_call(svc):
    call = call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(OutsideRelationship):
        call_service.fire_call_trigger(svc, HANDLER_ASC, call.ref,
                                       {"trigger": "start_triage", "expected_version": 1})
    assert summary(svc, call.ref)["version"] == 1


def test_a_supervisor_reroutes_an_unaccepted_referral_in_one_change(svc, db):
    ref, rid = referred(svc)
    call, new = call_service.reroute_referral(svc, SUPERVISOR, ref, rid, {
        "service": "DN", "reason": "CRT at capacity, DN can visit today", "expected_version": 1})
    assert (call.state, call.version, new.service, new.state) == ("referred", 5, "DN", "sent")
    after = summary(svc, ref)
    assert after["referrals"] == [("CRT", "withdrawn", 2, "CRT at capacity, DN can visit today"),
                                  ("DN", "sent", 1, None)]
    assert [h[:5] for h in after["history"][-4:]] == [
        ("referral", "withdraw", "sent", "withdrawn", "supervisor"),
        ("call", "referral_withdrawn", "referred", "in_triage", "supervisor"),
        ("call", "refer", "in_triage", "referred", "supervisor"),
        ("referral", "refer", None, "sent", "supervisor")]
    assert [(t.kind, t.referral_id) for t in db.timers if t.stopped_at is None] == [("acceptance", new.id)]
    assert [m.topic for m in db.outbox].count("referral.sent") == 2


def test_only_supervisors_reroute_and_never_to_the_same_service(svc):
    ref, rid = referred(svc)
    with pytest.raises(Forbidden):
        call_service.reroute_referral(svc, HANDLER, ref, rid, {"service": "DN", "reason": "x", "expected_version": 1})
    with pytest.raises(InvalidInput) as refused:
        call_service.reroute_referral(svc, SUPERVISOR, ref, rid,
                                      {"service": "CRT", "reason": "x", "expected_version": 1})
    assert "already to CRT" in refused.value.errors["service"]
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]


def test_an_escalation_is_refused_again_until_the_repeat_interval_has_passed(svc, db):
    ref, rid = referred(svc)
    call_service.escalate_referral(svc, SUPERVISOR, ref, rid, "Chasing a visit")
    escalated = [m for m in db.outbox if m.topic == "referral.escalated"]
    assert len(escalated) == 1 and escalated[0].payload["clock"] == "acceptance"
    svc.clock.advance(minutes=3)
    with pytest.raises(call_service.EscalationTooSoon) as refused:
        call_service.escalate_referral(svc, SUPERVISOR, ref, rid, "Chasing again")
    assert refused.value.retry_after_seconds == 7 * 60
    assert [m.topic for m in db.outbox].count("referral.escalated") == 1
    svc.clock.advance(minutes=7)
    call_service.escalate_referral(svc, SUPERVISOR, ref, rid, "Chasing again")
    assert [m.topic for m in db.outbox].count("referral.escalated") == 2
    # Audited on the referral, its state and version unchanged.
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]
    assert [e.reason for e in db.audit if e.trigger == "escalate"] == ["Chasing a visit", "Chasing again"]
