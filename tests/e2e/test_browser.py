"""Users' journeys in a real browser: Playwright driving Debian's chromium (fixtures in conftest.py)."""
from __future__ import annotations

import pytest

from ipoa.service import calls as call_service

pytestmark = pytest.mark.browser


def test_a_handler_signs_in_logs_a_call_and_routes_it(live_server, page, users, svc):
    page.goto(f"{live_server}/queue")
    assert page.url.startswith(f"{live_server}/login")
    page.get_by_label("Username").fill("handler")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/queue")

    # Log a call from the keyboard-reachable form.
    page.get_by_role("link", name="Log a call").first.click()
    page.get_by_label("Need").select_option("urgent_community_health")
    page.get_by_label("Urgency").select_option("urgent")
    page.get_by_label("Summary").fill("Fell at home, no injury, cannot get up.")
    page.get_by_label("NHS number").fill("999 000 0026")
    page.get_by_label("Given name").fill("Edith")
    page.get_by_label("Family name").fill("Browsertest")
    # The NHS.UK date input: day, month and year fields, never the browser's locale-dependent picker.
    page.locator("#date_of_birth-day").fill("2")
    page.locator("#date_of_birth-month").fill("4")
    page.locator("#date_of_birth-year").fill("1938")
    page.get_by_label("Postcode").fill("le11 3ab")
    page.get_by_label("Consent to share").select_option("given")
    page.get_by_label("Caller is").select_option("carer")
    page.get_by_label("Caller's phone").fill("07911 123456")
    page.get_by_label("Caller's phone").press("Enter")  # submit from the keyboard
    page.wait_for_url(f"{live_server}/calls/*")
    ref = page.url.rsplit("/", 1)[1]
    assert page.locator("#call-state").inner_text() == "logged"

    page.get_by_role("button", name="Start triage").click()
    page.wait_for_load_state()
    assert page.locator("#call-state").inner_text() == "in triage"
    recommendation = page.locator("#recommendation")
    assert "Recommended: refer to CRT" in recommendation.inner_text()
    assert "Row 5" in recommendation.locator("#why-route").text_content()  # folded under "Why this route?"

    page.get_by_role("button", name="Accept: refer to CRT").click()
    page.wait_for_load_state()
    assert page.locator("#call-state").inner_text() == "referred"
    assert page.locator(".referral-state").first.inner_text() == "sent"

    call, history = call_service.get_call(svc, ref)
    assert (call.state, call.postcode, call.nhs_number) == ("referred", "LE11 3AB", "9990000026")
    assert [r.service for r in call.referrals] == ["CRT"]
    assert [e.trigger for e in history if e.entity == "call"] == ["log", "start_triage", "refer"]


def test_the_supervisor_dashboard_updates_live_when_a_referral_is_accepted_by_sms(live_server, page, users, svc):
    """The dashboard's figures change without a reload: the page polls its fragment (htmx, every 2 s)."""
    import time

    from playwright.sync_api import expect

    from ipoa.service import replies
    from ipoa.service.professionals import add_professional
    from tests.conftest import call_payload

    setup = call_service.Actor(username="setup", role="supervisor", centre="CNH")
    ref = call_service.log_call(svc, setup, call_payload(), allow_duplicate=True).ref
    call_service.fire_call_trigger(svc, setup, ref, {"trigger": "start_triage", "expected_version": 1})
    call_service.fire_call_trigger(svc, setup, ref, {"trigger": "refer", "expected_version": 2,
                                                     "data": {"service": "CRT"}})
    add_professional(svc, name="Nia", service="CRT", mobile="07700 900201")

    page.goto(f"{live_server}/supervisor")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/supervisor")
    expect(page.locator("#s-CRT-sent")).to_have_text("1")
    expect(page.locator("#s-CRT-accepted")).to_have_text("0")
    expect(page.locator("#c-CNH-awaiting_acceptance")).to_have_text("1")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.locator("#c-CNH-waiting").focus()  # a keyboard user on a figure keeps their place across updates

    started = time.monotonic()
    answer = replies.handle(svc, provider_sid="SM" + "d" * 32, from_number="+447700900201", body=f"ACCEPT {ref}")
    assert answer == f"{ref} now accepted. Thank you."
    expect(page.locator("#s-CRT-accepted")).to_have_text("1", timeout=5000)
    elapsed = time.monotonic() - started
    expect(page.locator("#s-CRT-sent")).to_have_text("0")
    expect(page.locator("#c-CNH-accepted")).to_have_text("1")
    assert elapsed < 5, elapsed
    assert page.evaluate("window.__sameDocument === true")  # updated in place, not reloaded
    assert page.url == f"{live_server}/supervisor"
    assert page.evaluate("document.activeElement.id") == "c-CNH-waiting"

    # The server stops answering: the page says its figures are stale rather than showing them as live.
    expect(page.locator("#dashboard-stale")).to_be_hidden()
    page.route("**/supervisor/dashboard/fragment", lambda route: route.abort())
    expect(page.locator("#dashboard-stale")).to_be_visible(timeout=5000)
    expect(page.locator("#dashboard-stale")).to_contain_text("Not updated since")
    page.unroute("**/supervisor/dashboard/fragment")
    expect(page.locator("#dashboard-stale")).to_be_hidden(timeout=5000)
