"""The NHS.UK error pattern in a real browser (issue 12, item 2): after a bad submit the page title starts
with "Error:", focus is on the error summary, each summary link moves focus to its field, and each field's
hint stays in its aria-describedby beside the error. Also the date typed day / month / year is stored as
typed, whatever the browser's locale (item 3)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ipoa.adapters.orm import calls
from ipoa.service import calls as call_service

pytestmark = pytest.mark.browser


def _sign_in(page, live_server, username="handler"):
    page.goto(f"{live_server}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/queue")


def _date_of_birth(page, day: str, month: str, year: str) -> None:
    for part, value in (("day", day), ("month", month), ("year", year)):
        page.locator(f"#date_of_birth-{part}").fill(value)


def test_a_bad_intake_focuses_the_error_summary_whose_links_reach_each_field(live_server, page, users, svc):
    _sign_in(page, live_server)
    page.goto(f"{live_server}/calls/new")
    page.get_by_label("NHS number").fill("123")
    _date_of_birth(page, "31", "2", "1941")
    page.get_by_role("button", name="Log call").click()
    page.wait_for_load_state()

    assert page.title().startswith("Error: ")
    summary = page.locator(".nhsuk-error-summary")
    page.wait_for_function(
        "document.activeElement && document.activeElement.classList.contains('nhsuk-error-summary')")
    items = summary.locator("a")
    texts = items.all_inner_texts()
    assert "Select the need" in texts
    assert any("NHS number" in t for t in texts)
    assert "Date of birth must be a real date" in texts
    assert not [t for t in texts if "Input should" in t or "String should" in t]

    summary.get_by_role("link", name="Select the urgency").click()
    assert page.evaluate("document.activeElement.id") == "urgency"
    summary.get_by_role("link", name="Date of birth must be a real date").click()
    assert page.evaluate("document.activeElement.id").startswith("date_of_birth-")

    described = page.locator("#nhs_number").get_attribute("aria-describedby").split()
    assert described == ["nhs_number-hint", "nhs_number-error"]
    with svc.uow() as uow:  # nothing stored
        assert uow.session.scalar(select(func.count()).select_from(calls)) == 0


def test_a_date_of_birth_typed_day_month_year_is_stored_as_typed(live_server, page, users, svc):
    _sign_in(page, live_server)
    page.goto(f"{live_server}/calls/new")
    page.get_by_label("Need").select_option("community_nursing")
    page.get_by_label("Urgency").select_option("routine")
    page.get_by_label("Summary").fill("Dressing to change.")
    page.get_by_label("Given name").fill("Ada")
    page.get_by_label("Family name").fill("Daytest")
    _date_of_birth(page, "05", "11", "1941")
    page.get_by_label("Consent to share").select_option("given")
    page.get_by_label("Caller is").select_option("carer")
    page.get_by_role("button", name="Log call").click()
    page.wait_for_url(f"{live_server}/calls/*")
    call, _ = call_service.get_call(svc, page.url.rsplit("/", 1)[1])
    assert call.date_of_birth.isoformat() == "1941-11-05"
