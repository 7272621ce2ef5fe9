"""Issue 13 in a real browser: a supervisor edits a rota (web/rota_pages.py). They open DN's week, change a
weekly shift's professionals, cover one date, see the week show it, make a change that leaves DN with nobody
on duty and see the warning, import a bad CSV and see its line-numbered problems, then a good one. Each
state is checked with axe-core (WCAG 2.2 A/AA, tests/helpers/axe.py): no violations, no sideways scrolling.

The scene: Monday 23 November 2026, 10:00 GMT. DN is open 24/7 and Ann works its all-day shift every day."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ipoa.service import rotas, security
from ipoa.service.professionals import add_professional
from tests.helpers.rota import on_duty
from tests.helpers.web import browser_sign_in

pytestmark = pytest.mark.browser

WEDNESDAY, THURSDAY = 2, 3
BAD = """service,date,start,end,professional,role
DN,2026-11-28,08:00,20:00,07700 900202,member
DN,2026-11-28,08:00,20:00,07700 900202,duty_lead
DN,2026-11-29,8 am,20:00,07700 900202,member
DN,2026-11-29,08:00,20:00,07700 900999,duty_lead
"""
GOOD = """service,date,start,end,professional,role
DN,2026-11-28,08:00,20:00,07700 900203,member
DN,2026-11-28,08:00,20:00,07700 900203,duty_lead
"""


def test_a_supervisor_edits_a_rota_and_is_warned_of_a_gap(live_server, page, axe, users, svc, clock):
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    cat = add_professional(svc, name="Cat Cover", service="DN", mobile="07700 900203")
    shifts = on_duty(svc, "DN", ann, duty_lead=ann)
    browser_sign_in(page, live_server, "supervisor", "/rotas/")
    expect(page.locator("#rota-DN-now")).to_have_text("Ann Day")
    axe.check("rotas: every service")
    page.get_by_role("link", name=re.compile(r"^DN rota")).click()
    expect(page.locator("h1")).to_contain_text("DN rota")
    axe.check("rota: DN's week")

    # A weekly shift's professionals changed: Bob for Ann on Wednesdays.
    page.locator(f"#edit-{shifts[WEDNESDAY]}").click()
    axe.check("rota: change a weekly shift")
    page.get_by_label("Ann Day").uncheck()
    page.get_by_label("Bob Night").check()
    page.get_by_role("button", name="Save the weekly shift").click()
    expect(page.locator(".flash.success")).to_contain_text("Weekly shift changed: Wednesday 00:00 to 00:00")
    expect(page.locator("#day-2026-11-25 .rota-people")).to_have_text("Bob Night")
    expect(page.locator(f"#pattern-{shifts[WEDNESDAY]}")).to_contain_text("Bob Night")
    expect(page.locator("#gap-warning")).to_have_count(0)

    # A cover for one date: Cat works Thursday 26 November.
    page.get_by_role("link", name=re.compile(r"Cover this shift on Thursday 26 November 2026")).click()
    expect(page.locator("#shift")).to_have_value(str(shifts[THURSDAY]))
    expect(page.locator("#day-day")).to_have_value("26")
    axe.check("rota: cover a shift, from the week")
    page.get_by_label("Cat Cover").check()
    page.get_by_label("Reason (optional)").fill("Ann on a course")
    page.get_by_role("button", name="Record the cover").click()
    thursday = page.locator("#day-2026-11-26")
    expect(thursday.locator(".rota-people")).to_have_text("Cat Cover")
    expect(thursday.locator(".rota-change")).to_have_text("Changed: cover")
    expect(page.locator("#day-2026-11-27 .rota-people")).to_have_text("Ann Day")  # that date only
    axe.check("rota: the week with a cover")

    # A form with problems: the summary first, each message beside its field.
    page.locator("#add-weekly").click()
    page.get_by_label("Start time").fill("25:00")
    page.get_by_role("button", name="Add the weekly shift").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Choose the day of the week")
    expect(page.locator("#start-error")).to_contain_text("must be a 24-hour time like 08:00")
    axe.check("rota: add a weekly shift, with errors")

    # Leave that leaves nobody on duty: the warning names the uncovered hours.
    page.goto(f"{live_server}/rotas/DN")
    page.locator("#add-leave").click()
    axe.check("rota: record leave")
    page.get_by_label("Professional").select_option(label="Ann Day")
    for name in ("first_day", "last_day"):
        page.locator(f"#{name}-day").fill("28")
        page.locator(f"#{name}-month").fill("11")
        page.locator(f"#{name}-year").fill("2026")
    page.get_by_role("button", name="Record the leave").click()
    warning = page.locator("#gap-warning")
    expect(warning).to_contain_text("This change leaves DN")
    expect(warning).to_contain_text("with nobody on duty while it is open")
    expect(warning).to_contain_text("Sat 28 Nov 00:00 to Sun 29 Nov 00:00, 24 hours")
    expect(page.locator("#day-2026-11-28 .rota-people")).to_have_text("nobody")
    axe.check("rota: the week after leave, with the gap warning")

    # A bad CSV: every problem, by line, and nothing imported; then a good one.
    page.locator("#import-csv").click()
    axe.check("rota: import a CSV")
    page.get_by_label("Or paste the CSV").fill(BAD)
    with page.expect_navigation() as sent:
        page.get_by_role("button", name="Import the rota").click()
    assert sent.value.status == 400
    problems = page.locator(".nhsuk-error-summary li")
    expect(problems.nth(1)).to_contain_text("Line 4: the start time '8 am' is not a time of day")
    expect(problems.nth(2)).to_contain_text("Line 5: no professional has the mobile 07700 900999")
    expect(page.locator("#csv-error")).to_contain_text("Nothing was imported")
    axe.check("rota: import a CSV, with line-numbered problems")
    assert [e.detail["change"] for e in security.events(svc, kind=security.ROTA_CHANGED).events
            if e.detail["change"] == "csv_imported"] == []

    page.get_by_label("Or paste the CSV").fill("")
    page.get_by_label("Rota CSV file").set_input_files(
        {"name": "rota.csv", "mimeType": "text/csv", "buffer": GOOD.encode()})
    page.get_by_role("button", name="Import the rota").click()
    expect(page.locator(".flash.success")).to_contain_text("Imported 1 shift")
    # The all-day shift Ann is on leave from, and the imported one-off shift from 08:00 to 20:00, which covers
    # the day's middle only: it opens no gap, so no warning.
    expect(page.locator("#day-2026-11-28 .rota-people")).to_have_text(["nobody", "Cat Cover"])
    expect(page.locator("#gap-warning")).to_have_count(0)
    axe.check("rota: the week after a CSV import")
    assert rotas.on_duty_now(svc, "DN").professionals[0].name == "Ann Day"
    assert bob and cat
    axe.assert_clean()
