"""Security headers on every response: pages, the API, error pages, static files, webhooks.

- Content-Security-Policy: scripts and styles from this server only. No inline <script>, no inline event
  handlers, no eval (htmx's hx-on and its injected indicator <style> are off: static/dashboard.js), so a
  name or a summary that smuggles markup past the templates' escaping still cannot run. The one
  exception is the workflow diagram: Mermaid styles the SVG it draws with a <style> element and style
  attributes, so that page alone allows inline *styles* (never inline scripts).
- frame-ancestors 'none' and X-Frame-Options: DENY (older browsers): no page can be framed (clickjacking).
- X-Content-Type-Options: nosniff: a browser never runs a text or JSON answer as a script.
- Referrer-Policy: no-referrer: a call's reference in a URL, or an SMS link's token, never leaves in a
  Referer header.
- Permissions-Policy: no camera, microphone, location, payment or USB for any page.
- Strict-Transport-Security when PUBLIC_BASE_URL is https (behind TLS): browsers keep to https.
- Cache-Control: no-store on everything except static files: pages and API answers carry patient
  details, and must not stay in a shared computer's browser cache or a proxy. Static files (CSS, the
  vendored scripts) hold nothing personal and may be cached.
- Server: no product version anywhere. gunicorn (production, `make run`) drops any Server header an
  application sets and writes its own "Server: gunicorn" (no version since gunicorn 20);
  gunicorn.conf.py removes that line too (quiet_gunicorn below), so answers carry no Server header at
  all. Werkzeug's development server (tests' live servers, `flask run`) writes "Werkzeug/x.y Python/x.y"
  unless the application sets a Server header: it gets a fixed "ipoa" instead.
"""
from __future__ import annotations

from flask import Flask, Response, request

SERVER = "ipoa"
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Pages whose vendored renderer writes inline styles (Mermaid's SVG): styles only, scripts stay strict.
INLINE_STYLE_ENDPOINTS = frozenset({"workflows.diagram"})
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
                      "microphone=(), payment=(), usb=()")
HSTS = "max-age=63072000; includeSubDomains"
# Endpoints whose answers hold nothing personal and may be cached by the browser.
CACHEABLE_ENDPOINTS = frozenset({"static"})


def _csp(inline_styles: bool) -> str:
    policy = dict(POLICY)
    if inline_styles:
        policy["style-src"] = "'self' 'unsafe-inline'"
    return "; ".join(f"{k} {v}" for k, v in policy.items())


CSP = _csp(False)
CSP_INLINE_STYLES = _csp(True)


def init_app(app: Flask) -> None:
    https = str(app.config.get("PUBLIC_BASE_URL", "")).lower().startswith("https://")

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        h = resp.headers
        h["Content-Security-Policy"] = CSP_INLINE_STYLES if request.endpoint in INLINE_STYLE_ENDPOINTS else CSP
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Permissions-Policy"] = PERMISSIONS_POLICY
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        if https:
            h["Strict-Transport-Security"] = HSTS
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            # Whatever a view set (no-cache, a max-age): an answer that may hold patient details is
            # never stored. 404s and other errors too: they come from the same URLs.
            h["Cache-Control"] = "no-store"
        h["Server"] = SERVER
        return resp


def quiet_gunicorn() -> None:
    """gunicorn writes "Server: gunicorn" ahead of the application's headers on every answer (and drops
    the application's own Server header as hop-by-hop); called from gunicorn.conf.py, which gunicorn reads
    from its working directory, this drops that line: no Server header at all."""
    from gunicorn.http import wsgi

    if getattr(wsgi.Response.default_headers, "_ipoa_quiet", False):
        return
    original = wsgi.Response.default_headers

    def default_headers(self):
        return [line for line in original(self) if not line.lower().startswith("server:")]

    default_headers._ipoa_quiet = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers


__all__ = ["init_app", "quiet_gunicorn", "CSP", "CSP_INLINE_STYLES", "PERMISSIONS_POLICY", "SERVER"]
