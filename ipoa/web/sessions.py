"""Flask's session, held on the server (service/sessions.py): the cookie carries only an opaque id, and
everything Flask keeps in a session (Flask-WTF's CSRF token, flash messages) is in the session's row.

Who is signed in comes from the row, never from the session's contents: Flask-Login's `_user_id` is put
in from the row when the session is opened and never stored, so the only way to be signed in is a row
that says so, and ending the row (sign-out, a password or role change, deactivation, a timeout) signs out
every copy of the cookie at once.

Requests that never use a session (static files, the JSON API with its Bearer tokens, Twilio's webhooks,
health probes) do not read or write one."""
from __future__ import annotations

import itertools
import logging

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSession, SessionInterface

from ..service import security
from ..service import sessions as store
from ..users import User

log = logging.getLogger(__name__)

NO_SESSION_PREFIXES = ("/static/", "/api/", "/webhooks/", "/healthz", "/readyz")
# Requests a page makes by itself (every fragment polled with hx-trigger="every …": the dashboard, the
# queue, a call's page) are not someone at the screen: they do not keep a session from timing out, so a
# screen showing patient details and left open is still signed out (docs/security.md, "Sessions").
PASSIVE_ENDPOINTS = frozenset({"dashboard.fragment", "live.queue_fragment", "live.call_fragment"})
# What a password sign-in keeps of the session before it: a new person starts afresh (a new secret
# or recovery codes shown to whoever used the browser before are not theirs), but a message for
# them ("Signed out.", "Your sign-in took too long") is still shown.
_KEPT_AT_SIGN_IN = frozenset({"_flashes"})
# Flask-Login's keys: who is signed in is the row's to say (see the module's docstring).
_FROM_THE_ROW = frozenset({"_user_id", "_fresh", "_id", "_remember", "_remember_seconds"})
PRUNE_EVERY = 500  # new visitors' sessions, per process
_new_sessions = itertools.count(1)

ENDED_MESSAGES = {
    "idle": "You have been signed out because you did nothing for {idle} minutes. Sign in again to continue.",
    "expired": "You have been signed out because you have been signed in for {hours} hours. Sign in again "
               "to continue.",
}


class ServerSession(SecureCookieSession):
    """A session whose contents live in its row; `sid` is the cookie's id (None: no row yet)."""

    def __init__(self, initial=None, *, sid: str | None = None, row: store.Row | None = None,
                 user: User | None = None, had_cookie: bool = False, persist: bool = True):
        super().__init__(initial)
        self.sid = sid
        self.row = row
        self.user = user  # the row's user, loaded with it (the user loader hands it to Flask-Login)
        self.had_cookie = had_cookie
        self.persist = persist
        self.cookie_changed = False

    def move_to(self, sid: str, *, new_person: bool) -> None:
        """Signing in or giving the second factor: the session now lives under a new id (its row was
        written by the sign-in's unit of work). A password sign-in (`new_person`) keeps only the flash
        messages: whatever the browser's previous user left (a new authenticator secret, recovery codes)
        is not for whoever signs in now. The second factor, given by the user whose password opened the
        half-made session, keeps its contents. Never the CSRF token, which a page shown before could
        have exposed."""
        if new_person:
            for key in [k for k in self if k not in _KEPT_AT_SIGN_IN]:
                del self[key]
        self.pop("csrf_token", None)
        self.sid, self.row, self.user = sid, None, None
        self.cookie_changed = self.modified = True

    def drop(self) -> None:
        """After sign-out: an empty visitor's session (a row is made only if something is put in it)."""
        self.clear()
        self.sid, self.row, self.user = None, None, None
        self.cookie_changed = self.modified = True


class ServerSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()  # Flask's own: keeps flash messages' tuples and Markup

    def get_cookie_name(self, app: Flask) -> str:
        # __Host-: over https, the browser refuses this cookie from a subdomain or without Secure.
        name = app.config["SESSION_COOKIE_NAME"]
        if self.get_cookie_secure(app) and not self.get_cookie_domain(app) and not name.startswith("__"):
            return "__Host-" + name
        return name

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        if request.path.startswith(NO_SESSION_PREFIXES):
            return ServerSession(persist=False)
        sid = request.cookies.get(self.get_cookie_name(app))
        if not store.valid_id(sid):
            return ServerSession(had_cookie=sid is not None)
        svc = app.extensions["ipoa"]
        try:
            return self._open(app, svc, sid, request.remote_addr)
        except Exception as exc:  # noqa: BLE001 - no session rather than no page (the error page, sign-in)
            log.error("session not loaded: %s", type(exc).__name__)
            return ServerSession(persist=False)

    def _open(self, app: Flask, svc, sid: str, client: str | None) -> ServerSession:
        limits = store.Limits.from_config(app.config)
        now = svc.clock.now()
        with svc.uow() as uow:
            row = store.load(uow, sid)
            if row is None:
                return ServerSession(had_cookie=True)
            user = uow.session.get(User, row.user_id) if row.user_id is not None else None
            reason = store.ended_by(row, now, limits)
            if reason is None and row.user_id is not None and (user is None or not user.active):
                reason = "deactivated"  # its own event (user_deactivated) is in the log already
            if reason is not None:
                store.end(uow, sid, now, reason)
                if user is not None and reason in ENDED_MESSAGES:
                    security.record(uow, now, security.SESSION_ENDED, user.username, client=client,
                                    detail={"reason": reason})
                uow.commit()
                fresh = ServerSession(had_cookie=True)
                if row.signed_in and reason in ENDED_MESSAGES:
                    fresh["_flashes"] = [("info", ENDED_MESSAGES[reason].format(
                        idle=_number(limits.idle.total_seconds() / 60),
                        hours=_number(limits.lifetime.total_seconds() / 3600)))]
                return fresh
            if user is not None:
                uow.session.expunge(user)
        data = self._decode(row.data)
        for key in _FROM_THE_ROW:
            data.pop(key, None)
        if row.signed_in:
            data["_user_id"] = str(row.user_id)
        return ServerSession(data, sid=sid, row=row, user=user, had_cookie=True)

    def _decode(self, text: str | None) -> dict:
        if not text:
            return {}
        try:
            data = self.serializer.loads(text)
            return data if isinstance(data, dict) else {}
        except Exception:  # noqa: BLE001 - unreadable contents: start them afresh, keep who is signed in
            return {}

    def save_session(self, app: Flask, session, response: Response) -> None:
        if not isinstance(session, ServerSession) or not session.persist:
            return
        if session.accessed:
            response.vary.add("Cookie")
        try:
            self._save(app, session, response)
        except Exception as exc:  # noqa: BLE001 - the answer goes out; the session's change is lost
            log.warning("session not saved: %s", type(exc).__name__)

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        from flask import request

        svc = app.extensions["ipoa"]
        now = svc.clock.now()
        data = {k: v for k, v in session.items() if k not in _FROM_THE_ROW}
        if session.sid is None:
            if not data:
                if session.had_cookie and (session.modified or session.cookie_changed):
                    self._delete_cookie(app, response)
                return
            limits = store.Limits.from_config(app.config)
            session.sid = store.create_anonymous(svc, now, limits, self.serializer.dumps(data), request.remote_addr)
            self._set_cookie(app, response, session.sid)
            if next(_new_sessions) % PRUNE_EVERY == 0:
                store.prune(svc, now, limits)
            return
        touch = (session.row is not None and now - session.row.last_seen_at >= store.TOUCH_EVERY
                 and request.endpoint not in PASSIVE_ENDPOINTS)
        if session.modified or touch:
            store.write(svc, session.sid, now, data=self.serializer.dumps(data) if session.modified else None,
                        touch=touch)
        if session.cookie_changed:
            self._set_cookie(app, response, session.sid)

    def _set_cookie(self, app: Flask, response: Response, sid: str) -> None:
        # No Expires: the cookie goes when the browser closes; the row decides how long it is good for.
        response.set_cookie(self.get_cookie_name(app), sid, httponly=self.get_cookie_httponly(app),
                            domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                            secure=self.get_cookie_secure(app), samesite=self.get_cookie_samesite(app))
        response.vary.add("Cookie")

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), domain=self.get_cookie_domain(app),
                               path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
                               samesite=self.get_cookie_samesite(app), httponly=self.get_cookie_httponly(app))
        response.vary.add("Cookie")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def current_sid() -> str | None:
    from flask import session

    return getattr(session, "sid", None)


def started(sid: str, *, new_person: bool) -> None:
    """The sign-in's unit of work made a session under this id: this request's answer sets the cookie.
    `new_person`: a password sign-in, which starts from an empty session (ServerSession.move_to)."""
    from flask import session

    _server_session(session).move_to(sid, new_person=new_person)


def ended() -> None:
    from flask import session

    _server_session(session).drop()


def _server_session(session: object) -> ServerSession:
    """Flask types `session` as its base mixin; ServerSessionInterface (above) makes every one a
    ServerSession, and anything else means the interface was not installed."""
    if not isinstance(session, ServerSession):
        raise RuntimeError("the server-side session interface is not installed")
    return session


__all__ = ["ServerSession", "ServerSessionInterface", "current_sid", "started", "ended"]
