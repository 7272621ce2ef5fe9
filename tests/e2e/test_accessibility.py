"""Accessibility in a real browser: axe-core's WCAG 2.2 A and AA rules (tests/helpers/axe.py) on every page
and the states that matter of every role, at 1,366 x 768, the professional's pages also at 390 and 320 px
wide, and no horizontal scrolling anywhere. Each test lists every problem it found before failing.

Every HTML page a browser may GET is visited by one of these tests: each test checks it visited its
endpoints (ROLE_ENDPOINTS), and test_every_html_page_is_checked compares them with the app's routes, so a
new page cannot escape the check."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import update

from ipoa import demo
from ipoa.adapters import orm
from ipoa.service import calls as call_service
from ipoa.service import signin
from ipoa.service import timers as timer_service
from tests.conftest import PASSWORD
from tests.helpers.axe import PHONE, SMALL_PHONE, endpoint_of, html_get_endpoints
from tests.helpers.clocks import due_at, timer_id
from tests.helpers.phone_measures import a_few_calls
from tests.helpers.sms import handle_events
from tests.helpers.web import actor_for, advance, fire_as_service, in_triage, load, logged

pytestmark = pytest.mark.browser

ROLE_ENDPOINTS = {
    "signed_out": {"auth.login", "auth.mfa_enrol", "auth.mfa_code", "account.recovery_codes"},
    "handler": {"web.queue", "web.new_call", "web.call_page", "web.messages", "account.security_page",
                "account.set_up", "web.supervisor", "web.no_access"},
    "professional": {"web.my_referrals", "web.my_referral", "web.queue"},
    "supervisor": {"web.supervisor", "dashboard.calls", "governance.break_glass_list", "reports.index",
                   "reports.board", "workflows.index", "workflows.diagram", "accounts.locked", "web.call_page",
                   "web.queue", "rotas_admin.index", "rotas_admin.service_rota", "rotas_admin.add_weekly",
                   "rotas_admin.edit_weekly", "rotas_admin.deactivate_weekly", "rotas_admin.add_one_off",
                   "rotas_admin.cover", "rotas_admin.leave", "rotas_admin.swap", "rotas_admin.standing_duty_lead",
                   "rotas_admin.import_csv"},
    "admin": {"workflows.index", "workflows.diagram", "admin.security_log", "reports.index", "reports.board",
              "accounts.locked", "web.queue", "professionals_admin.index", "professionals_admin.new",
              "professionals_admin.edit", "professionals_admin.confirm_deactivate"},
}
# GET endpoints that render no page of their own.
NOT_PAGES = {
    "web.index": "redirects each role to its home page",
    "web.secure_link": "an SMS link: redirects to the referral or the call",
    "dashboard.fragment": "the dashboard's live part, checked inside web.supervisor",
    "live.queue_fragment": "the queue's live part, checked inside web.queue as it refreshes",
    "live.call_fragment": "the call page's live parts, checked inside web.call_page as they refresh",
}


# -- driving the pages ------------------------------------------------------------------------------------

def sign_in(page, live_server, username: str, path: str = "/login") -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server}{path}")
    page.locator("[name=username]").fill(username)
    page.locator("[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("[name=password]").press("Enter")


_SUBMIT = """([formSelector, values, submitter]) => {
  const form = document.querySelector(formSelector);
  if (!form) throw new Error("no form " + formSelector);
  for (const [name, value] of Object.entries(values)) {
    const field = form.elements[name];
    if (!field) throw new Error("no field " + name + " in " + formSelector);
    field.value = value;
  }
  form.noValidate = true;  // the server's messages are what is checked
  form.requestSubmit(form.querySelector(submitter || "[type=submit], button:not([type])"));
}"""


def submit(page, form_selector: str, values: dict[str, str] | None = None, submitter: str | None = None) -> int:
    """Fill a form's fields by name and submit it, wherever it sits on the page (a closed <details>, say);
    the answer's status."""
    with page.expect_navigation() as navigation:
        page.evaluate(_SUBMIT, [form_selector, values or {}, submitter])
    return navigation.value.status


def action_form(trigger: str) -> str:
    return f"form:has([name=trigger][value={trigger}])"


def date_fields(name: str, iso: str) -> dict[str, str]:
    """A date typed as staff type it: day, month and year fields (the NHS.UK date input)."""
    year, month, day = iso.split("-")
    return {f"{name}-day": day, f"{name}-month": month, f"{name}-year": year}


def intake(page, nhs_number: str) -> dict[str, str]:
    return {"caller_type": "carer", "caller_name": "Jo Carer", "caller_phone": "07911 123456",
            "nhs_number": nhs_number, "given_name": "Edith", "family_name": "Testperson",
            **date_fields("date_of_birth", "1938-04-02"), "postcode": "LE11 3AB",
            "need": "urgent_community_health", "urgency": "urgent", "summary": "Fell, cannot get up.",
            "consent": "given"}


def visited(app, axe) -> set[str]:
    return {e for _, url, _ in axe.checked if (e := endpoint_of(app, url))}


def assert_visited(app, axe, role: str) -> None:
    missing = ROLE_ENDPOINTS[role] - visited(app, axe)
    assert not missing, f"the {role} test did not check {sorted(missing)}"


# -- the scene --------------------------------------------------------------------------------------------

def refer(svc, ref: str, service: str) -> str:
    advance(svc, ref, "refer", data={"service": service}, reason="Known to this service")
    return load(svc, ref).referrals[-1].id


def fire_referral(svc, ref: str, rid: str, trigger: str, **payload) -> None:
    fire_as_service(svc, ref, rid, trigger, **payload)  # the receiving service's professional


def breach_all(svc, clock, timers: list[tuple[str, str, str | None]]) -> None:
    """Runs the clock past the latest of these timers' due times and fires them all, as the scheduler would."""
    ids = [timer_id(svc, ref, kind, rid) for ref, kind, rid in timers]
    latest = max(due_at(svc, tid) for tid in ids)
    clock.set(latest + timedelta(minutes=1))
    for tid in ids:
        assert timer_service.fire(svc, tid) == "breached"


def scene(svc, clock) -> dict[str, str]:
    """The demo's data (calls at several stages, an undelivered text, a break-glass opening; the
    professional is the district nurse) and a call in each main state, two of them breached."""
    demo.seed(svc)
    s: dict[str, str] = {}
    s["logged"] = logged(svc)
    s["in_triage"] = in_triage(svc)
    s["callback"] = in_triage(svc)
    advance(svc, s["callback"], "promise_callback",
            data={"callback_at": (svc.clock.now() + timedelta(hours=2)).isoformat()})
    s["transferred"] = logged(svc, centre="ASC", need="social_care_assessment")
    call_service.fire_call_trigger(svc, actor_for("ASC"), s["transferred"], {
        "trigger": "transfer", "expected_version": 1, "data": {"centre": "CNH"}, "reason": "Lives in CNH's area"})
    s["sent"] = in_triage(svc)
    s["sent_rid"] = refer(svc, s["sent"], "CRT")
    # A long address, to show it wraps on a phone rather than scrolling sideways.
    s["dn_sent"] = in_triage(svc, need="community_nursing", subject={
        "address_line_1": "Flat 14, Wellingborough-Hinckley Court, 123 Ashby-de-la-Zouch Road",
        "town": "Market Harborough"})
    s["dn_sent_rid"] = refer(svc, s["dn_sent"], "DN")
    s["accepted"] = in_triage(svc)
    s["accepted_rid"] = refer(svc, s["accepted"], "DN")
    fire_referral(svc, s["accepted"], s["accepted_rid"], "accept")
    s["closed"] = in_triage(svc)
    s["closed_rid"] = refer(svc, s["closed"], "DN")
    fire_referral(svc, s["closed"], s["closed_rid"], "accept")
    fire_referral(svc, s["closed"], s["closed_rid"], "complete")
    s["cancelled"] = logged(svc)
    advance(svc, s["cancelled"], "cancel", reason="Caller rang back: no longer needed")
    s["breached"] = logged(svc)
    s["dn_breached"] = in_triage(svc, need="community_nursing")
    s["dn_breached_rid"] = refer(svc, s["dn_breached"], "DN")
    breach_all(svc, clock, [(s["breached"], "triage", None),
                            (s["dn_breached"], "acceptance", s["dn_breached_rid"])])
    return s


CALL_STATES = ("logged", "in_triage", "callback", "transferred", "sent", "accepted", "closed", "cancelled",
               "breached", "dn_breached")


# -- the tests --------------------------------------------------------------------------------------------

def test_every_html_page_is_checked(app):
    pages = html_get_endpoints(app)
    checked = set().union(*ROLE_ENDPOINTS.values()) | set(NOT_PAGES)
    assert not pages - checked, f"pages no accessibility test visits: {sorted(pages - checked)}"
    assert not checked - pages, f"listed but no longer routes: {sorted(checked - pages)}"


def test_the_check_finds_violations_and_sideways_scrolling(axe, page):
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png">'
                     '<div style="width: 3000px">wide</div></main></html>')
    finding = axe.check("a bad page")
    assert "image-alt" in [v.id for v in finding.violations]
    assert finding.overflow is not None and finding.overflow[0] > 3000 and finding.overflow[1] == 1366
    with pytest.raises(pytest.fail.Exception, match=r"image-alt \[critical\].*1 element\(s\): img"):
        axe.assert_clean()


def test_signed_out_pages_and_the_second_factor(live_server, app, axe, page, users, svc, clock):
    page.goto(f"{live_server}/login")
    axe.check("sign in")
    page.locator("[name=username]").fill("handler")
    page.locator("[name=password]").fill("not the password")
    with page.expect_navigation():
        page.locator("[name=password]").press("Enter")
    axe.check("sign in, wrong password")
    assert page.goto(f"{live_server}/nowhere").status == 404
    axe.check("404, signed out")

    app.config["MFA_REQUIRED_ROLES"] = "supervisor"
    sign_in(page, live_server, "supervisor")
    assert "/login/set-up" in page.url
    axe.check("set up an authenticator app")
    secret = page.locator("#mfa-secret").text_content().replace(" ", "")
    assert submit(page, "form:has([name=code])", {"code": "000000"}) == 401
    axe.check("set up an authenticator app, wrong code")
    submit(page, "form:has([name=code])", {"code": pyotp.TOTP(secret).at(clock.now())})
    assert "/account/recovery-codes" in page.url
    axe.check("recovery codes")

    clock.advance(seconds=30)
    sign_in(page, live_server, "supervisor")
    assert "/login/code" in page.url
    axe.check("enter the code")
    assert submit(page, "form:has([name=code])", {"code": "000000"}) == 401
    axe.check("enter the code, wrong code")
    page.context.clear_cookies()
    page.goto(f"{live_server}/login")
    for _ in range(signin.Policy.from_config(app.config).max_failures + 1):
        page.locator("[name=username]").fill("handler.asc")
        page.locator("[name=password]").fill("not the password")
        with page.expect_navigation():
            page.locator("[name=password]").press("Enter")
    assert "locked" in page.locator("main").inner_text().lower()
    axe.check("sign in, account locked")

    assert_visited(app, axe, "signed_out")
    axe.assert_clean()


def test_handler_pages(live_server, app, axe, page, users, svc, clock, monkeypatch):
    s = scene(svc, clock)
    sign_in(page, live_server, "handler")
    axe.check("queue, with a breached call")
    page.goto(f"{live_server}/calls/new")
    axe.check("log a call")
    assert submit(page, "main form:has([name=summary])") == 422
    axe.check("log a call, with errors")
    page.goto(f"{live_server}/calls/new")
    assert submit(page, "main form:has([name=summary])", intake(page, "9990000026")) == 409
    axe.check("log a call, duplicate warning")
    for state in CALL_STATES:
        page.goto(f"{live_server}/calls/{s[state]}")
        axe.check(f"call page: {state.replace('_', ' ')}")
    page.goto(f"{live_server}/calls/{s['in_triage']}")
    assert submit(page, action_form("promise_callback")) == 422
    axe.check("call page: promise a callback, with errors")
    page.goto(f"{live_server}/calls/{s['logged']}")
    assert submit(page, action_form("cancel")) == 422
    axe.check("call page: cancel, with errors")
    page.goto(f"{live_server}/messages")
    axe.check("messages")
    page.goto(f"{live_server}/account/security")
    axe.check("sign-in security")
    page.goto(f"{live_server}/account/security/set-up")
    axe.check("sign-in security: set up an app")
    assert page.goto(f"{live_server}/supervisor").status == 403
    axe.check("403, a handler on the supervisor's page")
    assert page.goto(f"{live_server}/calls/ZZZZ-ZZZZ").status == 404
    axe.check("404, signed in")
    assert page.goto(f"{live_server}/no-access").status == 403
    axe.check("no access")

    # Another centre's handler: outside their relationship, and break-glass without a reason.
    sign_in(page, live_server, "handler.asc", f"/calls/{s['logged']}")
    assert "/calls/" in page.url and page.locator("main form:has([name=reason])").count() == 1
    axe.check("outside relationship")
    assert submit(page, "main form:has([name=reason])") == 422
    axe.check("outside relationship: break-glass, with errors")

    # The recommended service closed now (ILT at night): when it opens, and the routing table's out-of-hours
    # alternative (OOHV) offered in one action; a claim the table does not make, and one needing a lawful basis.
    clock.set(datetime(2026, 12, 3, 22, 0, tzinfo=UTC))  # Thu 22:00 UK time
    closed = in_triage(svc, need="long_term_condition")
    sign_in(page, live_server, "handler", f"/calls/{closed}")
    assert page.locator("#out-of-hours-form").count() == 1
    axe.check("call page: recommended service closed, out-of-hours alternative offered")
    assert submit(page, "#out-of-hours-form", {"service": "CRS"}) == 400
    axe.check("call page: out-of-hours alternative not offered, with errors")
    routine = in_triage(svc, need="long_term_condition", urgency="routine")
    page.goto(f"{live_server}/calls/{routine}")
    assert page.locator("#out-of-hours").count() == 1 and page.locator("#out-of-hours-form").count() == 0
    axe.check("call page: recommended service closed, no alternative")
    refused = logged(svc, centre="ASC", need="long_term_condition", consent="refused")
    call_service.fire_call_trigger(svc, actor_for("ASC"), refused, {"trigger": "start_triage", "expected_version": 1})
    sign_in(page, live_server, "handler.asc", f"/calls/{refused}")
    assert submit(page, "#out-of-hours-form") == 422
    axe.check("call page: out-of-hours alternative without a lawful basis, with errors")

    # Who a referral's texts went to and why, and, in red, a referral that nobody could be texted about
    # (no rota, no duty lead, no supervisor's mobile: service/rotas.referral_recipients).
    clock.set(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))  # Thu 10:00 UK time: both services open
    texted = in_triage(svc)
    refer(svc, texted, "CRT")  # the demo's rota has Carl on the CRT day shift
    untexted = in_triage(svc)
    refer(svc, untexted, "SG")  # on no rota
    with svc.uow() as uow:  # nor the CNH supervisor's mobile to fall back on
        uow.session.execute(update(orm.users).where(orm.users.c.role == "supervisor").values(mobile=None))
        uow.commit()
    with monkeypatch.context() as m:
        m.setitem(svc.directory.services, "SG", replace(svc.directory.services["SG"], duty_lead=None))
        handle_events(svc)
    sign_in(page, live_server, "handler", f"/calls/{texted}")
    assert "texted the professional on duty for CRT" in page.locator("#texted-why-1").inner_text()
    axe.check("call page: who the referral's texts went to and why")
    page.goto(f"{live_server}/calls/{untexted}")
    assert page.locator("#texted-why-1.nhsuk-error-message").count() == 1
    axe.check("call page: nobody could be texted about the referral")

    assert_visited(app, axe, "handler")
    axe.assert_clean()


def test_professional_pages_on_a_desktop_and_phones(live_server, app, axe, page, users, svc, clock):
    s = scene(svc, clock)
    sizes = [PHONE, SMALL_PHONE]
    sign_in(page, live_server, "professional")
    # Issue 13: the demo's rota puts the professional on shifts every day, so "Your shifts" lists them.
    assert page.locator("#my-shifts li").count() >= 7
    axe.check("my referrals, with your shifts")
    axe.check_at("my referrals, with your shifts", sizes)
    for label, rid in [("sent", s["dn_sent_rid"]), ("breached", s["dn_breached_rid"]),
                       ("accepted", s["accepted_rid"]), ("completed", s["closed_rid"])]:
        page.goto(f"{live_server}/my/referrals/{rid}")
        axe.check(f"referral: {label}")
        axe.check_at(f"referral: {label}", sizes)
    page.goto(f"{live_server}/my/referrals/{s['dn_breached_rid']}")
    assert submit(page, action_form("decline")) == 422
    axe.check("referral: decline, with errors")
    axe.check_at("referral: decline, with errors", sizes)
    assert page.goto(f"{live_server}/queue").status == 403
    axe.check("403, a professional on the queue")
    axe.check_at("403, a professional on the queue", sizes)

    # Texted OFF within the shift on now: the page says until when, in words, with the shift on now.
    from datetime import time

    from ipoa.demo import DEMO_PROFESSIONALS
    from ipoa.domain.calendar import LONDON
    from ipoa.domain.validation import normalise_uk_mobile
    from ipoa.service import replies

    tomorrow = clock.now().astimezone(LONDON).date() + timedelta(days=1)
    clock.set(datetime.combine(tomorrow, time(10), tzinfo=LONDON))  # the demo's day shift, 08:00-20:00
    answer = replies.handle(svc, provider_sid="SM" + "7" * 32, body="OFF",
                            from_number=normalise_uk_mobile(DEMO_PROFESSIONALS[0][2]))
    assert "unavailable until 20:00" in answer
    page.goto(f"{live_server}/my/referrals")
    assert page.locator("#unavailable").count() == 1 and page.locator("#shift-now").count() == 1
    axe.check("my referrals, marked unavailable after texting OFF, a shift on now")
    axe.check_at("my referrals, marked unavailable after texting OFF, a shift on now", sizes)

    assert_visited(app, axe, "professional")
    axe.assert_clean()


def test_supervisor_pages(live_server, app, axe, page, users, svc, clock):
    s = scene(svc, clock)
    a_few_calls(svc, clock)  # the phone lines' measures: a target met, one not met, others with no data
    sign_in(page, live_server, "supervisor", "/supervisor")
    assert page.locator("#phone .phone-verdict-met").count() >= 1
    assert page.locator("#phone .phone-verdict-not-met").count() >= 1
    # Issue 13: gaps in the rota ahead on the exceptions panel, who is on duty now and next by service.
    assert page.locator("#rota-gaps li").count() >= 1 and page.locator("#services [id$='-next']").count() >= 1
    axe.check("dashboard, with breaches, an undelivered text, gaps in the rota ahead, who is on duty now and next")
    assert page.locator("#exceptions details.follow-up").count() >= 1  # the demo's undelivered text
    page.locator("#exceptions details.follow-up summary").first.click()
    axe.check("dashboard, a text's follow-up form open")
    assert submit(page, "#exceptions details.follow-up form") == 400
    axe.check("mark a text followed up, with errors")
    for query in ("centre=CNH&measure=breached", "service=DN&measure=awaiting_acceptance",
                  "service=CRT&measure=open", "centre=CNH&measure=waiting"):
        page.goto(f"{live_server}/supervisor/calls?{query}")
        axe.check(f"dashboard drill-down: {query}")
    page.goto(f"{live_server}/supervisor/break-glass")
    axe.check("break-glass review")
    page.goto(f"{live_server}/queue")
    axe.check("queue")
    for state in ("sent", "dn_breached", "logged"):
        page.goto(f"{live_server}/calls/{s[state]}")
        axe.check(f"call page: {state.replace('_', ' ')}, as supervisor (who has viewed it, re-route)")
    page.goto(f"{live_server}/calls/{s['sent']}")
    assert submit(page, f"form[action$='/referrals/{s['sent_rid']}/reroute']") == 422
    axe.check("call page: re-route, with errors")
    reports(page, live_server, axe)
    page.goto(f"{live_server}/accounts/locked")
    axe.check("locked accounts")
    # Rotas (web/rota_pages.py): every service, the demo's DN week, each change's form, one with errors.
    for path, label in (("/rotas/", "rotas"), ("/rotas/DN", "DN's rota week"),
                        ("/rotas/DN/weekly/new", "add a weekly shift"),
                        ("/rotas/DN/one-off/new", "add a one-off shift"), ("/rotas/DN/cover", "cover a shift"),
                        ("/rotas/DN/leave", "record leave"), ("/rotas/DN/swap", "swap two shifts"),
                        ("/rotas/DN/duty-lead", "standing duty lead"), ("/rotas/import?service=DN", "import a CSV")):
        page.goto(f"{live_server}{path}")
        axe.check(f"rota: {label}")
    assert submit(page, "#rota-form") == 400  # nothing pasted, no file
    axe.check("rota: import a CSV, with errors")
    page.goto(f"{live_server}/rotas/DN")
    page.locator("#patterns a[id^=edit-]").first.click()
    axe.check("rota: change a weekly shift")
    page.goto(f"{live_server}/rotas/DN")
    page.locator("#patterns a[id^=stop-]").first.click()
    axe.check("rota: stop a weekly shift")

    assert_visited(app, axe, "supervisor")
    axe.assert_clean()


def reports(page, live_server, axe) -> None:
    page.goto(f"{live_server}/reports/")
    axe.check("reports, with figures")
    typed = {"from-day": "31", "from-month": "2", "from-year": "2026", "to-day": "1", "to-month": "", "to-year": "26"}
    assert submit(page, "form.report-form", typed) == 400
    axe.check("reports, with errors in both dates' boxes")
    assert page.goto(f"{live_server}/reports/?from=not-a-date&to=2026-11-23&centre=XYZ").status == 400
    axe.check("reports, with errors from a link")
    page.goto(f"{live_server}/reports/board")
    axe.check("board view")
    no_to = {"from-day": "5", "from-month": "11", "from-year": "2026", "to-day": "", "to-month": "", "to-year": ""}
    assert submit(page, "form.report-form", no_to) == 400
    axe.check("board view, with an error (no 'to' date)")
    page.goto(f"{live_server}/workflows/")
    axe.check("workflows")
    page.get_by_role("link", name="call v").first.click()
    page.wait_for_selector("#diagram[data-rendered='true'] svg")
    axe.check("workflow diagram")


def test_admin_pages(live_server, app, axe, page, users, svc, clock):
    scene(svc, clock)
    policy = signin.Policy.from_config(app.config)
    for _ in range(policy.max_failures):
        signin.check_password(svc, policy, "handler", "not the password", "127.0.0.1")
    sign_in(page, live_server, "admin")
    reports(page, live_server, axe)
    page.goto(f"{live_server}/admin/security")
    axe.check("security log")
    page.goto(f"{live_server}/admin/security?kind=nonsense")
    axe.check("security log, with errors")
    page.goto(f"{live_server}/accounts/locked")
    axe.check("locked accounts, one locked")
    assert page.goto(f"{live_server}/queue").status == 403
    axe.check("403, an admin on the queue")
    # The professionals pages: the demo's professionals, their rota shifts named before one is deactivated.
    from ipoa.service.professionals import list_professionals

    nurse = next(p for p in list_professionals(svc, "DN") if p.username == "professional")
    page.goto(f"{live_server}/admin/professionals/")
    axe.check("professionals")
    page.goto(f"{live_server}/admin/professionals/new")
    axe.check("add a professional")
    bad = {"name": "", "mobile": "0116 496 0000", "service": "", "user": "handler"}
    assert submit(page, "#professional-form", bad) == 400
    axe.check("add a professional, with errors in every field")
    page.goto(f"{live_server}/admin/professionals/{nurse.id}")
    axe.check("change a professional")
    assert submit(page, "#professional-form", {"mobile": "not a mobile"}) == 400
    axe.check("change a professional, with an error")
    page.goto(f"{live_server}/admin/professionals/{nurse.id}/deactivate")
    assert page.locator("#removed-from li").count() > 0
    axe.check("deactivate a professional: are you sure, naming their shifts")
    assert submit(page, "form:has(#deactivate)") == 200
    assert page.locator(".nhsuk-notification-banner--success").count() == 1
    axe.check("professionals, one deactivated, with the notice")
    page.goto(f"{live_server}/admin/professionals/{nurse.id}")
    axe.check("change a deactivated professional")

    assert_visited(app, axe, "admin")
    axe.assert_clean()


def test_live_pages_as_they_refresh(live_server, app, axe, page, users, svc, clock):
    """The handler's queue and call page after their live parts refreshed in place (web/live_pages.py): the
    queue with the notice of a call whose clock ran out and the alert-tone choice, the call page with the
    notice that the call changed underneath it, and each with its "not updated" notice."""
    waiting = logged(svc, urgency="routine")
    sent = in_triage(svc)
    sent_rid = refer(svc, sent, "CRT")
    sign_in(page, live_server, "handler", "/queue")
    page.locator("#queue-sound-on").wait_for(state="attached")
    assert page.locator("#queue-sound").is_visible()
    axe.check("queue, live: nothing run out, the alert tone offered")
    breach_all(svc, clock, [(waiting, "triage", None)])
    page.locator("#queue-breaches").wait_for(state="visible")
    axe.check("queue, refreshed live: a call's clock ran out, with the notice")
    page.route("**/queue/live*", lambda route: route.fulfill(status=503, body="down"))
    page.locator("#queue-live-stale").wait_for(state="visible")
    axe.check("queue, live part not updated")
    page.unroute("**/queue/live*")

    page.goto(f"{live_server}/calls/{sent}")
    fire_as_service(svc, sent, sent_rid, "accept")
    page.locator("#call-changed-banner").wait_for(state="visible")
    axe.check("call page, refreshed live: changed underneath, with the notice")
    page.route("**/live?*", lambda route: route.fulfill(status=503, body="down"))
    page.locator("#call-live-stale").wait_for(state="visible")
    axe.check("call page, live part not updated")
    axe.assert_clean()
