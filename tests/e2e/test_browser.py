"""A call handler's journey in a real browser: Playwright driving Debian's chromium."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from ipoa.service import calls as call_service

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _require_browser() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM}; .ci/run installs it")
    pytest.skip("chromium is not installed (apt-get install chromium); CI fails instead of skipping")


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def page():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


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
    page.get_by_label("Date of birth").fill("1938-04-02")
    page.get_by_label("Postcode").fill("le11 3ab")
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
    assert "Row 5" in recommendation.inner_text()

    page.get_by_role("button", name="Accept: refer to CRT").click()
    page.wait_for_load_state()
    assert page.locator("#call-state").inner_text() == "referred"
    assert page.locator(".referral-state").first.inner_text() == "sent"

    call, history = call_service.get_call(svc, ref)
    assert (call.state, call.postcode, call.nhs_number) == ("referred", "LE11 3AB", "9990000026")
    assert [r.service for r in call.referrals] == ["CRT"]
    assert [e.trigger for e in history if e.entity == "call"] == ["log", "start_triage", "refer"]
