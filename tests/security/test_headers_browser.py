"""The Content-Security-Policy in a real browser (Playwright driving Debian's chromium): the pages that run
scripts (the supervisor's live dashboard with htmx, the workflow diagram drawn by Mermaid) work under it
and the browser reports no violation."""
from __future__ import annotations

import pytest

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import PASSWORD, call_payload

pytestmark = pytest.mark.browser


def test_scripted_pages_work_under_the_policy_with_no_violation(live_server, page, users, svc):
    call_service.log_call(svc, Actor("handler", "handler", "CNH"), call_payload(), allow_duplicate=True)
    reports = []
    page.on("console", lambda m: reports.append(m.text) if "Content Security Policy" in m.text
            or "Refused to" in m.text else None)
    page.goto(f"{live_server}/login")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()

    page.goto(f"{live_server}/supervisor")
    # htmx replaces the live block every few seconds: its request goes out and comes back.
    with page.expect_response(lambda r: "/supervisor/dashboard/fragment" in r.url, timeout=10000) as polled:
        pass
    assert polled.value.status == 200
    assert page.evaluate("window.htmx.config.allowEval") is False

    version = svc.engine().latest("call").version
    page.goto(f"{live_server}/workflows/call/{version}")
    page.wait_for_selector("#diagram[data-rendered='true'] svg")
    assert "Logged (1)" in page.locator("#diagram svg").text_content()
    assert reports == [], reports
