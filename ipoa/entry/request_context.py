"""Who is asking and with what: the services object the app was built with, the signed-in user or the
API token's user, and that user as the service layer sees them (an Actor). Both the web pages and the
API ask these, once per request."""
from __future__ import annotations

from flask import current_app, g
from flask_login import current_user

from ..service.calls import Actor
from ..users import User


def services():
    return current_app.extensions["ipoa"]


def current() -> User:
    """The API token's user (api/tokens.py) or the signed-in user."""
    return g.get("api_user") or current_user


def actor() -> Actor:
    """The signed-in user as the service layer sees them; a professional's service comes from the
    professional record their sign-in is linked to. Once per request."""
    cached = g.get("ipoa_actor")
    if cached is not None:
        return cached
    user = current()
    service = None
    if user.role == "professional":
        from ..service import professionals

        prof = professionals.for_user(services(), user.id)
        service = prof.service if prof is not None else None
    g.ipoa_actor = Actor(username=user.username, role=user.role, centre=user.centre, service=service)
    return g.ipoa_actor


__all__ = ["services", "current", "actor"]
