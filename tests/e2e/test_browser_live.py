"""Live where staff wait, in a real browser (web/live_pages.py, ipoa/static/live.js): the handler's queue
shows calls logged elsewhere without a reload, counts its clocks down each second from the server's time,
lifts a call whose clock has run out to the top with a notice (and a tone, if chosen); the call page
shows a referral accepted underneath it and says the page is out of date.

The server's clock is the session's FixedClock, years away from the browser's own: a countdown that reads
right proves it counts from the server's time. Waits are "appears within" the poll interval and a margin
for the request on a busy machine (POLL_SECONDS, 2 s)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from ipoa.web.live_dashboard import POLL_SECONDS
from tests.helpers import DEFAULT_NOW
from tests.helpers.api import log
from tests.helpers.clocks import breach
from tests.helpers.web import advance, browser_sign_in, fire_as_service, in_triage, logged, referred

pytestmark = pytest.mark.browser

WITHIN_A_POLL = POLL_SECONDS * 1000 + 1500  # ms: the next poll, and its answer on a loaded 2-core box


def mark_the_page(page) -> None:
    """A flag on the window that a reload would lose."""
    page.evaluate("() => { window.notReloaded = true; }")


def still_the_same_page(page) -> bool:
    return page.evaluate("() => window.notReloaded === true")


def test_calls_logged_through_the_api_appear_on_the_queue_without_a_reload(live_server, page, users, api, svc):
    browser_sign_in(page, live_server, "handler", "/queue")
    expect(page.locator("#queue-live")).to_contain_text("No open calls in this centre.")
    mark_the_page(page)
    for n in range(3):
        ref = log(api, subject={"nhs_number": None, "given_name": f"Person{n}"})["ref"]
        expect(page.locator(f"#q-{ref}")).to_be_visible(timeout=WITHIN_A_POLL)
    expect(page.locator("#queue-live caption")).to_contain_text("3 open calls")
    assert still_the_same_page(page)
    # Keyboard focus on a call's link stays there as the table is replaced (the link keeps its id).
    page.evaluate("() => { window.refreshes = 0; "
                  "document.addEventListener('htmx:afterSettle', () => { window.refreshes += 1; }); }")
    page.locator(f"#q-{ref}").focus()
    page.wait_for_function("() => window.refreshes >= 1", timeout=WITHIN_A_POLL)
    assert page.evaluate("() => document.activeElement.id") == f"q-{ref}"


def test_the_queue_clocks_count_down_from_the_servers_time(live_server, page, users, svc):
    ref = logged(svc)  # urgent: triage within 15 min of the server's 10:00
    browser_sign_in(page, live_server, "handler", "/queue")
    countdown = page.locator(f"tr:has(#q-{ref}) time[data-countdown]")
    assert countdown.get_attribute("datetime") == "2026-11-23T10:15:00+00:00"
    # Seconds now, as the page's script words them; then a second later, fewer.
    expect(countdown).to_have_text(re.compile(r"^due in (15 min 0 s|14 min [0-5]\d s)$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)
    expect(countdown).to_have_text(re.compile(r"^due in 14 min [0-5]\d s$"))
    # The ticking words are in no live region: a screen reader is not told each second.
    assert page.locator("[aria-live] time[data-countdown], [role=status] time[data-countdown]").count() == 0


def test_a_breached_call_moves_to_the_top_with_a_notice_and_the_chosen_tone(live_server, page, users, svc, clock):
    # Urgent, waiting for the callback promised for 18:00: first by urgency, and no clock of its runs out here.
    first = in_triage(svc)
    advance(svc, first, "promise_callback", data={"callback_at": (DEFAULT_NOW + timedelta(hours=8)).isoformat()})
    later = logged(svc, urgency="routine")  # triage within 4 open hours: 14:00
    browser_sign_in(page, live_server, "handler", "/queue")
    rows = page.locator("#queue-live tbody tr")
    expect(rows.first).to_contain_text(first)
    expect(page.locator("#queue-alert")).to_have_text("")
    # The tone is off until chosen, and the choice is remembered in this browser.
    sound = page.get_by_label("Sound an alert when a call breaches")
    expect(sound).not_to_be_checked()
    sound.check()
    page.reload()
    expect(sound).to_be_checked()
    mark_the_page(page)
    expect(rows.first).to_contain_text(first)

    breach(svc, clock, later, "triage")  # 14:01, fired as the scheduler and worker would
    expect(rows.first).to_have_attribute("data-breached-ref", later, timeout=WITHIN_A_POLL)
    expect(rows.first).to_contain_text("Breached")
    expect(page.locator("#queue-alert")).to_contain_text("has breached its clock")
    expect(page.locator("#queue-sound-on")).to_have_attribute("data-alerts", "1")
    assert still_the_same_page(page)
    # While the same calls are out, the next refresh leaves the notice as it is: a screen reader hears it
    # once, not every 2 s; and no second tone sounds.
    page.evaluate("() => { document.getElementById('queue-breaches').dataset.heard = 'yes'; window.refreshes = 0; "
                  "document.addEventListener('htmx:afterSettle', () => { window.refreshes += 1; }); }")
    page.wait_for_function("() => window.refreshes >= 1", timeout=WITHIN_A_POLL)
    expect(page.locator("#queue-breaches")).to_have_attribute("data-heard", "yes")
    expect(page.locator("#queue-sound-on")).to_have_attribute("data-alerts", "1")


def test_the_call_page_shows_a_referral_accepted_underneath_it_and_says_to_reload(live_server, page, users, svc):
    ref, rid = referred(svc)  # to CRT, awaiting acceptance
    browser_sign_in(page, live_server, "handler", f"/calls/{ref}")
    state = page.locator(f"#referral-{rid}-state .referral-state")
    expect(state).to_have_text("sent")
    expect(page.locator("#clocks")).to_contain_text("Acceptance")
    expect(page.locator("#clocks time[data-countdown]")).to_have_text(re.compile(r"^due in 29 min [0-5]\d s$"))
    expect(page.locator("#call-changed")).to_have_text("")
    mark_the_page(page)

    fire_as_service(svc, ref, rid, "accept")  # the receiving service's professional, on their own page
    expect(state).to_have_text("accepted", timeout=WITHIN_A_POLL)
    expect(page.locator("#clocks")).to_contain_text("Response")  # the acceptance clock stopped, the next runs
    notice = page.locator("#call-changed")
    expect(notice).to_contain_text("This call has changed since you opened it: referral to Clinical Response Team "
                                   "accepted by Professional (professional) at 10:00.")
    reload_link = page.get_by_role("link", name="Reload the call to act on it")
    expect(reload_link).to_have_attribute("href", f"/calls/{ref}")
    assert still_the_same_page(page)
    reload_link.click()
    expect(page.locator("#call-changed")).to_have_text("")
    expect(state).to_have_text("accepted")
