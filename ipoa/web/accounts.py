"""Locked accounts (/accounts/locked): a supervisor unlocks their centre's users, an administrator anyone.
Each unlock is an `account_unlocked` security event (service/signin.py, `unlock`, which the CLI's
`users unlock` also uses)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..entry.request_context import current, services
from ..entry.role_check import requires
from ..service import security, signin

bp = Blueprint("accounts", __name__, url_prefix="/accounts")
USERNAME_MAX = 64


def _centre_scope(user) -> str | None:
    """None: every user (administrators); otherwise the user's own centre's users only."""
    return None if user.role == "admin" else (user.centre or "")


@bp.get("/locked")
@requires("accounts.unlock")
def locked():
    user = current()
    scope = _centre_scope(user)
    return render_template("locked_accounts.html", accounts=signin.locked_accounts(services(), scope),
                           centre=scope)


@bp.post("/unlock")
@requires("accounts.unlock")
def unlock():
    user = current()
    username = (request.form.get("username") or "").strip()
    if not username or len(username) > USERNAME_MAX or security.has_control_characters(username):
        flash("Choose an account to unlock.", "error")
        return redirect(url_for("accounts.locked"))
    try:
        was_locked = signin.unlock(services(), user.username, username, centre=_centre_scope(user),
                                   client=request.remote_addr)
    except LookupError:
        flash(f"There is no account called {security.printable(username)} that you can unlock.", "error")
        return redirect(url_for("accounts.locked"))
    if was_locked:
        flash(f"{username} is unlocked and can sign in again.", "success")
    else:
        flash(f"{username} was not locked. Their failed sign-ins have been cleared.", "info")
    return redirect(url_for("accounts.locked"))
