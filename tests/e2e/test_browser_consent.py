"""Consent to share in a real browser: a refusal is respected until the handler records a lawful basis,
and the receiving professional sees why the details reached them (fixtures in conftest.py)."""
from __future__ import annotations

import pytest

from ipoa.service import calls as call_service
from ipoa.service.professionals import link_user
from tests.conftest import PASSWORD, call_payload
from tests.helpers.rota import add_on_duty

pytestmark = pytest.mark.browser

REASON = "Carer reports unexplained bruising; she is frightened of her son"


def sign_in_as(page, live_server: str, username: str, then: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server}{then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}{then}")


def test_a_refusal_stops_the_referral_until_a_lawful_basis_is_given(live_server, page, users, svc):
    from playwright.sync_api import expect

    setup = call_service.Actor(username="handler", role="handler", centre="CNH")
    ref = call_service.log_call(svc, setup, call_payload(consent="refused"), allow_duplicate=True).ref
    call_service.fire_call_trigger(svc, setup, ref, {"trigger": "start_triage", "expected_version": 1})
    add_on_duty(svc, name="Carl", service="CRT", mobile="07700 900202")
    link_user(svc, "07700 900202", users["professional"].id)

    sign_in_as(page, live_server, "handler", f"/calls/{ref}")
    expect(page.locator("#consent-status")).to_contain_text("Consent refused")
    expect(page.locator("#consent-notice")).to_contain_text("their refusal is respected")

    # CRT is the community trust's; the hub belongs to the urgent care provider: refused without a basis.
    page.get_by_role("button", name="Accept: refer to CRT").click()
    page.wait_for_load_state()
    accept = page.locator("form", has=page.get_by_role("button", name="Accept: refer to CRT"))
    error = accept.locator("#accept-consent-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Clinical Response Team is run by Community NHS trust")
    expect(page.locator("#call-state")).to_have_text("in triage")
    basis = accept.get_by_label("Lawful basis")
    expect(basis).to_have_attribute("aria-invalid", "true")

    # From the keyboard: the basis, the reason, then the same button.
    basis.focus()
    basis.select_option("safeguarding")
    accept.get_by_label("Reason for sharing without consent").fill(REASON)
    accept.get_by_role("button", name="Accept: refer to CRT").focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#call-state")).to_have_text("referred")
    expect(page.locator(".referral-state").first).to_have_text("sent")
    call = call_service.get_call(svc, ref)[0]
    (referral,) = call.referrals
    assert (referral.service, referral.sharing_basis, referral.sharing_reason) == ("CRT", "safeguarding", REASON)

    sign_in_as(page, live_server, "professional", f"/my/referrals/{referral.id}")
    expect(page.locator("#consent-status")).to_contain_text("Consent refused")
    expect(page.locator("#sharing-basis")).to_contain_text("Safeguarding: Care Act 2014 section 42 duty")
    expect(page.locator("#sharing-basis")).to_contain_text(REASON)
