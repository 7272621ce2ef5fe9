"""Break-glass in a real browser: a handler of another centre is refused a call, opens it by break-glass
with a reason, sees it marked as such; the call's centre's supervisor reviews the access."""
from __future__ import annotations

from playwright.sync_api import expect

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import PASSWORD, call_payload


def sign_in(page, live_server, username: str, path: str) -> None:
    page.goto(f"{live_server}{path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_handler_breaks_glass_and_the_supervisor_reviews_it(live_server, page, users, svc):
    setup = Actor("setup", "handler", "CNH")
    payload = call_payload(subject={"given_name": "Glenys", "family_name": "Glasscase"})
    ref = call_service.log_call(svc, setup, payload, allow_duplicate=True).ref

    # Asha, an ASC handler, has the reference from a caller; the call is with CNH.
    sign_in(page, live_server, "handler.asc", f"/calls/{ref}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("is not one of yours")
    expect(page.locator("main")).not_to_contain_text("Glasscase")
    page.get_by_role("button", name="Open by break-glass").click()  # no reason yet
    expect(page.locator("#bg-reason-error")).to_be_visible()
    page.get_by_label("Reason").select_option("transfer_in_progress")
    page.get_by_label("Note").fill("Caller rang ASC back about this call; CNH is transferring it")
    page.get_by_role("button", name="Open by break-glass").click()
    page.wait_for_url(f"{live_server}/calls/{ref}")
    expect(page.locator("#break-glass-own")).to_contain_text("You are viewing this record by break-glass")
    expect(page.locator("#break-glass-openings")).to_contain_text("Transfer in progress")
    expect(page.locator("main")).to_contain_text("Glenys Glasscase")
    page.get_by_role("button", name="Sign out").click()

    # The CNH supervisor reviews it.
    sign_in(page, live_server, "supervisor", "/supervisor/break-glass")
    page.wait_for_url(f"{live_server}/supervisor/break-glass")
    row = page.locator("#break-glass tbody tr").first
    expect(row).to_contain_text(ref)
    expect(row).to_contain_text("Transfer in progress")
    row.get_by_label("What you found").fill("Confirmed with ASC: the transfer was under way.")
    row.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator(".flash.success")).to_contain_text("marked reviewed")
    expect(page.locator("main")).to_contain_text("Nothing to review")
    page.goto(f"{live_server}/calls/{ref}")
    expect(page.locator("#break-glass-openings")).to_contain_text("reviewed by Supervisor (supervisor, CNH)")
    expect(page.locator("#viewers")).to_contain_text("break glass")
