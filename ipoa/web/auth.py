"""Sign in and out, and the second factor, each recorded in the security log (service/security.py); the
checks, the lockout and the session's row are service/signin.py's, the throttle per address throttle.py's.

A sign-in and its event commit together, and the session cookie is set only after that: if the event
cannot be written the sign-in fails with an error page and nothing is half done. Failing closed is right
for a sign-in (an account used with no record of it is what the log exists to rule out) and costs
little: the user tries again in a minute. A failed sign-in that cannot be recorded gets the same error
page, not the usual "wrong password": otherwise, while the log was failing, the error page would mean
"right password" to someone guessing. Signing out is never blocked: ending a session is always safer
than keeping it, so a sign-out whose event cannot be written is logged and goes ahead.

An unknown username is answered exactly as a known one with a wrong password: same status, same words,
the same time spent checking, and it is locked after as many failures. A locked account's answer is the
same whatever password was typed: nothing is checked while it is locked."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from ..entry.request_context import services
from ..service import mfa, security, signin
from ..service import sessions as session_store
from ..users import User
from . import sessions as web_sessions
from .home import home_for

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)
_UNRECORDED = ("You have not been signed in: we could not record the sign-in. Please try again in a minute; "
               "if it persists, tell your supervisor.")
WRONG = "Unknown username or wrong password."
WRONG_CODE = "That code is not right. Check your authenticator app and try again, or use a recovery code."
WRONG_NEW_CODE = "That code is not right. Check the app shows ipoa and try the code it shows now."
THROTTLED = ("There have been too many failed sign-ins from your network. Wait {wait} and try again. If you "
             "need to sign in now, ask your supervisor.")
TIMED_OUT = "Your sign-in took too long, so it has been stopped. Sign in again."


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


# What a code can hold: the app's 6 digits or a recovery code (letters, digits, hyphens), spaced as typed.
# ASCII only: "١٢٣٤٥٦" or full-width "１２３４５６" are digits to a regular expression's \d, and comparing
# them with the expected code (hmac.compare_digest) raised TypeError: sign-in answered 503 "unavailable",
# and setting up an app while signed in 500 (docs/security.md, "Hostile input").
CODE_CHARACTERS = "Enter the code with the digits 0 to 9 (and, for a recovery code, the letters a to z and hyphens)."


class CodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(message="Enter the code."), Length(max=40),
                                           Regexp(r"[A-Za-z0-9\s-]*\Z", message=CODE_CHARACTERS)])


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect after sign-in is a phishing aid.
    if not target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        # urlsplit drops a tab or line break before checking, and one in a Location header is a 500.
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def policy() -> signin.Policy:
    return signin.Policy.from_config(current_app.config)


def _throttle():
    return current_app.extensions["ipoa_throttle"]


def _throttled(username: str | None):
    """A 429 with Retry-After if this address has failed too often lately; else None, and the attempt
    is counted as under way until this request ends (throttle.Throttle.begin: the check and the count
    are one step, so parallel attempts get no more than the limit)."""
    wait = _throttle().begin(request.remote_addr)
    if wait is None:
        g.signin_attempt_from = request.remote_addr
        return None
    try:
        svc = services()
        with svc.uow() as uow:
            security.record(uow, svc.clock.now(), security.SIGN_IN_REFUSED,
                            security.attempted_username(username), client=request.remote_addr,
                            detail={"reason": "throttled"})
            uow.commit()
    except Exception as exc:  # noqa: BLE001 - refused either way; nothing was checked
        log.error("throttled sign-in not recorded in the security log: %s", type(exc).__name__)
    words = "a minute" if wait <= 60 else f"{-(-wait // 60)} minutes"
    resp = current_app.make_response((render_template(
        "error.html", code=429, title="Too many failed sign-ins", message=THROTTLED.format(wait=words)), 429))
    resp.headers["Retry-After"] = str(wait)
    return resp


@bp.teardown_request
def _attempt_over(exc: BaseException | None) -> None:
    # After the view, which has counted a failure already (`failed`), whatever the outcome or error.
    if "signin_attempt_from" not in g:
        return
    try:
        _throttle().end(g.pop("signin_attempt_from"))
    except Exception as failure:  # noqa: BLE001 - the answer has gone; the count runs out by itself
        log.warning("sign-in attempt not ended in the throttle: %s", type(failure).__name__)


def _unavailable():
    return render_template("error.html", code=503, title="Sign-in is unavailable", message=_UNRECORDED), 503


def _finish(outcome: signin.Outcome, *, new_person: bool):
    """The session moved to its new id: signed in, or on to the second factor. `new_person`: after a
    password, which starts from an empty session (web/sessions.py, ServerSession.move_to); after the
    second factor the half-made session was the same user's."""
    if outcome.sid is None:  # signin names the new session with every outcome that reaches here
        raise RuntimeError(f"sign-in outcome {outcome.result} without its session")
    web_sessions.started(outcome.sid, new_person=new_person)
    nxt = _safe_next(request.args.get("next"))
    if outcome.result == signin.SIGNED_IN:
        if outcome.user is None:  # signin hands over the user with every SIGNED_IN
            raise RuntimeError("signed in without a user")
        login_user(outcome.user)
        if outcome.recovery_codes:
            keep_recovery_codes(outcome.user, outcome.recovery_codes)
            return redirect(url_for("account.recovery_codes", next=nxt))
        if outcome.recovery_codes_left is not None:
            left = outcome.recovery_codes_left
            more = " Get a new set from Sign-in security." if left <= 3 else ""
            flash(f"You used a recovery code. You have {left} left.{more}", "info")
        return redirect(nxt or home_for(outcome.user))
    target = "auth.mfa_code" if outcome.result == signin.NEEDS_CODE else "auth.mfa_enrol"
    return redirect(url_for(target, next=nxt))


def _locked(outcome: signin.Outcome, template: str, **context):
    # The same words for every username, known or not, whatever password or code was typed.
    return render_template(template, locked_until=outcome.locked_until, **context), 401


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignInForm()
    if form.validate_on_submit():
        refused = _throttled(form.username.data)
        if refused is not None:
            return refused
        try:
            outcome = signin.check_password(services(), policy(), form.username.data, form.password.data,
                                            request.remote_addr, replacing=web_sessions.current_sid())
        except Exception as exc:  # noqa: BLE001 - whatever stopped the record, nobody is signed in
            log.error("sign-in refused: the security log could not be written (%s)", type(exc).__name__)
            return _unavailable()
        if outcome.result in (signin.FAILED, signin.LOCKED):
            _throttle().failed(request.remote_addr)
        if outcome.result == signin.LOCKED:
            return _locked(outcome, "login.html", form=form)
        if outcome.result == signin.FAILED:
            flash(WRONG, "error")
            return render_template("login.html", form=form), 401
        return _finish(outcome, new_person=True)
    return render_template("login.html", form=form)


# --- the second factor ----------------------------------------------------------------------------------

def _pending() -> User | None:
    return signin.pending_user(services(), policy(), web_sessions.current_sid())


def _gone():
    web_sessions.ended()
    flash(TIMED_OUT, "error")
    return redirect(url_for("auth.login"))


@bp.route("/login/code", methods=["GET", "POST"])
def mfa_code():
    """The code from the authenticator app (or a recovery code), after the right password."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    user = _pending()
    if user is None:
        return _gone()
    if not signin.enrolled(user):
        return redirect(url_for("auth.mfa_enrol", next=_safe_next(request.args.get("next"))))
    form = CodeForm()
    if form.validate_on_submit():
        refused = _throttled(user.username)
        if refused is not None:
            return refused
        sid = web_sessions.current_sid()
        if sid is None:  # _pending() found the sign-in by it: without one, it has ended
            return _gone()
        try:
            outcome = signin.check_code(services(), policy(), sid, form.code.data, request.remote_addr)
        except Exception as exc:  # noqa: BLE001 - see the module's docstring
            log.error("code refused: the security log could not be written (%s)", type(exc).__name__)
            return _unavailable()
        return _after_code(outcome, "mfa_code.html", form=form)
    status = 422 if form.is_submitted() else 200
    return render_template("mfa_code.html", form=form), status


@bp.route("/login/set-up", methods=["GET", "POST"])
def mfa_enrol():
    """Setting up an authenticator app before the first sign-in that needs one: scan, then a code."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    user = _pending()
    if user is None:
        return _gone()
    if signin.enrolled(user):
        return redirect(url_for("auth.mfa_code", next=_safe_next(request.args.get("next"))))
    secret = new_secret_for(user)
    form = CodeForm()
    if form.validate_on_submit():
        refused = _throttled(user.username)
        if refused is not None:
            return refused
        sid = web_sessions.current_sid()
        if sid is None:  # _pending() found the sign-in by it: without one, it has ended
            return _gone()
        try:
            outcome = signin.confirm_enrolment(services(), policy(), sid, secret, form.code.data,
                                               request.remote_addr)
        except Exception as exc:  # noqa: BLE001 - see the module's docstring
            log.error("enrolment refused: the security log could not be written (%s)", type(exc).__name__)
            return _unavailable()
        if outcome.result == signin.SIGNED_IN:
            forget_new_secret()
        return _after_code(outcome, "mfa_enrol.html", form=form, **enrolment_page(user, secret), new_code=True)
    status = 422 if form.is_submitted() else 200
    return render_template("mfa_enrol.html", form=form, **enrolment_page(user, secret)), status


def enrolment_page(user: User, secret: str) -> dict:
    uri = mfa.provisioning_uri(secret, user.username, current_app.config.get("MFA_ISSUER") or "ipoa")
    return {"qr": mfa.qr_svg(uri), "secret": mfa.grouped(secret), "username": user.username,
            "issuer": current_app.config.get("MFA_ISSUER") or "ipoa"}


def _after_code(outcome: signin.Outcome, template: str, new_code: bool = False, **context):
    if outcome.result in (signin.FAILED, signin.LOCKED):
        _throttle().failed(request.remote_addr)
    if outcome.result == signin.GONE:
        return _gone()
    if outcome.result == signin.LOCKED:
        web_sessions.ended()
        return _locked(outcome, "login.html", form=SignInForm(formdata=None))
    if outcome.result == signin.FAILED:
        return render_template(template, code_error=WRONG_NEW_CODE if new_code else WRONG_CODE, **context), 401
    if outcome.result in (signin.NEEDS_CODE, signin.NEEDS_ENROLMENT):
        target = "auth.mfa_code" if outcome.result == signin.NEEDS_CODE else "auth.mfa_enrol"
        return redirect(url_for(target, next=_safe_next(request.args.get("next"))))
    return _finish(outcome, new_person=False)


# --- what the session holds for one user until it is shown ----------------------------------------------
# A new authenticator secret (until the app's first code confirms it) and a new set of recovery codes
# (until the page shows them once) are kept in the session's row with the id of the user they were made
# for, and are used only for that user: a session that somehow carries them (a shared browser, a planted
# cookie) never shows one person's secret or codes to another (docs/security.md, "Multi-factor sign-in").

def new_secret_for(user: User) -> str:
    """The secret being set up for this user: the one already shown to them, or a new one."""
    kept = session.get("mfa_new_secret")
    if isinstance(kept, dict) and kept.get("user_id") == user.id and isinstance(kept.get("secret"), str):
        return kept["secret"]
    secret = mfa.new_secret()
    session["mfa_new_secret"] = {"user_id": user.id, "secret": secret}  # in the row on the server, never the cookie
    return secret


def forget_new_secret() -> None:
    session.pop("mfa_new_secret", None)


def keep_recovery_codes(user: User, codes: Iterable[str]) -> None:
    session["mfa_recovery_codes"] = {"user_id": user.id, "codes": list(codes)}


def take_recovery_codes(user: User) -> list[str]:
    """The recovery codes made for this user, once (they are removed as they are read); [] if none."""
    kept = session.pop("mfa_recovery_codes", None)
    user_id = getattr(user, "id", None)
    if user_id is not None and isinstance(kept, dict) and kept.get("user_id") == user_id \
            and isinstance(kept.get("codes"), list):
        return [str(code) for code in kept["codes"]]
    return []


# --- signing out --------------------------------------------------------------------------------------

@bp.post("/logout")
def logout():
    _end_session(current_user)
    logout_user()
    web_sessions.ended()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


def _end_session(user) -> None:
    """The session's row is ended (every copy of the cookie with it) and the sign-out recorded, in one
    unit of work; if the event cannot be written, the session is ended all the same."""
    svc = services()
    sid = web_sessions.current_sid()
    now = svc.clock.now()
    try:
        with svc.uow() as uow:
            if sid:
                session_store.end(uow, sid, now, "signed_out")
            if getattr(user, "is_authenticated", False):
                security.record(uow, now, security.SIGN_OUT, user.username, client=request.remote_addr)
            uow.commit()
        return
    except Exception as exc:  # noqa: BLE001 - see the module's docstring: signing out goes ahead
        log.warning("sign-out of %s not recorded in the security log: %s", getattr(user, "username", "?"),
                    type(exc).__name__)
    if sid:
        try:
            with svc.uow() as uow:
                session_store.end(uow, sid, now, "signed_out")
                uow.commit()
        except Exception as exc:  # noqa: BLE001
            log.error("session not ended at sign-out: %s", type(exc).__name__)

