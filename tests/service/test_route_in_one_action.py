"""Accepting the recommended route (or choosing another) from a call nobody has started to triage, in one
action: the workflow's plain step (start_triage) and the route, one transaction, both audited
(service/calls.fire_call_trigger(step_first=True), domain/workflow.WorkflowDefinition.step_before_route)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from ipoa.domain.errors import TriggerNotAllowed, VersionConflict
from ipoa.service import calls as call_service
from tests.helpers import call_payload
from tests.helpers.scenarios import HANDLER, summary


def refer(svc, ref: str, version: int, service: str = "CRT", **extra):
    return call_service.fire_call_trigger(svc, HANDLER, ref, {
        "trigger": "refer", "expected_version": version, "data": {"service": service, **extra.pop("data", {})},
        **extra}, step_first=True)


def test_the_recommendation_is_accepted_from_a_logged_call_in_one_action_with_both_steps_audited(svc, db):
    call = call_service.log_call(svc, HANDLER, call_payload())
    assert call.recommended["service"] == "CRT"
    commits = svc.uow().commits
    refer(svc, call.ref, 1)
    assert svc.uow().commits == commits + 1  # one transaction
    after = summary(svc, call.ref)
    assert (after["state"], after["version"], after["referrals"]) == ("referred", 3, [("CRT", "sent", 1, None)])
    assert after["history"][1:] == [
        ("call", "start_triage", "logged", "in_triage", "handler", None),
        ("call", "refer", "in_triage", "referred", "handler", None),
        ("referral", "refer", None, "sent", "handler", None)]
    assert [(t.kind, t.stopped_at is None) for t in db.timers] == [("triage", False), ("acceptance", True)]


def test_the_version_is_checked_before_the_step(svc, db):
    call = call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(VersionConflict):
        refer(svc, call.ref, 2)
    assert summary(svc, call.ref)["state"] == "logged" and len(db.audit) == 1


def test_a_call_already_in_triage_takes_the_route_alone(svc):
    call = call_service.log_call(svc, HANDLER, call_payload())
    call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "start_triage", "expected_version": 1})
    refer(svc, call.ref, 2)
    assert [h[1] for h in summary(svc, call.ref)["history"]] == ["log", "start_triage", "refer", "refer"]


def test_no_step_with_an_effect_is_taken_on_the_handlers_behalf(svc):
    """A promised callback is cleared by 'Call back now' only: routing from awaiting_callback is refused."""
    call = call_service.log_call(svc, HANDLER, call_payload())
    call_service.fire_call_trigger(svc, HANDLER, call.ref, {
        "trigger": "promise_callback", "expected_version": 1,
        "data": {"callback_at": (svc.clock.now() + timedelta(hours=1)).isoformat()}})
    assert summary(svc, call.ref)["state"] == "awaiting_callback"
    with pytest.raises(TriggerNotAllowed):
        refer(svc, call.ref, 2)


def test_without_step_first_a_logged_call_cannot_be_referred(svc):
    call = call_service.log_call(svc, HANDLER, call_payload())
    with pytest.raises(TriggerNotAllowed):
        call_service.fire_call_trigger(svc, HANDLER, call.ref, {
            "trigger": "refer", "expected_version": 1, "data": {"service": "CRT"}})


def test_the_page_offers_the_routes_after_the_step_and_names_it(svc):
    call = call_service.log_call(svc, HANDLER, call_payload())
    routes, step = call_service.route_actions(svc, call)
    assert step == "start_triage"
    assert {t.trigger for t in routes} == {"divert_999", "resolve", "refer", "tier3_review"}
    call = call_service.fire_call_trigger(svc, HANDLER, call.ref, {"trigger": "start_triage", "expected_version": 1})
    routes, step = call_service.route_actions(svc, call)
    assert step is None and {t.trigger for t in routes} == {"divert_999", "resolve", "refer", "tier3_review"}
