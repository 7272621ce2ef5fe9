"""Where a signed-in user lands: the first page their role may use (after sign-in, and at /)."""
from __future__ import annotations

from flask import url_for

from ..users import User


def home_for(user: User) -> str:
    if user.can("calls.read"):
        return url_for("web.queue")
    if user.can("referrals.own"):
        return url_for("web.my_referrals")
    if user.can("workflows.view"):  # administrators: configuration, no patient details
        return url_for("workflows.index")
    return url_for("web.no_access")


__all__ = ["home_for"]
