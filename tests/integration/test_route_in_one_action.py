"""A route taken from a logged call with its plain step first (service/calls.fire_call_trigger(step_first=
True)) on the real database: a refused route leaves no trace of the step either (one transaction)."""
from __future__ import annotations

import pytest

from ipoa.domain.errors import GuardFailed
from ipoa.service import calls as call_service
from tests.helpers.api import row_counts
from tests.helpers.web import actor_for, load, logged


def test_a_refused_route_takes_the_step_back_too(svc):
    ref = logged(svc)
    before = row_counts(svc)
    with pytest.raises(GuardFailed) as refused:  # another route than the recommendation needs a reason
        call_service.fire_call_trigger(svc, actor_for(), ref, {
            "trigger": "refer", "expected_version": 1, "data": {"service": "DN"}}, step_first=True)
    assert "reason" in refused.value.errors
    assert row_counts(svc) == before
    call = load(svc, ref)
    assert (call.state, call.version) == ("logged", 1)


def test_both_steps_are_stored_with_the_referral(svc):
    ref = logged(svc)
    call_service.fire_call_trigger(svc, actor_for(), ref, {
        "trigger": "refer", "expected_version": 1, "data": {"service": "CRT"}}, step_first=True)
    call, history = call_service.get_call(svc, ref)
    assert (call.state, call.version, [r.service for r in call.referrals]) == ("referred", 3, ["CRT"])
    assert [(e.entity, e.trigger, e.from_state, e.to_state) for e in history][1:] == [
        ("call", "start_triage", "logged", "in_triage"), ("call", "refer", "in_triage", "referred"),
        ("referral", "refer", None, "sent")]
