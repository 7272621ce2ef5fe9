"""Bearer tokens on the JSON API: who is calling. Issued by `flask --app ipoa users token`."""
from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from ..users import ApiToken, User, hash_token
from ..web.access import services
from .errors import error


def authenticate():
    """The API blueprint's before_request: the token's user in g.api_user, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "unauthorised", "Send 'Authorization: Bearer <token>'.")
    with services().uow() as uow:
        row = uow.session.execute(
            select(User).join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked_at.is_(None))
        ).scalar_one_or_none()
        if row is None or not row.active:
            return error(401, "unauthorised", "Unknown or revoked token.")
        uow.session.expunge(row)
    g.api_user = row
    return None
