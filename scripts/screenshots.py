"""`make screenshots`: PNGs of each role's main pages into docs/screenshots/, for the README.

Runs the product as `make run` does (ipoa/devserver.py: migrate, demo users and calls, the web app, worker,
relay and scheduler, on the embedded defaults) but on a free port, with its database and embedded Redis in
a temporary folder (./instance and a running `make run` are left alone), then signs in as each demo user
in Debian's chromium (Playwright) and saves the pages."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipoa.adapters.redis_conn import connect, embedded_socket  # noqa: E402
from ipoa.demo import DEMO_PASSWORD  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Shots:
    def __init__(self, page, base: str):
        self.page, self.base, self.saved = page, base, []

    def sign_in(self, username: str) -> None:
        page = self.page
        page.context.clear_cookies()
        page.set_viewport_size(DESKTOP)
        page.goto(f"{self.base}/login")
        page.locator("[name=username]").fill(username)
        page.locator("[name=password]").fill(DEMO_PASSWORD)
        with page.expect_navigation():
            page.locator("[name=password]").press("Enter")

    def save(self, name: str, path: str | None = None, viewport: dict[str, int] = DESKTOP) -> None:
        page = self.page
        page.set_viewport_size(viewport)
        if path is not None:
            page.goto(f"{self.base}{path}")
        page.wait_for_load_state("networkidle")
        target = OUT / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        self.saved.append(target)

    def first_link(self, prefix: str, prefer: str | None = None) -> str:
        links = self.page.locator(f"main a[href^='{prefix}']:not([href$='/new'])")  # a record, not a form
        if prefer and links.filter(has_text=prefer).count():
            links = links.filter(has_text=prefer)
        href = links.first.get_attribute("href")
        if not href:
            raise RuntimeError(f"no link to {prefix} on {self.page.url}")
        return href


def capture(base: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(15000)
        s = Shots(page, base)

        s.sign_in("handler")
        s.save("handler-queue", "/queue")
        call = s.first_link("/calls/", prefer="Sample")  # the demo call in triage: its recommendation shows
        page.goto(f"{base}/calls/new")
        form = page.locator("main form:has([name=summary])")
        with page.expect_navigation():
            form.evaluate("f => { f.noValidate = true; f.requestSubmit(); }")  # empty: every field's message
        s.save("handler-log-a-call-errors")
        s.save("handler-call", call)

        s.sign_in("professional")
        s.save("professional-referrals-390", "/my/referrals", PHONE)
        page.set_viewport_size(DESKTOP)
        s.save("professional-referral-390", s.first_link("/my/referrals/"), PHONE)

        s.sign_in("supervisor")
        s.save("supervisor-dashboard-1366", "/supervisor")
        s.save("supervisor-reports", "/reports/")
        s.save("supervisor-board", "/reports/board")

        s.sign_in("admin")
        s.save("admin-workflows", "/workflows/")
        page.goto(f"{base}{s.first_link('/workflows/call/')}")
        page.wait_for_selector("#diagram[data-rendered='true'] svg")
        s.save("admin-workflow-diagram")
        browser.close()
    return s.saved


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-screenshots-"))
    port = free_port()
    # Our own embedded Redis, so the devserver neither joins nor stops ./instance's.
    socket_path = embedded_socket(tmp / "redis.rdb")
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp / 'ipoa.db'}",
           "REDIS_URL": f"unix://{socket_path}"}
    log = tmp / "devserver.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "ipoa.devserver"], env=env, cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/login")
        saved = capture(base)
    except BaseException:
        print(log.read_text()[-4000:], file=sys.stderr)  # what the server said
        raise
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        try:
            connect(f"unix://{socket_path}").shutdown(nosave=True)
        except Exception:  # noqa: BLE001 - the server closes the connection as it stops
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    for path in saved:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
