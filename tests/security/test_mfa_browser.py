"""Multi-factor sign-in in a real browser: a supervisor sets up an authenticator app at their first sign-in
(the key read off the page, as someone would type it into the app; each code computed by pyotp at the
app's clock), keeps their recovery codes, signs out, and signs in again with a code."""
from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from ipoa import create_app
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def app(svc):
    return create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "test-secret", "BENCH_ENDPOINTS": False,
                       "MFA_REQUIRED_ROLES": "supervisor,admin"})


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server}/supervisor")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_supervisor_sets_up_an_app_and_signs_in_with_a_code(live_server, page, users, svc, clock):
    sign_in(page, live_server, "supervisor")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    expect(page.locator("#mfa-qr svg")).to_be_visible()  # the QR code, drawn inline
    page.get_by_text("I cannot scan the QR code").click()
    secret = page.locator("#mfa-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)

    page.get_by_label("Code from the app").fill("123456" if totp.at(clock.now()) != "123456" else "654321")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator("#error-summary")).to_contain_text("That code is not right")

    page.get_by_label("Code from the app").fill(totp.at(clock.now()))
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have kept my recovery codes").click()
    page.wait_for_url(f"{live_server}/supervisor")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_contain_text("Signed out.")

    # The next sign-in asks for the code (a new one: the app's clock has moved on by a step).
    clock.advance(seconds=30)
    sign_in(page, live_server, "supervisor")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code from your authenticator app")
    page.get_by_label("Code").fill(totp.at(clock.now()))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server}/supervisor")
    expect(page.locator("header")).to_contain_text("Supervisor")
    page.goto(f"{live_server}/account/security")
    expect(page.locator("#recovery-left")).to_have_text("You have 10 recovery codes left.")
