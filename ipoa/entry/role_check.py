"""The route decorator every blueprint uses: the user's role must grant the capability (ipoa/users.py,
CAPABILITIES). The API answers in its JSON error shape; pages send the user to sign in, or 403."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, current_app, request

from .json_errors import json_error
from .request_context import current


def requires(capability: str) -> Callable:
    """Route decorator: the signed-in user's role must grant the capability (403 otherwise)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current()
            if not getattr(user, "is_authenticated", False):
                if request.blueprint == "api":
                    return json_error(401, "unauthorised", "Sign in first.")
                # Flask-Login's manager, set up by the web's init_app (web/access.py). Flask-Login ships no
                # types and adds the attribute to the app at run time, so Flask's type does not know it.
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if not user.can(capability):
                if request.blueprint == "api":
                    return json_error(403, "forbidden", f"Your role ({user.role}) may not do this.")
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


__all__ = ["requires"]
