"""Administrators' pages: the security log (sign-ins, users and tokens, SMS opt-outs, deploys), newest
first, by kind and by user, a page at a time. People are named in words (web/people.py), each user's
username beside, as the filter takes it."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from ..domain.validation import whole_number
from ..entry.request_context import services
from ..entry.role_check import requires
from ..service import security
from . import people
from .converters import ID_LARGEST

bp = Blueprint("admin", __name__, url_prefix="/admin")

USER_MAX = 80  # the widest actor or subject the log holds


@bp.get("/security")
@requires("security.view")
def security_log():
    kind = (request.args.get("kind") or "").strip()
    user = (request.args.get("user") or "").strip()
    errors = {}
    if kind and kind not in security.KINDS:
        errors["kind"] = "Choose a kind of event from the list."
    if len(user) > USER_MAX or security.has_control_characters(user):
        errors["user"] = f"A username is at most {USER_MAX} characters, without control characters."
    before_text = (request.args.get("before") or "").strip()
    before = whole_number(before_text, 10)
    if before_text and (before is None or not 0 < before <= ID_LARGEST):
        errors["before"] = "The page to show from is a number from the page's own Older link."
    values = {"kind": kind, "user": user}
    if errors:
        return render_template("admin_security.html", page=None, values=values, errors=errors,
                               kinds=security.KINDS, describe=security.describe), 400
    page = security.events(services(), kind=kind or None, user=user or None, before=before)
    people.preload([name for e in page.events for name in (e.actor, e.subject)])  # named by `who`, in one query
    return render_template("admin_security.html", page=page, values=values, errors=errors, before=before,
                           kinds=security.KINDS, describe=security.describe, is_user=people.is_user)
