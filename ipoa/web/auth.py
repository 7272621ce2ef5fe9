"""Sign in and out, each recorded in the security log (service/security.py).

A sign-in and its event commit together, and the session cookie is set only after that: if the event
cannot be written the sign-in fails with an error page and nothing is half done. Failing closed is right
for a sign-in (an account used with no record of it is what the log exists to rule out) and costs
little: the user tries again in a minute. A failed sign-in that cannot be recorded gets the same error
page, not the usual "wrong password": otherwise, while the log was failing, the error page would mean
"right password" to someone guessing. Signing out is never blocked: ending a session is always safer
than keeping it, so a sign-out whose event cannot be written is logged and goes ahead."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..service import security
from ..users import User
from .access import home_for, services

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)
_DUMMY_HASH = generate_password_hash("not a password anyone has")
_UNRECORDED = ("You have not been signed in: we could not record the sign-in. Please try again in a minute; "
               "if it persists, tell your supervisor.")


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect after sign-in is a phishing aid.
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignInForm()
    if form.validate_on_submit():
        try:
            user = _check_and_record(form.username.data, form.password.data, request.remote_addr)
        except Exception as exc:  # noqa: BLE001 - whatever stopped the record, nobody is signed in
            log.error("sign-in refused: the security log could not be written (%s)", type(exc).__name__)
            return render_template("error.html", code=503, title="Sign-in is unavailable", message=_UNRECORDED), 503
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash("Unknown username or wrong password.", "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


def _check_and_record(username: str, password: str, client: str | None) -> User | None:
    """The user if the credentials are right (and the account active), else None; either way the
    attempt is in the security log when this returns. The failure's detail never says whether the
    username exists, and never holds the password."""
    svc = services()
    now = svc.clock.now()
    with svc.uow() as uow:
        user = None if security.has_control_characters(username) else uow.session.scalars(
            select(User).where(User.username == username)).one_or_none()
        if user is None:
            # Spend the same time as a real check, so response times don't reveal which usernames exist.
            check_password_hash(_DUMMY_HASH, password)
        # The password first: a deactivated account takes as long to refuse as a wrong password.
        ok = user is not None and user.check_password(password) and user.is_active
        if ok:
            uow.session.expunge(user)
            security.record(uow, now, security.SIGN_IN, user.username, client=client)
        else:
            security.record(uow, now, security.SIGN_IN_FAILED, security.printable(username) or "(blank)",
                            client=client, detail={"reason": "bad_credentials"})
        uow.commit()
    return user if ok else None


@bp.post("/logout")
def logout():
    _record_sign_out(current_user)
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


def _record_sign_out(user) -> None:
    try:
        svc = services()
        with svc.uow() as uow:
            security.record(uow, svc.clock.now(), security.SIGN_OUT, user.username, client=request.remote_addr)
            uow.commit()
    except Exception as exc:  # noqa: BLE001 - see the module's docstring: signing out goes ahead
        log.warning("sign-out of %s not recorded in the security log: %s", user.username, type(exc).__name__)
