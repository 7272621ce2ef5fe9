"""Sign-in for every blueprint, and the app's error pages (JSON on /api: ipoa/entry/json_errors.py).
Everything requires a signed-in user or an API token, except the few endpoints listed in PUBLIC_ENDPOINTS;
the role check on each route is ipoa/entry/role_check.py.

init_app also wires sign-in itself: the session held on the server (web/sessions.py), the throttle per
client address (web/throttle.py), the pages for the second factor and locked accounts, and the client's
address behind TRUSTED_PROXY_COUNT proxies (docs/security.md, "Sign-in, sessions and multi-factor")."""
from __future__ import annotations

import logging

from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..entry.json_errors import is_api_request, json_error
from ..entry.request_context import services
from ..service import presence

PUBLIC_ENDPOINTS = {"auth.login", "health.healthz", "health.readyz", "static",
                    "webhooks.sms_status", "webhooks.sms_inbound",  # Twilio's signature is checked instead
                    "voice_webhooks.incoming", "voice_webhooks.menu", "voice_webhooks.queue_wait",
                    "voice_webhooks.queue_left", "voice_webhooks.dial_result",
                    "voice_webhooks.status",  # the same: web/voice_webhooks.py
                    "bench_voice.bare_twiml", "bench_voice.write_twiml",  # bench/voice.py's baselines, signed the
                    # same (web/bench_voice.py)
                    "auth.mfa_code", "auth.mfa_enrol"}  # the second factor: they check the half-made session
login_manager = LoginManager()
csrf = CSRFProtect()
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    from . import accounts, mfa, sessions, throttle

    if app.config.get("TRUSTED_PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXY_COUNT"])
        # Werkzeug's documented way to wrap the app; Flask's types declare wsgi_app a method, not a slot.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        # Secure by default behind https: the cookie never travels in clear.
        https = str(app.config.get("PUBLIC_BASE_URL", "")).lower().startswith("https://")
        app.config["SESSION_COOKIE_SECURE"] = https
    app.session_interface = sessions.ServerSessionInterface()
    # The services' Redis (a test's own, or the app's REDIS_URL), shared by every web process.
    redis_url = getattr(app.extensions.get("ipoa"), "redis_url", None) or app.config.get("REDIS_URL")
    app.extensions["ipoa_throttle"] = throttle.Throttle.from_config({**app.config, "REDIS_URL": redis_url})
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
    # Its guess at a stolen cookie (a changed address or browser) is moot: the session is the server's
    # row, which sign-out and the timeouts end; and it would rewrite the session on every such change.
    login_manager.session_protection = None
    csrf.init_app(app)
    app.register_blueprint(mfa.bp)
    app.register_blueprint(accounts.bp)

    @login_manager.user_loader
    def _load(user_id: str):
        # The session's row says who is signed in (web/sessions.py): only its user, loaded with it, and
        # only while active. Nothing else in the session, nor a remember-me cookie, signs anyone in.
        row, user = getattr(session, "row", None), getattr(session, "user", None)
        if row is None or not row.signed_in or user is None or str(row.user_id) != str(user_id):
            return None
        return user if user.active else None

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc):
        # Most often a form left open past the session's end: say so, and offer sign-in again.
        if request.blueprint != "api" and not current_user.is_authenticated:
            flash("Your session had ended, so that was not sent. Sign in and try again.", "error")
            return redirect(url_for("auth.login"))
        return render_template("error.html", code=400, title="Form expired",
                               message="The form had expired, so nothing was saved. Go back, reload the page "
                                       "and try again."), 400

    pages = {403: ("Not allowed", "Your role does not allow this page."),
             404: ("Not found", "There is nothing at this address."),
             405: ("Not allowed", "That method is not allowed here.")}

    def _error_page(exc):
        code = getattr(exc, "code", 500)
        if is_api_request():
            return json_error(code, exc.name.lower().replace(" ", "_"), exc.description)
        title, message = pages.get(code, (exc.name, exc.description))
        return render_template("error.html", code=code, title=title, message=message), code

    for code in pages:
        app.register_error_handler(code, _error_page)

    @app.errorhandler(500)
    def _server_error(exc):
        # API clients get the JSON error shape even when something unexpected broke.
        if is_api_request():
            return json_error(500, "server_error", "Something went wrong on our side; nothing was saved.")
        return render_template("error.html", code=500, title="Something went wrong",
                               message="Nothing was saved. Please try again; if it persists, tell your "
                                       "supervisor."), 500

    @app.before_request
    def _require_sign_in():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if request.blueprint == "api" or (request.endpoint or "").startswith("bench."):
            return None  # the API authenticates with Bearer tokens in its own before_request
        if not current_user.is_authenticated:
            pending = getattr(session, "row", None)
            if pending is not None and pending.pending_mfa and not request.headers.get("HX-Request"):
                # The password was right; nothing else until the second factor is given (or set up).
                return redirect(url_for("auth.mfa_code", next=request.full_path.rstrip("?")))
            if request.headers.get("HX-Request"):
                # The dashboard's polling, after the session ended: send the whole page to sign-in
                # rather than swapping the sign-in form into the figures.
                resp = current_app.response_class(status=401)
                resp.headers["HX-Redirect"] = url_for(
                    "auth.login", next=url_for("web.supervisor") if request.blueprint == "dashboard" else None)
                return resp
            return login_manager.unauthorized()
        if request.endpoint == "auth.logout" and request.method == "POST":
            note_signed_out(current_user)  # CSRF is checked before this runs
        else:
            note_seen(current_user)
        return None


def note_seen(user) -> None:
    """Record that a signed-in user made a request: at most once a minute each, in its own small
    transaction, and never failing the request (a locked or unreachable database only skips it)."""
    try:
        now = services().clock.now()
        seen = user.last_seen_at
        if seen is not None and now - seen < presence.SEEN_EVERY:
            return
        presence.record_seen(services(), user.id, now)
        user.last_seen_at = now
    except Exception as exc:  # noqa: BLE001 - a figure on a dashboard is not worth a failed request
        log.warning("last_seen_at not recorded for user %s: %s", getattr(user, "id", "?"), type(exc).__name__)


def note_signed_out(user) -> None:
    """Signing out takes a handler off the dashboard's "signed in" count at once."""
    try:
        presence.record_signed_out(services(), user.id)
    except Exception as exc:  # noqa: BLE001
        log.warning("last_seen_at not cleared for user %s: %s", getattr(user, "id", "?"), type(exc).__name__)


__all__ = ["login_manager", "csrf", "init_app"]
