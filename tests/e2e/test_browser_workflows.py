"""The workflow diagram drawn by the vendored Mermaid in a real browser (Playwright driving Debian's
chromium); fixtures in conftest.py."""
from __future__ import annotations

import os

import pytest

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import call_payload

pytestmark = pytest.mark.browser


def test_a_supervisor_sees_the_call_workflow_drawn(live_server, page, users, svc):
    call_service.log_call(svc, Actor(username="handler", role="handler", centre="CNH"), call_payload(),
                          allow_duplicate=True)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live_server}/login")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    page.goto(f"{live_server}/workflows/")
    version = svc.engine().latest("call").version
    page.get_by_role("link", name=f"call v{version}").click()
    page.wait_for_url(f"{live_server}/workflows/call/{version}")
    page.wait_for_selector("#diagram[data-rendered='true'] svg")
    svg = page.locator("#diagram svg")
    assert svg.count() == 1
    assert "Logged (1)" in svg.text_content()
    assert "In triage (0)" in svg.text_content()
    assert page.locator("#diagram").is_visible()
    box = svg.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200
    if os.environ.get("IPOA_SCREENSHOT"):
        page.screenshot(path=os.environ["IPOA_SCREENSHOT"], full_page=True)
    # Everything from this server: no CDN.
    assert all(url.startswith(live_server) or url.startswith("data:") for url in requests), requests
