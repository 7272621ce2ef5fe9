"""A signed-in user's sign-in security (/account): setting up an authenticator app when their role does
not require one (MFA_VOLUNTARY), and new recovery codes; the recovery codes page, which shows a new set
once. Setting up at sign-in, when the role requires it, is auth.mfa_enrol."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import logout_user

from ..entry.request_context import current, services
from ..service import mfa, signin
from . import sessions as web_sessions
from .auth import (
    WRONG_CODE,
    WRONG_NEW_CODE,
    CodeForm,
    SignInForm,
    _safe_next,
    enrolment_page,
    forget_new_secret,
    keep_recovery_codes,
    new_secret_for,
    policy,
    take_recovery_codes,
)

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/security")
def security_page():
    user = current()
    enrolled_at, left = mfa.status(services(), user.id)
    rules = policy()
    return render_template("account_security.html", enrolled_at=enrolled_at, left=left,
                           required=rules.mfa_required(user), offered=rules.mfa_offered(user), form=CodeForm())


@bp.route("/security/set-up", methods=["GET", "POST"])
def set_up():
    user = current()
    if signin.enrolled(user):
        flash("Your authenticator app is already set up.", "info")
        return redirect(url_for("account.security_page"))
    if not policy().mfa_offered(user):
        abort(403)
    secret = new_secret_for(user)
    form = CodeForm()
    page = enrolment_page(user, secret)
    if form.validate_on_submit():
        codes = signin.enrol_signed_in(services(), user.id, secret, form.code.data, request.remote_addr)
        if codes is None:
            return render_template("mfa_enrol.html", form=form, signed_in=True, code_error=WRONG_NEW_CODE,
                                   **page), 422
        forget_new_secret()
        keep_recovery_codes(user, codes)
        return redirect(url_for("account.recovery_codes"))
    status = 422 if form.is_submitted() else 200
    return render_template("mfa_enrol.html", form=form, signed_in=True, **page), status


@bp.post("/security/recovery-codes")
def renew_codes():
    user = current()
    form = CodeForm()
    if not form.validate_on_submit():
        flash("Enter the code from your authenticator app to get new recovery codes.", "error")
        return redirect(url_for("account.security_page"))
    outcome = signin.renew_recovery_codes(services(), policy(), user.id, form.code.data, request.remote_addr)
    if outcome.result == signin.NEEDS_ENROLMENT:
        flash("Set up an authenticator app first.", "error")
        return redirect(url_for("account.security_page"))
    if outcome.result == signin.LOCKED:
        # Too many wrong codes: the account is locked and its sessions have ended, this one too.
        logout_user()
        web_sessions.ended()
        return render_template("login.html", form=SignInForm(formdata=None), locked_until=outcome.locked_until), 401
    if outcome.result == signin.FAILED:
        flash(WRONG_CODE.split(". ")[0] + ". Your recovery codes have not changed.", "error")
        return redirect(url_for("account.security_page"))
    keep_recovery_codes(user, outcome.recovery_codes)
    return redirect(url_for("account.recovery_codes"))


@bp.get("/recovery-codes")
def recovery_codes():
    """A new set of recovery codes, shown this once (they are kept only as hashes)."""
    codes = take_recovery_codes(current())
    if not codes:
        return redirect(url_for("account.security_page"))
    return render_template("recovery_codes.html", codes=codes,
                           next=_safe_next(request.args.get("next")) or url_for("web.index"),
                           issuer=current_app.config.get("MFA_ISSUER") or "ipoa")
