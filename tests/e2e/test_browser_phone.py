"""A phone call in a real browser (issue 15, points 2 and 6): the demo's simulated call rings and waits in the
handler's phone queue with its screen pop; Answer puts it through (the console Voice gateway) and opens Log
a call pre-filled with the caller's number; the logged call shows its phone leg. axe-core checks each page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ipoa.service import users as user_service
from ipoa.service.professionals import add_professional
from ipoa.web.twiml import bridge_twiml
from tests.conftest import VOICE_SID, VOICE_TOKEN
from tests.helpers.voice import all_calls, leg, legs
from tests.helpers.web import browser_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_phone(app, svc, monkeypatch):
    """make run's phone: the simulator on, over the console Voice gateway, webhooks signed with this token."""
    app.config["VOICE_SIMULATOR"] = True
    monkeypatch.setattr(svc, "twilio", {"account_sid": VOICE_SID, "auth_token": VOICE_TOKEN})
    return app


def test_from_a_ringing_call_to_answer_to_a_pre_filled_logged_call_with_its_phone_leg(
        demo_phone, live_server, page, axe, users, svc, clock):
    user_service.update_user(svc, "test", "handler", answer_on="client:handler_cnh")
    add_professional(svc, name="Nia Nurse", service="DN", mobile="07700 900201")
    browser_sign_in(page, live_server, "handler", "/queue")
    expect(page.locator("#taking-calls-state")).to_have_text("You are not taking phone calls.")
    expect(page.locator("#phone-queue-empty")).to_be_visible()
    axe.check("the queue, nobody on the phone")

    page.get_by_role("button", name="Take phone calls").click()
    expect(page.locator("#taking-calls-state")).to_contain_text("You are taking phone calls")

    # Ringing: the simulated professional rings the centre's line, presses 1 and waits.
    page.get_by_label("Demo: who calls CNH").select_option("professional")
    page.get_by_role("button", name="Simulate an incoming call").click()
    (ringing,) = legs(svc)
    row = page.locator(f"#phone-{ringing.call_sid}")
    expect(row).to_contain_text("07700 ••• •201")
    expect(row.locator(".screen-pop")).to_have_text(re.compile(r"^Nia Nurse, Community \(district\) nursing"))
    expect(page.locator(".flash")).to_contain_text("You are number 1 in the queue.")
    assert "07700 900201" not in page.content()  # masked until answered
    axe.check("the queue, a caller waiting with the screen pop")

    clock.advance(seconds=35)
    row.get_by_role("button", name=re.compile("^Answer")).click()
    page.wait_for_url(re.compile(r".*/calls/new\?phone_leg=CA[0-9a-f]{32}$"))
    answered = leg(svc, ringing.call_sid)  # its dial result's URL names this answer
    assert svc.voice_gateway.redirected[-1] == (ringing.call_sid, bridge_twiml(
        "client:handler_cnh", svc.public_base_url, by="handler", at=answered.answered_at))
    expect(page.locator("#phone_leg")).to_contain_text("You answered a phone call from 07700 ••• •201")
    expect(page.get_by_label("Caller's phone")).to_have_value("07700 900201")
    expect(page.get_by_label("Caller's name")).to_have_value("Nia Nurse")
    expect(page.get_by_label("Caller is")).to_have_value("professional")
    axe.check("Log a call, pre-filled from the answered phone call")

    page.get_by_label("Need").select_option("urgent_community_health")
    page.get_by_label("Urgency").select_option("urgent")
    page.get_by_label("Consent to share").select_option("given")
    page.get_by_label("Summary").fill("District nurse asks for a same-day visit review.")
    page.get_by_label("Given name").fill("Edith")
    page.get_by_label("Family name").fill("Phonetest")
    page.get_by_role("button", name="Log call").click()
    page.wait_for_url(re.compile(r".*/calls/[^/]+$"))
    (made,) = all_calls(svc)
    assert page.url.endswith(f"/calls/{made.ref}") and made.caller_phone == "+447700900201"
    legs_table = page.locator("#phone-legs")
    expect(legs_table).to_contain_text(ringing.call_sid)
    expect(legs_table).to_contain_text("07700 ••• •201")
    expect(legs_table.locator("tr.phone-leg")).to_contain_text("answered")
    expect(legs_table.locator("tr.phone-leg")).to_contain_text("0 min 35 s")
    assert leg(svc, ringing.call_sid).call_ref == made.ref
    axe.check("the logged call with its phone leg")
    axe.assert_clean()


def test_a_caller_appears_in_the_phone_queue_and_leaves_it_without_a_reload(live_server, page, users, svc):
    from ipoa.service import phone_calls
    from ipoa.web.live_dashboard import POLL_SECONDS
    from tests.helpers.voice import CALLER, CNH_LINE

    within_a_poll = POLL_SECONDS * 1000 + 1500
    browser_sign_in(page, live_server, "handler", "/queue")
    expect(page.locator("#phone-queue-empty")).to_be_visible()
    page.evaluate("() => { window.notReloaded = true; }")
    sid = "CA" + "7" * 32
    phone_calls.incoming(svc, sid, CNH_LINE, CALLER)
    phone_calls.menu(svc, sid, "2", 1)
    expect(page.locator(f"#phone-{sid}")).to_contain_text("07700 ••• •123", timeout=within_a_poll)
    phone_calls.status(svc, sid, "completed")  # the caller hangs up
    expect(page.locator(f"#phone-{sid}")).to_have_count(0, timeout=within_a_poll)
    expect(page.locator("#phone-queue-empty")).to_be_visible()
    assert page.evaluate("() => window.notReloaded === true")
