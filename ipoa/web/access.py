"""Sign-in and role checks shared by every blueprint. Everything requires a signed-in user or an API
token, except the few endpoints listed in PUBLIC_ENDPOINTS."""
from __future__ import annotations

import logging
from functools import wraps
from typing import Callable

from flask import Flask, abort, current_app, g, jsonify, render_template, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from ..service import presence
from ..service.calls import Actor
from ..users import User

PUBLIC_ENDPOINTS = {"auth.login", "health.healthz", "health.readyz", "static",
                    "webhooks.sms_status", "webhooks.sms_inbound"}  # Twilio's signature is checked instead
login_manager = LoginManager()
csrf = CSRFProtect()
log = logging.getLogger(__name__)


def services():
    return current_app.extensions["ipoa"]


def actor() -> Actor:
    """The signed-in user as the service layer sees them; a professional's service comes from the
    professional record their sign-in is linked to. Once per request."""
    cached = g.get("ipoa_actor")
    if cached is not None:
        return cached
    user = g.get("api_user") or current_user
    service = None
    if user.role == "professional":
        from ..service import professionals

        prof = professionals.for_user(services(), user.id)
        service = prof.service if prof is not None else None
    g.ipoa_actor = Actor(username=user.username, role=user.role, centre=user.centre, service=service)
    return g.ipoa_actor


def current() -> User:
    return g.get("api_user") or current_user


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
    csrf.init_app(app)

    @login_manager.user_loader
    def _load(user_id: str):
        with services().uow() as uow:
            user = uow.session.get(User, int(user_id))
            if user is not None and user.active:
                uow.session.expunge(user)
                return user
        return None

    pages = {403: ("Not allowed", "Your role does not allow this page."),
             404: ("Not found", "There is nothing at this address."),
             405: ("Not allowed", "That method is not allowed here.")}

    def _error_page(exc):
        code = getattr(exc, "code", 500)
        if request.blueprint == "api" or request.path.startswith("/api/"):
            return jsonify(error={"code": exc.name.lower().replace(" ", "_"), "message": exc.description}), code
        title, message = pages.get(code, (exc.name, exc.description))
        return render_template("error.html", code=code, title=title, message=message), code

    for code in pages:
        app.register_error_handler(code, _error_page)

    @app.errorhandler(500)
    def _server_error(exc):
        # API clients get the JSON error shape even when something unexpected broke.
        if request.path.startswith("/api/"):
            return jsonify(error={"code": "server_error",
                                  "message": "Something went wrong on our side; nothing was saved."}), 500
        return render_template("error.html", code=500, title="Something went wrong",
                               message="Nothing was saved. Please try again; if it persists, tell your supervisor."), 500

    @app.before_request
    def _require_sign_in():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if request.blueprint == "api" or (request.endpoint or "").startswith("bench."):
            return None  # the API authenticates with Bearer tokens in its own before_request
        if not current_user.is_authenticated:
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


def requires(capability: str) -> Callable:
    """Route decorator: the signed-in user's role must grant the capability (403 otherwise)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current()
            if not getattr(user, "is_authenticated", False):
                if request.blueprint == "api":
                    return jsonify(error={"code": "unauthorised", "message": "Sign in first."}), 401
                return login_manager.unauthorized()
            if not user.can(capability):
                if request.blueprint == "api":
                    return jsonify(error={"code": "forbidden",
                                          "message": f"Your role ({user.role}) may not do this."}), 403
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def home_for(user: User) -> str:
    if user.can("calls.read"):
        return url_for("web.queue")
    if user.can("referrals.own"):
        return url_for("web.my_referrals")
    if user.can("workflows.view"):  # administrators: configuration, no patient details
        return url_for("workflows.index")
    return url_for("web.no_access")


__all__ = ["login_manager", "csrf", "services", "actor", "current", "requires", "init_app", "home_for"]
