"""Keyboard-first intake in a real browser: from sign-in to a sent referral with the keyboard alone. Focus
lands on the first field or the main action after each step (the sign-in's username, the queue's "Log a
call", the intake's Need, the call's "Accept: refer to ..."); the intake's required questions come first so
Enter in a text box sends it; the recommendation is accepted from the logged call in one action (start
triage and refer, both audited). Issue 12 asks for at most 15 Tab / Enter presses besides the typing."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ipoa.service import calls as call_service
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

MOST_PRESSES = 15


class Keyboard:
    """The page's keyboard, counting the presses of Tab and Enter (typing is not counted)."""

    def __init__(self, page):
        self.page, self.presses = page, []

    def press(self, key: str) -> None:
        assert key in ("Tab", "Enter")
        self.presses.append(key)
        self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def focused(self) -> str:
        return self.page.evaluate("document.activeElement && document.activeElement.id")


def test_sign_in_to_a_sent_referral_with_the_keyboard_alone(live_server, page, users, svc):
    keys = Keyboard(page)
    page.goto(f"{live_server}/login")
    assert keys.focused() == "username"
    keys.type("handler")
    keys.press("Tab")
    keys.type(PASSWORD)
    keys.press("Enter")
    page.wait_for_url(f"{live_server}/queue")
    assert keys.focused() == "log-a-call"
    keys.press("Enter")
    page.wait_for_url(f"{live_server}/calls/new")

    assert keys.focused() == "need"
    keys.type("Urgent community")  # a closed select chooses by its options' first letters
    keys.press("Tab")
    keys.type("Urgent")
    keys.press("Tab")
    keys.type("Carer")
    keys.press("Tab")
    keys.type("Consent given")
    keys.press("Tab")
    keys.type("Fell at home, no injury, cannot get up.")
    keys.press("Tab")
    keys.type("Edith")
    keys.press("Tab")
    keys.type("Keyboard")
    keys.press("Tab")
    keys.type("LE11 3AB")
    keys.press("Enter")  # Enter in a text box sends the form
    page.wait_for_url(re.compile(r"/calls/[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    ref = page.url.rsplit("/", 1)[1]
    assert page.locator("#call-state").inner_text() == "logged"

    assert keys.focused() == "accept-route"
    expect(page.locator("#accept-route")).to_have_text("Accept: refer to CRT")
    keys.press("Enter")
    expect(page.locator("#call-state")).to_have_text("referred")
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text(
        "Referred to Clinical Response Team")

    assert len(keys.presses) <= MOST_PRESSES, keys.presses
    call, history = call_service.get_call(svc, ref)
    assert (call.need, call.urgency, call.caller_type, call.consent, call.postcode) == (
        "urgent_community_health", "urgent", "carer", "given", "LE11 3AB")
    assert [r.service for r in call.referrals] == ["CRT"]
    # One action, two transitions, both audited as the handler's.
    assert [(e.trigger, e.actor) for e in history if e.entity == "call"] == [
        ("log", "handler"), ("start_triage", "handler"), ("refer", "handler")]


def test_after_an_error_focus_is_on_the_error_summary_not_on_need(live_server, page, users):
    page.goto(f"{live_server}/login")
    page.keyboard.type("handler")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/queue")
    page.goto(f"{live_server}/calls/new")
    page.locator("#summary").fill("No need chosen")
    page.locator("#summary").press("Tab")
    page.keyboard.press("Enter")  # in Given name: sends the form
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.locator("#need[autofocus]").count() == 0
