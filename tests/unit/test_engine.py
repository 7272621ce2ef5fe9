"""The engine on plain Call objects: lifecycle paths, guards, audit and outbox, route overrides, version
checks, workflow version pinning and Hypothesis properties over random trigger sequences. Pure: the only
files read are the shipped definitions in workflows/."""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipoa.domain.catalogue import load_workflow_files, parse_workflow
from ipoa.domain.engine import Engine, Result
from ipoa.domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ipoa.domain.model import Call
from tests.helpers.engine import (
    CALLER,
    DIRECTORY,
    DOB,
    ENGINE,
    FAMILY,
    GIVEN,
    NHS,
    NOW,
    PHONE,
    POSTCODE,
    ROUTING,
    SUMMARY,
    UTC,
    WORKFLOWS,
    decide,
    in_triage,
    make_call,
    started,
)
from tests.helpers.properties import examples

CALL_WF = ENGINE.latest("call")
REFERRAL_WF = ENGINE.latest("referral")

NIGHT = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # Monday 22:30 GMT: FCP and ASC closed, EDT open

# The distinctive personal details of make_call's call, searched for in every outbox payload.
PII = [GIVEN, FAMILY, CALLER, "Quillfeather", NHS, "999 000 0026", DOB.isoformat(), "19/07/1931", "1931",
       POSTCODE, "LE113AB", "3AB", PHONE, "07911123456", "7911123456", "07911 123456", SUMMARY, "marmalade"]

USER_CALL_TRIGGERS = sorted({t.trigger for t in CALL_WF.transitions if not t.internal})
INTERNAL_CALL_TRIGGERS = sorted({t.trigger for t in CALL_WF.transitions if t.internal})
REFERRAL_TRIGGERS = sorted({t.trigger for t in REFERRAL_WF.transitions})
GARBAGE_TRIGGERS = ["", "nope", "log", "to_closed", "trigger", "__init__", "CLOSE", "refer ", "state"]
ALL_TRIGGERS = sorted(set(USER_CALL_TRIGGERS + INTERNAL_CALL_TRIGGERS + REFERRAL_TRIGGERS + GARBAGE_TRIGGERS))


def snapshot(call: Call) -> tuple:
    return (call.state, call.version, call.centre, call.route, call.callback_due, call.updated_at,
            call.closed_at, call.queued_at,
            [(r.id, r.state, r.version, r.outcome_reason, r.updated_at, r.closed_at) for r in call.referrals])


def call_audit(result: Result) -> list:
    return [a for a in result.audit if a.entity == "call"]


# -- starting a call -----------------------------------------------------------------------------------


def test_start_call_logs_version_1_with_audit_and_outbox():
    call = make_call()
    result = ENGINE.start_call(call, actor="handler", now=NOW)
    assert (call.state, call.version) == ("logged", 1)
    assert len(result.audit) == 1
    event = result.audit[0]
    assert (event.trigger, event.entity, event.entity_id, event.call_ref) == ("log", "call", call.ref, call.ref)
    assert (event.from_state, event.to_state, event.actor, event.at) == (None, "logged", "handler", NOW)
    assert event.data["centre"] == "CNH" and event.data["need"] == "urgent_community_health"
    assert event.data["recommended"]["service"] == "CRT"
    assert [m.topic for m in result.outbox] == ["call.logged"]
    payload = result.outbox[0].payload
    assert payload["ref"] == call.ref and payload["to"] == "logged" and payload["version"] == 1
    assert result.new_referrals == []


# -- lifecycle paths ------------------------------------------------------------------------------------


def test_triage_resolve_close():
    call = started("information_advice", "routine")
    rec = decide("information_advice", "routine")
    r1 = ENGINE.fire(call, "start_triage", actor="handler", now=NOW, expected_version=1)
    assert (call.state, call.version) == ("in_triage", 2)
    assert r1.audit[0].from_state == "logged" and r1.audit[0].to_state == "in_triage"
    assert [m.topic for m in r1.outbox] == ["call.state_changed"]

    later = NOW + timedelta(minutes=5)
    r2 = ENGINE.fire(call, "resolve", actor="handler", now=later, recommendation=rec, expected_version=2)
    assert (call.state, call.version) == ("resolved", 3)
    assert r2.audit[0].data["route"] == "resolved_at_first_contact"
    assert r2.audit[0].data["override"] is False
    assert call.route["kind"] == "resolved_at_first_contact" and call.route["overridden"] is False
    assert call.updated_at == later and call.closed_at is None

    r3 = ENGINE.fire(call, "close", actor="handler", now=later + timedelta(minutes=1))
    assert (call.state, call.version) == ("closed", 4)
    assert call.closed_at == later + timedelta(minutes=1)
    assert len(r3.audit) == 1 and r3.audit[0].trigger == "close"
    assert ENGINE.allowed(call) == []


def test_outbox_state_changed_payload():
    call = started()
    result = ENGINE.fire(call, "start_triage", actor="handler", now=NOW)
    payload = result.outbox[0].payload
    assert payload["from"] == "logged" and payload["to"] == "in_triage"
    assert payload["trigger"] == "start_triage" and payload["version"] == 2
    assert set(payload) == {"ref", "centre", "urgency", "need", "version", "from", "to", "trigger"}


def test_divert_999_from_logged():
    call = started("urgent_community_health", "emergency")
    rec = decide("urgent_community_health", "emergency")
    result = ENGINE.fire(call, "divert_999", actor="handler", now=NOW, recommendation=rec)
    assert (call.state, call.version) == ("diverted_999", 2)
    assert result.audit[0].data["override"] is False
    assert result.audit[0].data["recommended"] == "divert to 999"
    ENGINE.fire(call, "close", actor="handler", now=NOW)
    assert call.state == "closed"


def test_refer_creates_a_sent_referral():
    call = in_triage()
    rec = decide("urgent_community_health")
    result = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"},
                         recommendation=rec)
    assert (call.state, call.version) == ("referred", 3)
    assert len(call.referrals) == 1 and result.new_referrals == call.referrals
    referral = call.referrals[0]
    assert (referral.state, referral.version, referral.service) == ("sent", 1, "CRT")
    assert (referral.workflow, referral.workflow_version) == ("referral", 1)
    assert referral.sent_at == NOW and referral.sent_by == "handler"
    assert [(a.entity, a.trigger, a.to_state) for a in result.audit] == [
        ("call", "refer", "referred"), ("referral", "refer", "sent")]
    assert result.audit[1].entity_id == referral.id and result.audit[1].data == {
        "service": "CRT", "sharing": {"basis": "consent_given", "override": False, "consent": "given"}}
    assert [m.topic for m in result.outbox] == ["call.state_changed", "referral.sent"]
    sent = result.outbox[1].payload
    assert sent["referral_id"] == referral.id and sent["service"] == "CRT" and sent["to"] == "sent"
    assert result.audit[0].data["service"] == "CRT"


def test_referral_accept_start_complete_closes_the_call():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"},
                recommendation=decide("urgent_community_health"))
    referral = call.referrals[0]

    r = ENGINE.fire_referral(call, referral.id, "accept", actor="crt.lead", now=NOW, expected_version=1)
    assert (referral.state, referral.version) == ("accepted", 2)
    assert (call.state, call.version) == ("referred", 3)  # the call does not move on acceptance
    assert [(a.entity, a.trigger) for a in r.audit] == [("referral", "accept")]
    assert [m.topic for m in r.outbox] == ["referral.state_changed"]

    ENGINE.fire_referral(call, referral.id, "start", actor="crt.lead", now=NOW)
    assert (referral.state, referral.version) == ("in_progress", 3)

    done = NOW + timedelta(hours=2)
    r = ENGINE.fire_referral(call, referral.id, "complete", actor="crt.lead", now=done)
    assert (referral.state, referral.version, referral.closed_at) == ("completed", 4, done)
    assert (call.state, call.version, call.closed_at) == ("closed", 4, done)
    assert [(a.entity, a.trigger, a.from_state, a.to_state) for a in r.audit] == [
        ("referral", "complete", "in_progress", "completed"),
        ("call", "referral_completed", "referred", "closed")]
    assert r.audit[1].actor == "crt.lead"
    assert [m.topic for m in r.outbox] == ["referral.state_changed", "call.state_changed"]


def test_complete_straight_from_accepted():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    rid = call.referrals[0].id
    ENGINE.fire_referral(call, rid, "accept", actor="crt", now=NOW)
    ENGINE.fire_referral(call, rid, "complete", actor="crt", now=NOW)
    assert call.state == "closed"


def test_decline_needs_reason_then_call_returns_to_triage_and_can_be_re_referred():
    call = in_triage()
    rec = decide("urgent_community_health")
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"}, recommendation=rec)
    first = call.referrals[0]
    before = snapshot(call)
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire_referral(call, first.id, "decline", actor="crt", now=NOW, reason="   ")
    assert set(exc.value.errors) == {"reason"}
    assert snapshot(call) == before

    r = ENGINE.fire_referral(call, first.id, "decline", actor="crt", now=NOW, reason="No capacity today")
    assert (first.state, first.outcome_reason) == ("declined", "No capacity today")
    assert (call.state, call.version) == ("in_triage", 4)
    assert r.audit[1].trigger == "referral_declined" and r.audit[1].reason == "No capacity today"

    # Re-route: the recommendation is still CRT, so another service needs a reason.
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"}, recommendation=rec)
    assert set(exc.value.errors) == {"reason"}
    r = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"}, recommendation=rec,
                    reason="CRT declined; district nurse can visit")
    assert call.state == "referred" and len(call.referrals) == 2
    second = call.referrals[1]
    assert second.id != first.id and (second.state, second.service) == ("sent", "DN")
    assert r.audit[0].data["override"] is True
    assert first.state == "declined"  # the first stays as it was


def test_decline_from_accepted():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    rid = call.referrals[0].id
    ENGINE.fire_referral(call, rid, "accept", actor="crt", now=NOW)
    ENGINE.fire_referral(call, rid, "decline", actor="crt", now=NOW, reason="Out of our area after all")
    assert call.state == "in_triage"


def test_withdraw():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    referral = call.referrals[0]
    ENGINE.fire_referral(call, referral.id, "accept", actor="crt", now=NOW)
    ENGINE.fire_referral(call, referral.id, "start", actor="crt", now=NOW)
    with pytest.raises(GuardFailed):
        ENGINE.fire_referral(call, referral.id, "withdraw", actor="handler", now=NOW)
    r = ENGINE.fire_referral(call, referral.id, "withdraw", actor="handler", now=NOW,
                             reason="Patient admitted to hospital")
    assert (referral.state, referral.outcome_reason) == ("withdrawn", "Patient admitted to hospital")
    assert referral.closed_at == NOW
    assert call.state == "in_triage"
    assert r.audit[-1].trigger == "referral_withdrawn"


def test_final_referral_refuses_everything():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    rid = call.referrals[0].id
    ENGINE.fire_referral(call, rid, "withdraw", actor="handler", now=NOW, reason="duplicate")
    for trigger in REFERRAL_TRIGGERS:
        with pytest.raises(TriggerNotAllowed) as exc:
            ENGINE.fire_referral(call, rid, trigger, actor="crt", now=NOW, reason="x")
        assert exc.value.allowed == []


def test_unknown_referral_id():
    call = in_triage()
    with pytest.raises(KeyError):
        ENGINE.fire_referral(call, "nope", "accept", actor="crt", now=NOW)


def test_referral_version_conflict_changes_nothing():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    rid = call.referrals[0].id
    before = snapshot(call)
    with pytest.raises(VersionConflict) as exc:
        ENGINE.fire_referral(call, rid, "accept", actor="crt", now=NOW, expected_version=7)
    assert (exc.value.expected, exc.value.actual) == (7, 1)
    assert snapshot(call) == before


def test_tier3_review_then_refer_without_override_reason():
    call = in_triage("other", "urgent")
    rec = decide("other", "urgent")
    assert rec.tier == 3
    r = ENGINE.fire(call, "tier3_review", actor="handler", now=NOW, recommendation=rec)
    assert call.state == "in_tier3_review" and r.audit[0].data["override"] is False
    # The professional decides: no reason needed although tier 3 recommended no service.
    r = ENGINE.fire(call, "refer", actor="clinician", now=NOW, data={"service": "DN"}, recommendation=rec)
    assert call.state == "referred"
    assert r.audit[0].data["override"] is False
    assert call.route["overridden"] is False and call.route["override_reason"] is None


def test_resolve_and_divert_from_tier3_review_need_no_reason():
    for trigger, state in (("resolve", "resolved"), ("divert_999", "diverted_999")):
        call = in_triage("other")
        rec = decide("other")
        ENGINE.fire(call, "tier3_review", actor="handler", now=NOW, recommendation=rec)
        ENGINE.fire(call, trigger, actor="clinician", now=NOW, recommendation=rec)
        assert call.state == state


def test_tier3_review_against_a_service_recommendation_needs_reason():
    call = in_triage()
    rec = decide("urgent_community_health")
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "tier3_review", actor="handler", now=NOW, recommendation=rec)
    assert "refer to CRT" in exc.value.errors["reason"]
    ENGINE.fire(call, "tier3_review", actor="handler", now=NOW, recommendation=rec, reason="Complex history")
    assert call.state == "in_tier3_review"


# -- transfer ---------------------------------------------------------------------------------------------


def test_transfer_to_another_open_centre():
    call = in_triage()
    later = NOW + timedelta(minutes=3)
    r = ENGINE.fire(call, "transfer", actor="handler", now=later, data={"centre": "ASC"},
                    reason="Social care need, not health")
    assert (call.state, call.centre, call.origin_centre, call.queued_at) == ("transferred", "ASC", "CNH", later)
    assert r.audit[0].data == {"centre": "ASC"} and r.audit[0].reason == "Social care need, not health"
    assert r.outbox[0].payload["centre"] == "ASC"
    ENGINE.fire(call, "start_triage", actor="asc.handler", now=later)
    assert call.state == "in_triage"


@pytest.mark.parametrize("centre, at, expected", [
    ("CNH", NOW, "already in this centre"),
    ("XYZ", NOW, "Select a centre from the list"),
    ("FCP", NIGHT, "closed now"),
    ("ASC", NIGHT, "closed now"),
    (None, NOW, "Select the centre to transfer to"),
    ("", NOW, "Select the centre to transfer to"),
])
def test_transfer_refused(centre, at, expected):
    call = started()
    before = snapshot(call)
    data = {} if centre is None else {"centre": centre}
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "transfer", actor="handler", now=at, data=data, reason="Wrong centre")
    assert set(exc.value.errors) == {"data.centre"}
    assert expected in exc.value.errors["data.centre"]
    assert snapshot(call) == before


def test_transfer_to_complement_centre_at_night():
    call = started()
    ENGINE.fire(call, "transfer", actor="handler", now=NIGHT, data={"centre": "EDT"}, reason="Out of hours")
    assert call.centre == "EDT"


def test_transfer_needs_reason():
    call = started()
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "transfer", actor="handler", now=NOW, data={"centre": "ASC"})
    assert set(exc.value.errors) == {"reason"}


# -- callbacks and cancel ----------------------------------------------------------------------------------


def test_promise_callback_and_call_back():
    call = in_triage()
    due = NOW + timedelta(hours=2)
    r = ENGINE.fire(call, "promise_callback", actor="handler", now=NOW,
                    data={"callback_at": "2026-11-23T12:00:00+00:00"})
    assert call.state == "awaiting_callback" and call.callback_due == due
    assert call.callback_due.tzinfo is not None
    assert r.audit[0].data == {"callback_at": "2026-11-23T12:00:00+00:00"}
    ENGINE.fire(call, "call_back", actor="handler", now=due)
    assert (call.state, call.callback_due) == ("in_triage", None)


def test_promise_callback_accepts_an_aware_datetime_and_other_offsets():
    call = started()
    ENGINE.fire(call, "promise_callback", actor="handler", now=NOW,
                data={"callback_at": "2026-11-23T13:30:00+01:00"})
    assert call.callback_due == datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
    call = started()
    ENGINE.fire(call, "promise_callback", actor="handler", now=NOW,
                data={"callback_at": NOW + timedelta(minutes=1)})
    assert call.callback_due == NOW + timedelta(minutes=1)
    call = started()
    ENGINE.fire(call, "promise_callback", actor="handler", now=NOW, data={"callback_at": "2026-11-23T12:00:00Z"})
    assert call.callback_due == NOW + timedelta(hours=2)


@pytest.mark.parametrize("value, expected", [
    (None, "Enter the date and time to call back"),
    ("2026-11-23T12:00:00", "ISO 8601"),  # naive
    ("tomorrow at noon", "ISO 8601"),
    (datetime(2026, 11, 23, 12, 0), "ISO 8601"),  # naive datetime
    (1763900000, "ISO 8601"),
    ("2026-11-23T10:00:00+00:00", "future"),  # exactly now
    ("2026-11-23T09:59:00+00:00", "future"),
    ("0001-01-01T00:00:00+01:00", ""),  # out of range once converted to UTC
    ("9999-12-31T23:59:59-01:00", ""),
])
def test_promise_callback_refused(value, expected):
    call = started()
    before = snapshot(call)
    data = {} if value is None else {"callback_at": value}
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "promise_callback", actor="handler", now=NOW, data=data)
    assert set(exc.value.errors) == {"data.callback_at"}
    assert expected in exc.value.errors["data.callback_at"]
    assert snapshot(call) == before


def test_cancel_needs_reason_and_clears_callback():
    call = started()
    ENGINE.fire(call, "promise_callback", actor="handler", now=NOW, data={"callback_at": "2026-11-24T09:00:00Z"})
    for reason in (None, "", "  \t"):
        with pytest.raises(GuardFailed) as exc:
            ENGINE.fire(call, "cancel", actor="handler", now=NOW, reason=reason)
        assert exc.value.errors == {"reason": "Enter a reason"}
    assert call.state == "awaiting_callback"
    r = ENGINE.fire(call, "cancel", actor="handler", now=NOW, reason="Caller rang back: resolved")
    assert (call.state, call.callback_due, call.closed_at) == ("cancelled", None, NOW)
    assert r.audit[0].reason == "Caller rang back: resolved"
    assert ENGINE.allowed(call) == []


# -- refusals -------------------------------------------------------------------------------------------


def test_internal_triggers_refused_unless_allowed():
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    before = snapshot(call)
    for trigger in INTERNAL_CALL_TRIGGERS:
        with pytest.raises(TriggerNotAllowed) as exc:
            ENGINE.fire(call, trigger, actor="handler", now=NOW)
        assert exc.value.allowed == []
        assert snapshot(call) == before
    ENGINE.fire(call, "referral_withdrawn", actor="system", now=NOW, allow_internal=True)
    assert call.state == "in_triage"


def test_trigger_not_allowed_lists_allowed_and_changes_nothing():
    call = started()
    before = snapshot(call)
    with pytest.raises(TriggerNotAllowed) as exc:
        ENGINE.fire(call, "close", actor="handler", now=NOW)
    assert exc.value.trigger == "close" and exc.value.state == "logged"
    assert exc.value.allowed == ["start_triage", "divert_999", "transfer", "promise_callback", "cancel"]
    assert "start_triage, divert_999" in str(exc.value)
    assert snapshot(call) == before
    with pytest.raises(TriggerNotAllowed):
        ENGINE.fire(call, "no_such_trigger", actor="handler", now=NOW)
    assert snapshot(call) == before


def test_allowed_hides_internal_triggers():
    call = started()
    assert [t.trigger for t in ENGINE.allowed(call)] == [
        "start_triage", "divert_999", "transfer", "promise_callback", "cancel"]
    call = in_triage()
    ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"})
    assert ENGINE.allowed(call) == []
    assert [t.trigger for t in ENGINE.allowed(call.referrals[0])] == ["accept", "decline", "withdraw"]


def test_guard_failed_collects_every_failing_field():
    call = started()
    before = snapshot(call)
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "transfer", actor="handler", now=NOW)
    assert set(exc.value.errors) == {"data.centre", "reason"}
    assert snapshot(call) == before

    call = in_triage()
    before = snapshot(call)
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "refer", actor="handler", now=NOW, recommendation=decide("urgent_community_health"))
    assert set(exc.value.errors) == {"data.service", "reason"}
    assert exc.value.trigger == "refer"
    assert snapshot(call) == before and call.referrals == []


def test_refer_to_unknown_service():
    call = in_triage("other")
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "NOPE"})
    assert exc.value.errors == {"data.service": "Select a service from the list"}


@pytest.mark.parametrize("bad", [["CRT"], {"code": "CRT"}, 5, True])
def test_non_text_service_or_centre_is_a_field_error(bad):
    """Data comes straight from API clients: a list or number must be refused, not crash the guard."""
    call = in_triage("other")
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": bad})
    assert set(exc.value.errors) == {"data.service"}
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "transfer", actor="handler", now=NOW, data={"centre": bad}, reason="r")
    assert set(exc.value.errors) == {"data.centre"}
    assert call.state == "in_triage" and call.centre == "CNH"


def test_version_conflict_changes_nothing():
    call = started()
    before = snapshot(call)
    with pytest.raises(VersionConflict) as exc:
        ENGINE.fire(call, "start_triage", actor="handler", now=NOW, expected_version=2)
    assert (exc.value.expected, exc.value.actual) == (2, 1)
    assert snapshot(call) == before
    # Checked before anything else: even a trigger that would be refused reports the conflict.
    with pytest.raises(VersionConflict):
        ENGINE.fire(call, "close", actor="handler", now=NOW, expected_version=9)
    ENGINE.fire(call, "start_triage", actor="handler", now=NOW, expected_version=1)
    assert call.version == 2


# -- route override --------------------------------------------------------------------------------------


def test_route_override_needs_reason_and_is_audited():
    call = in_triage()
    rec = decide("urgent_community_health")
    before = snapshot(call)
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "resolve", actor="handler", now=NOW, recommendation=rec)
    assert set(exc.value.errors) == {"reason"}
    assert "refer to CRT" in exc.value.errors["reason"]
    assert snapshot(call) == before

    r = ENGINE.fire(call, "resolve", actor="handler", now=NOW, recommendation=rec,
                    reason="Caller's daughter now with her; advice given")
    data = r.audit[0].data
    assert data["override"] is True and data["recommended"] == "refer to CRT" and data["rule"] == "5"
    assert data["route"] == "resolved_at_first_contact"
    assert r.audit[0].reason == "Caller's daughter now with her; advice given"
    assert call.route["overridden"] is True
    assert call.route["override_reason"] == "Caller's daughter now with her; advice given"
    assert call.route["recommended"] == "refer to CRT" and call.route["decided_by"] == "handler"


def test_override_to_a_different_service():
    call = in_triage()
    rec = decide("urgent_community_health")
    r = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"}, recommendation=rec,
                    reason="Known to district nurses")
    assert r.audit[0].data["override"] is True and call.route["service"] == "DN"


def test_accepting_the_recommendation_is_not_an_override():
    call = in_triage()
    rec = decide("urgent_community_health")
    r = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "CRT"}, recommendation=rec)
    data = r.audit[0].data
    assert data["override"] is False and data["recommended"] == "refer to CRT"
    assert call.route["overridden"] is False and call.route["override_reason"] is None
    assert call.route["rule_reason"] == rec.reason


def test_divert_against_recommendation_needs_reason():
    call = started()
    rec = decide("urgent_community_health")
    with pytest.raises(GuardFailed) as exc:
        ENGINE.fire(call, "divert_999", actor="handler", now=NOW, recommendation=rec)
    assert set(exc.value.errors) == {"reason"}


def test_supervisor_alert_on_a_routed_safeguarding_call():
    call = in_triage("safeguarding_concern")
    rec = decide("safeguarding_concern")
    assert rec.service == "SG" and rec.alert_supervisor
    r = ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "SG"}, recommendation=rec)
    assert [m.topic for m in r.outbox] == ["call.state_changed", "referral.sent", "alert.supervisor"]
    assert r.outbox[2].payload["why"] == rec.reason


def test_no_recommendation_means_no_override_check():
    call = in_triage()
    r = ENGINE.fire(call, "resolve", actor="handler", now=NOW)
    assert r.audit[0].data["override"] is False and r.audit[0].data["recommended"] is None


# -- no patient identifiers in the outbox --------------------------------------------------------------


def _outbox_dump(results: list[Result]) -> str:
    # Random ids (32 hex digits) are blanked: "3ab" inside one is not a postcode's inward code.
    dump = json.dumps([m.payload for r in results for m in r.outbox], default=str)
    return re.sub(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", "<id>", dump)


def test_outbox_never_carries_patient_identifiers():
    results: list[Result] = []
    # Safeguarding (supervisor alert), transfer, callback, referral declined, re-referral, completion.
    call = make_call("safeguarding_concern")
    results.append(ENGINE.start_call(call, actor="handler", now=NOW))
    results.append(ENGINE.fire(call, "promise_callback", actor="handler", now=NOW,
                               data={"callback_at": "2026-11-23T11:00:00Z"}, reason=SUMMARY))
    results.append(ENGINE.fire(call, "call_back", actor="handler", now=NOW))
    results.append(ENGINE.fire(call, "transfer", actor="handler", now=NOW, data={"centre": "ASC"},
                               reason=f"{GIVEN} {FAMILY} lives in {POSTCODE}"))
    results.append(ENGINE.fire(call, "start_triage", actor="handler", now=NOW))
    rec = decide("safeguarding_concern")
    results.append(ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "SG"},
                               recommendation=rec))
    results.append(ENGINE.fire_referral(call, call.referrals[0].id, "decline", actor="sg", now=NOW,
                                        reason=f"NHS {NHS}, born {DOB}"))
    results.append(ENGINE.fire(call, "refer", actor="handler", now=NOW, data={"service": "EDT"},
                               recommendation=rec, reason=f"phone {PHONE}"))
    rid = call.referrals[1].id
    for trigger in ("accept", "start", "complete"):
        results.append(ENGINE.fire_referral(call, rid, trigger, actor="edt", now=NOW))
    assert call.state == "closed"
    topics = {m.topic for r in results for m in r.outbox}
    assert topics >= {"call.logged", "call.state_changed", "referral.sent", "referral.state_changed",
                      "alert.supervisor"}
    dump = _outbox_dump(results)
    for value in PII:
        assert value.lower() not in dump.lower(), value
    # Out of area and divert paths too.
    other = make_call("urgent_community_health", "emergency", ref="MN4P-XY7Z")
    more = [ENGINE.start_call(other, actor="handler", now=NOW),
            ENGINE.fire(other, "divert_999", actor="handler", now=NOW,
                        recommendation=decide("urgent_community_health", "emergency"))]
    dump = _outbox_dump(more)
    for value in PII:
        assert value.lower() not in dump.lower(), value


# -- workflow versions -----------------------------------------------------------------------------------


def _call_v2():
    raw = yaml.safe_load((WORKFLOWS / "call.workflow.yaml").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["version"] = 2
    raw["states"].append({"name": "on_hold", "label": "On hold", "waiting": True})
    raw["transitions"] += [
        {"trigger": "hold", "source": ["in_triage"], "dest": "on_hold"},
        {"trigger": "resume", "source": ["on_hold"], "dest": "in_triage"},
    ]
    return parse_workflow(raw, "call v2 (test)")


def test_call_pinned_to_v1_keeps_v1_and_new_calls_get_v2():
    engine = Engine(load_workflow_files(WORKFLOWS) + [_call_v2()], DIRECTORY)
    assert engine.latest("call").version == 2
    assert engine.has("call", 1) and engine.has("call", 2)

    old = make_call(version=1)
    engine.start_call(old, actor="handler", now=NOW)
    engine.fire(old, "start_triage", actor="handler", now=NOW)
    assert "hold" not in [t.trigger for t in engine.allowed(old)]
    with pytest.raises(TriggerNotAllowed):
        engine.fire(old, "hold", actor="handler", now=NOW)
    assert (old.state, old.workflow_version) == ("in_triage", 1)

    new = make_call(version=engine.latest("call").version, ref="NEWC-ALL2")
    engine.start_call(new, actor="handler", now=NOW)
    engine.fire(new, "start_triage", actor="handler", now=NOW)
    assert "hold" in [t.trigger for t in engine.allowed(new)]
    engine.fire(new, "hold", actor="handler", now=NOW)
    assert (new.state, new.version, new.workflow_version) == ("on_hold", 3, 2)
    engine.fire(new, "resume", actor="handler", now=NOW)

    # Referral cascades reach each call on its own version.
    for call in (old, new):
        engine.fire(call, "refer", actor="handler", now=NOW, data={"service": "DN"})
        rid = call.referrals[0].id
        engine.fire_referral(call, rid, "accept", actor="dn", now=NOW)
        engine.fire_referral(call, rid, "complete", actor="dn", now=NOW)
        assert call.state == "closed"
    assert old.workflow_version == 1 and new.workflow_version == 2


# -- properties over random trigger sequences ------------------------------------------------------------

FUTURE = "<an instant an hour after the step>"
# Valid values about half the time, so that sequences get far (referrals, cascades, closure); the rest
# are the kinds of rubbish an API client can send.
_DATA_VALUES = {
    "service": st.one_of(st.sampled_from(["DN", "CRT", "SG", "MHCR", "EDT"]),
                         st.sampled_from(["NOPE", "", None, 5, ["CRT"], {"c": "DN"}])),
    "centre": st.one_of(st.sampled_from(["ASC", "EDT", "CHS", "MHA", "CNH"]),
                        st.sampled_from(["XYZ", "FCP", "", None, 3, ["ASC"], {"c": "ASC"}])),
    "callback_at": st.one_of(
        st.just(FUTURE),
        st.sampled_from(["2026-11-23T12:00:00+00:00", "2026-11-23T09:00:00Z", "2026-11-23T12:00:00",
                         "not a time", "", None, 17, "0001-01-01T00:00:00+01:00",
                         "9999-12-31T23:59:59-01:00"]),
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
        st.datetimes()),
    "referral_id": st.text(max_size=5),
}
_data = st.fixed_dictionaries({}, optional=_DATA_VALUES)
_reason = st.one_of(st.none(), st.sampled_from(["", "   ", "Because", "Caller asked"]), st.text(max_size=20))
_recommendation = st.sampled_from([
    None,
    decide("urgent_community_health"),
    decide("information_advice"),
    decide("other"),
    decide("safeguarding_concern"),
    decide("community_nursing", "routine"),
    decide("mental_health", "emergency"),
])
_good_data = st.fixed_dictionaries({
    "service": st.sampled_from(["DN", "CRT", "SG", "MHCR", "EDT"]),
    "centre": st.sampled_from(["ASC", "EDT", "CHS", "MHA"]),
    "callback_at": st.just(FUTURE),
})
_DEEPER = {"start_triage", "refer", "call_back", "accept", "start", "complete", "decline", "withdraw"}
_slip = st.sampled_from([None, None, None, None, 0, 1, -1])

CALL_STATES = set(CALL_WF.states)
REFERRAL_STATES = set(REFERRAL_WF.states)
REFUSALS = (TriggerNotAllowed, GuardFailed, VersionConflict)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draw=st.data(), need=st.sampled_from(sorted(ROUTING.needs)),
       urgency=st.sampled_from(["emergency", "urgent", "same_day", "routine"]))
def test_random_trigger_sequences_keep_the_invariants(draw, need, urgency):
    """Each step picks the call or one of its referrals, then a trigger: usually one the entity allows
    now (so sequences get far: referrals, cascades, closure), otherwise any name at all (user, internal,
    the other workflow's, garbage). Data, reason, recommendation and expected version are random."""
    call = make_call(need, urgency)
    audit = list(ENGINE.start_call(call, actor="handler", now=NOW).audit)
    call_transitions = 0
    now = NOW
    for _ in range(draw.draw(st.integers(min_value=0, max_value=40), label="steps")):
        now = now + timedelta(minutes=draw.draw(st.integers(min_value=0, max_value=12 * 60)))
        referral = None
        if call.referrals and draw.draw(st.booleans()):
            referral = draw.draw(st.sampled_from(call.referrals))
        entity = referral or call
        allowed = [t.trigger for t in ENGINE.allowed(entity)]
        if allowed and draw.draw(st.integers(min_value=0, max_value=3)):
            # Weighted towards the triggers that lead deeper (referrals and their cascades).
            weighted = allowed + [t for t in allowed if t in _DEEPER] * 3
            trigger = draw.draw(st.sampled_from(weighted), label="allowed trigger")
        else:
            trigger = draw.draw(st.sampled_from(ALL_TRIGGERS), label="any trigger")
        data = {k: ((now + timedelta(hours=1)).isoformat() if v == FUTURE else v)
                for k, v in draw.draw(st.one_of(_good_data, _data)).items()}
        reason = draw.draw(st.one_of(st.just("Because"), _reason))
        slip = draw.draw(_slip)

        before = snapshot(call)
        version = call.version
        referral_versions = {r.id: r.version for r in call.referrals}
        n_referrals = len(call.referrals)
        try:
            if referral is None:
                result = ENGINE.fire(call, trigger, actor="handler", now=now, data=data, reason=reason,
                                     expected_version=None if slip is None else call.version + slip,
                                     recommendation=draw.draw(_recommendation))
                moved = 1
            else:
                t = REFERRAL_WF.transition(trigger, referral.state)
                result = ENGINE.fire_referral(call, referral.id, trigger, actor="pro", now=now, data=data,
                                              reason=reason,
                                              expected_version=None if slip is None else referral.version + slip)
                moved = 1 if t is not None and t.parent_trigger else 0
        except REFUSALS:
            # A refused trigger changes nothing at all.
            assert snapshot(call) == before
            continue
        assert slip in (None, 0)
        assert trigger not in INTERNAL_CALL_TRIGGERS
        call_transitions += moved
        audit += result.audit
        # Exactly one version step per call transition (cascades included), none otherwise.
        assert call.version == version + moved
        assert len([a for a in result.audit if a.entity == "call"]) == moved
        for r in call.referrals:
            if r.id in referral_versions:
                assert r.version == referral_versions[r.id] + (1 if r is referral else 0)
            else:
                assert (r.version, r.state) == (1, REFERRAL_WF.initial)
        assert len(call.referrals) == n_referrals + len(result.new_referrals)
        assert len(result.new_referrals) == (1 if referral is None and trigger == "refer" else 0)
        assert call.state in CALL_STATES
        assert all(r.state in REFERRAL_STATES for r in call.referrals)

    # Invariants after the whole sequence.
    assert call.state in CALL_STATES
    assert all(r.state in REFERRAL_STATES for r in call.referrals)
    assert call.version == 1 + call_transitions
    assert len([a for a in audit if a.entity == "call"]) == call_transitions + 1
    assert len([a for a in audit if a.entity == "referral"]) == sum(r.version for r in call.referrals)
    open_referrals = [r for r in call.referrals if r.state not in REFERRAL_WF.final_states]
    assert len(open_referrals) == (1 if call.state == "referred" else 0)
    if call.state in CALL_WF.final_states:
        assert ENGINE.allowed(call) == []
        assert call.closed_at is not None
        for trigger in ALL_TRIGGERS:
            with pytest.raises(TriggerNotAllowed):
                ENGINE.fire(call, trigger, actor="handler", now=now, data={"service": "DN", "centre": "ASC"},
                            reason="try anyway")


@settings(max_examples=examples(200), deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(ALL_TRIGGERS), _reason), max_size=25))
def test_state_is_always_defined_and_final_states_refuse_user_triggers(steps):
    """A simpler walk that favours progress: plausible data for every trigger."""
    call = make_call("other", "urgent")
    ENGINE.start_call(call, actor="handler", now=NOW)
    data = {"service": "DN", "centre": "ASC", "callback_at": "2026-11-24T09:00:00Z"}
    for trigger, reason in steps:
        was_final = call.state in CALL_WF.final_states
        version = call.version
        try:
            if trigger in REFERRAL_TRIGGERS and call.referrals:
                ENGINE.fire_referral(call, call.referrals[-1].id, trigger, actor="pro", now=NOW, reason=reason)
            else:
                ENGINE.fire(call, trigger, actor="handler", now=NOW, data=data, reason=reason)
        except TriggerNotAllowed:
            assert call.version == version
        except GuardFailed as exc:
            assert call.version == version and exc.errors
        else:
            assert not was_final, trigger
        assert call.state in CALL_STATES
        assert all(r.state in REFERRAL_STATES for r in call.referrals)
        if was_final:
            assert call.version == version
