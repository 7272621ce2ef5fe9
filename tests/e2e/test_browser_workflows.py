"""The workflow diagram drawn by the vendored Mermaid in a real browser (Playwright driving Debian's
chromium); fixtures as in test_browser.py."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests.conftest import call_payload

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
