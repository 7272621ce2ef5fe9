"""Sign in and out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..users import User
from .access import home_for, services

bp = Blueprint("auth", __name__)
_DUMMY_HASH = generate_password_hash("not a password anyone has")


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
        with services().uow() as uow:
            user = uow.session.scalars(select(User).where(User.username == form.username.data)).one_or_none()
            if user is None:
                # Spend the same time as a real check, so response times don't reveal which usernames exist.
                check_password_hash(_DUMMY_HASH, form.password.data)
            ok = user is not None and user.is_active and user.check_password(form.password.data)
            if ok:
                uow.session.expunge(user)
        if ok:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash("Unknown username or wrong password.", "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


@bp.post("/logout")
def logout():
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
