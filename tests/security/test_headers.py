"""Security headers on every kind of answer: pages, the API, error pages (web and API), static files,
webhooks, health probes; the templates free of inline script; and no server banner from gunicorn
(ipoa/web/headers.py, gunicorn.conf.py; docs/security.md, "Headers and hostile input")."""
from __future__ import annotations

import http.client
import re
import socket

import pytest

from ipoa import create_app
from ipoa.config import REPO_ROOT
from ipoa.service import calls as call_service
from ipoa.service.calls import Actor
from tests import processes
from tests.conftest import call_payload, sign_in


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(resp, *, cacheable: bool = False, inline_styles: bool = False) -> None:
    h = resp.headers
    csp = _directives(h.get("Content-Security-Policy", ""))
    assert csp.get("default-src") == ["'self'"], h.get("Content-Security-Policy")
    assert csp.get("script-src") == ["'self'"]  # no inline script, no eval, nothing from elsewhere
    assert csp.get("style-src") == (["'self'", "'unsafe-inline'"] if inline_styles else ["'self'"])
    assert csp.get("frame-ancestors") == ["'none'"]
    assert csp.get("object-src") == ["'none'"] and csp.get("base-uri") == ["'none'"]
    assert csp.get("form-action") == ["'self'"]
    assert h.get("X-Frame-Options") == "DENY"
    assert h.get("X-Content-Type-Options") == "nosniff"
    assert h.get("Referrer-Policy") in ("no-referrer", "same-origin")
    assert "camera=()" in h.get("Permissions-Policy", "") and "geolocation=()" in h["Permissions-Policy"]
    assert h.get("Server") == "ipoa"  # never werkzeug's "Werkzeug/x.y Python/x.y"
    if cacheable:
        assert "no-store" not in h.get("Cache-Control", "")
    else:
        assert h.get("Cache-Control") == "no-store", (resp.request.path, h.get("Cache-Control"))
    assert "Strict-Transport-Security" not in h  # PUBLIC_BASE_URL is http in the tests


@pytest.fixture
def ref(svc, users):
    return call_service.log_call(svc, Actor("handler", "handler", "CNH"), call_payload(), allow_duplicate=True).ref


def test_pages_carry_the_headers_and_are_never_stored(client, users, ref):
    assert_security_headers(client.get("/login"))
    assert sign_in(client, "supervisor").status_code == 302
    for url in ("/queue", f"/calls/{ref}", "/calls/new", "/messages", "/supervisor", "/supervisor/dashboard/fragment",
                "/supervisor/break-glass", "/reports/", "/reports/export.csv", "/supervisor/calls.csv",
                "/workflows/"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert_security_headers(resp)


def test_the_workflow_diagram_alone_allows_inline_styles_never_inline_scripts(client, users, svc):
    sign_in(client, "supervisor")
    version = svc.engine().latest("call").version
    resp = client.get(f"/workflows/call/{version}")
    assert resp.status_code == 200
    assert_security_headers(resp, inline_styles=True)


def test_api_answers_carry_the_headers(client, tokens, ref):
    for url in ("/api/v1/queues", f"/api/v1/calls/{ref}", "/api/v1/openapi.json", f"/api/v1/calls/{ref}/access-log"):
        resp = client.get(url, headers=_auth(tokens["supervisor"]))
        assert resp.status_code == 200, url
        assert_security_headers(resp)
    created = client.post("/api/v1/calls", json=call_payload(), headers=_auth(tokens["handler"]),
                          query_string={"allow_duplicate": "true"})
    assert created.status_code == 201
    assert_security_headers(created)


def test_error_answers_carry_the_headers(client, users, tokens, ref):
    for resp, status in (
            (client.get("/api/v1/calls/NOPE-NOPE", headers=_auth(tokens["handler"])), 404),
            (client.get("/api/v1/queues"), 401),
            (client.post("/api/v1/calls", data="x", content_type="text/plain", headers=_auth(tokens["handler"])), 400),
            (client.put("/api/v1/calls", headers=_auth(tokens["handler"])), 405),
            (client.post("/webhooks/twilio/sms/inbound", data={"Body": "ACCEPT"}), 403),
            (client.get("/no-such-page"), 404)):
        assert resp.status_code == status
        assert_security_headers(resp)
    sign_in(client, "handler.asc")
    resp = client.get(f"/calls/{ref}")  # another centre's call: refused, offering break-glass
    assert resp.status_code == 403
    assert_security_headers(resp)


def test_a_server_error_page_carries_the_headers(app, client, users, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*a, **kw):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr("ipoa.service.work_queues.queue_for", broken)
    sign_in(client, "handler")
    resp = client.get("/queue")
    assert resp.status_code == 500
    assert_security_headers(resp)


def test_static_files_carry_the_headers_and_may_be_cached(client):
    for url in ("/static/app.css", "/static/vendor/htmx.min.js", "/static/dashboard.js"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert_security_headers(resp, cacheable=True)


def test_health_probes_carry_the_headers(client):
    assert_security_headers(client.get("/healthz"))


def test_hsts_under_https(svc, users):
    app = create_app({"TESTING": True, "SERVICES": svc, "SECRET_KEY": "t", "PUBLIC_BASE_URL": "https://ipoa.example.nhs.uk"})
    client = app.test_client()
    for resp in (client.get("/login"), client.get("/static/app.css"), client.get("/api/v1/queues")):
        assert resp.headers.get("Strict-Transport-Security", "").startswith("max-age=")
        assert "includeSubDomains" in resp.headers["Strict-Transport-Security"]


def test_405_answers_say_which_methods_are_allowed(client, users, tokens):
    api = client.delete("/api/v1/calls", headers=_auth(tokens["handler"]))
    assert api.status_code == 405 and api.get_json()["error"]["code"]
    assert set(api.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    sign_in(client, "handler")
    page = client.put("/queue")
    assert page.status_code == 405
    assert "GET" in page.headers["Allow"]


# -- templates and static files ------------------------------------------------------------------------

TEMPLATES = sorted((REPO_ROOT / "templates").glob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_script_handlers_or_styles(template):
    """What a strict policy would block: <script> without src, on...= handlers, hx-on (evaluated as code),
    javascript: URLs, <style> elements and style attributes."""
    html = template.read_text()
    inline_scripts = [m for m in re.findall(r"<script\b[^>]*>", html) if "src=" not in m]
    assert not inline_scripts, inline_scripts
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler"
    assert "hx-on" not in html
    assert "javascript:" not in html.lower()
    assert not re.search(r"<style\b", html, re.I)
    assert not re.search(r"\sstyle\s*=", html, re.I)


def test_charts_draw_without_inline_styles():
    from ipoa.web import charts

    source = (REPO_ROOT / "ipoa" / "web" / "charts.py").read_text()
    assert "style=" not in source and "<style" not in source, charts.__name__


# -- gunicorn: no Server banner --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_sends_no_server_header(svc, tmp_path):
    port = _free_port()
    proc = processes.start("gunicorn", svc, args=["--bind", f"127.0.0.1:{port}", "--workers", "1",
                                                  "--no-control-socket", "ipoa:create_app()"],
                           log_path=tmp_path / "gunicorn.log")
    try:
        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-2000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            except OSError:
                return False
        processes.wait_until(answers, 60, "gunicorn to answer")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        servers = [v for k, v in resp.getheaders() if k.lower() == "server"]
        assert servers == [], servers  # gunicorn's own "Server: gunicorn" removed (gunicorn.conf.py)
        assert resp.getheader("X-Content-Type-Options") == "nosniff"
    finally:
        processes.kill(proc)
