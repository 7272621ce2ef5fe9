"""Issue 12's numbered problems, each gone in a real browser. Where each is shown:
1. Live queue and call page, clocks counting down, a breach on top: tests/e2e/test_browser_live.py.
2. Plain-English errors, the error summary focused, "Error:" titles, hints kept: test_browser_errors.py.
3. Dates typed day / month / year (5 11 1941 is 5 November): test_browser_errors.py, and the reports' period
   in test_reports.py.
4. The nurse's page on a phone: below (390 and 320 px).
5. Warning buttons set apart; a handler sees none of the receiving service's actions: below.
6. The dashboard at 1,366 px, few tab stops: test_browser.py.
7. Contrast of the urgent tag and of error messages: below (and axe on every page: test_accessibility.py).
8. Keyboard first, one action from a logged call, confirmations in words: test_browser_keyboard.py.
9. The exceptions panel names who, the service and a number to tap: test_browser.py.
10. A closed recommended service: when it opens, and the out-of-hours alternative: below.
11. No internal detail on a handler's screens: below."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from ipoa.service.professionals import link_user
from tests.conftest import call_payload
from tests.helpers.axe import PHONE, SMALL_PHONE
from tests.helpers.clocks import breach
from tests.helpers.rota import add_on_duty
from tests.helpers.web import advance, browser_sign_in, in_triage, logged, referred

pytestmark = pytest.mark.browser

MONDAY_22 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # GMT: 22:00 in London, ILT closed, OOHV open

# The WCAG contrast ratio of an element's text against the first opaque background behind it.
CONTRAST = """el => {
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const c = getComputedStyle(node).backgroundColor;
    const parts = rgb(c);
    if (parts.length < 4 || parts[3] > 0) { bg = parts.slice(0, 3); break; }
  }
  bg = bg || [255, 255, 255];
  const [a, b] = [lum(rgb(getComputedStyle(el).color).slice(0, 3)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def scrolls_sideways(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_4_the_nurses_referral_on_a_phone(live_server, page, users, svc, clock):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)
    ref = logged(svc, need="community_nursing", urgency="urgent",
                 subject={"nhs_number": "9990000026", "given_name": "Edith", "family_name": "Phone",
                          "address_line_1": "12 Station Road", "town": "Loughborough", "postcode": "LE11 3AB"},
                 caller={"type": "carer", "name": "Jo Carer", "phone": "07911 123456"})
    advance(svc, ref, "start_triage")
    advance(svc, ref, "refer", data={"service": "DN"})
    rid = call_service.get_call(svc, ref)[0].referrals[0].id
    page.set_viewport_size(PHONE)
    browser_sign_in(page, live_server, "professional", f"/my/referrals/{rid}")
    for size in (PHONE, SMALL_PHONE):
        page.set_viewport_size(size)
        for path in ("/my/referrals", f"/my/referrals/{rid}"):
            page.goto(f"{live_server}{path}")
            assert not scrolls_sideways(page), (size, path)
    expect(page.locator("#address")).to_contain_text("12 Station Road")
    expect(page.locator("#address")).to_contain_text("Loughborough")
    expect(page.locator("#nhs-number")).to_have_text("999 000 0026")
    expect(page.locator('a[href="tel:+447911123456"]')).to_be_visible()
    expect(page.locator("#referrer")).to_contain_text("Clinical Navigation Hub")
    expect(page.locator('#referrer a[href^="tel:"]')).to_be_visible()
    expect(page.locator("#accept-by")).to_contain_text(re.compile(r"Accept by \d\d:\d\d"))
    expect(page.locator("#acceptance-overdue")).to_have_count(0)
    breach(svc, clock, ref, "acceptance", rid)
    page.reload()
    expect(page.locator("#acceptance-overdue")).to_have_text("Acceptance overdue")


def test_5_destructive_buttons_look_different_and_the_services_actions_are_not_the_handlers(
        live_server, page, users, svc):
    triage = in_triage(svc)
    sent, _ = referred(svc)
    browser_sign_in(page, live_server, "handler", f"/calls/{triage}")
    accept = page.locator("#accept-route")
    cancel = page.locator("#action-cancel")
    expect(cancel).to_have_class(re.compile(r"nhsuk-button--warning"))
    colour = "el => getComputedStyle(el).backgroundColor"
    assert accept.evaluate(colour) != cancel.evaluate(colour)
    # Set apart: the warning actions sit in their own zone, after every safe action.
    assert page.locator(".app-danger-zone #action-cancel").count() == 1
    page.goto(f"{live_server}/calls/{sent}")
    referrals = page.locator("section", has=page.locator("#referrals-title"))
    for label in ("Accept", "Decline", "Start", "Complete"):
        expect(referrals.get_by_role("button", name=label, exact=True)).to_have_count(0)
    withdraw = referrals.get_by_role("button", name="Withdraw")
    expect(withdraw).to_have_class(re.compile(r"nhsuk-button--warning"))
    expect(referrals).to_contain_text("For CRT to accept and update.")


def test_7_the_urgent_tag_and_error_messages_are_readable(live_server, page, users, svc):
    ref = logged(svc)  # urgent
    browser_sign_in(page, live_server, "handler", "/queue")
    urgent = page.locator(f"tr:has(a:text('{ref}')) .nhsuk-tag.urgent")
    assert urgent.evaluate(CONTRAST) >= 4.5
    page.goto(f"{live_server}/calls/new")
    page.locator("#log-call").click()
    messages = page.locator(".nhsuk-error-message")
    assert messages.count() >= 4
    for i in range(messages.count()):
        assert messages.nth(i).evaluate(CONTRAST) >= 4.5, messages.nth(i).inner_text()


def test_10_a_closed_service_says_when_it_opens_and_offers_the_out_of_hours_alternative(
        live_server, page, users, svc, clock):
    clock.set(MONDAY_22)
    ref = logged(svc, need="long_term_condition", urgency="urgent")
    browser_sign_in(page, live_server, "handler", f"/calls/{ref}")
    notice = page.locator("#out-of-hours")
    expect(notice).to_contain_text(re.compile(r"is closed now\. It opens Tue 24 Nov at 08:00\. A referral sent now "
                                              r"waits until then\."))
    expect(page.locator("#out-of-hours-alternative")).to_contain_text("Out-of-hours home visiting (OOHV) is open now")
    page.locator("#refer-out-of-hours").click()
    expect(page.locator("#call-state")).to_have_text("referred")
    call, history = call_service.get_call(svc, ref)
    assert [r.service for r in call.referrals] == ["OOHV"]
    refer = next(e for e in history if e.entity == "call" and e.trigger == "refer")
    assert refer.data.get("out_of_hours_alternative") is True and "out-of-hours alternative" in refer.reason


def test_11_a_handlers_screens_show_no_internal_detail(live_server, page, users, svc, clock):
    hana = Actor(username="handler", role="handler", centre="CNH")  # a real user: shown by name
    ref = call_service.log_call(svc, hana, call_payload(), allow_duplicate=True).ref
    breach(svc, clock, ref, "triage")  # the SLA clock (system:sla) writes to the history
    call_service.fire_call_trigger(svc, hana, ref, {"trigger": "start_triage", "expected_version": 1})
    browser_sign_in(page, live_server, "handler", f"/calls/{ref}")
    for path in (f"/calls/{ref}", "/queue"):
        page.goto(f"{live_server}{path}")
        shown = page.locator("main").inner_text()
        for internal in ("system:", "version", "Row ", "setup", "->"):
            assert internal not in shown, (path, internal)
    page.goto(f"{live_server}/calls/{ref}")
    expect(page.locator("main")).to_contain_text("SLA clock")  # the breach, in words
    page.get_by_text("Why this route?").click()  # the rule is kept, folded away, for those who ask
    expect(page.locator("#why-route")).to_contain_text("Row 5")
