"""Bearer tokens on the JSON API: who is calling. Issued by `flask --app ipoa tokens issue` (or its alias
`users token`), named, expiring (docs/security.md, "Accounts and tokens")."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import Response, g, request
from sqlalchemy import or_, select, update

from ..adapters.orm import api_tokens, users
from ..entry.json_errors import json_error
from ..entry.request_context import services
from ..users import User, hash_token

log = logging.getLogger(__name__)

# last_used_at is for operators ("is this integration still calling?"), not an audit trail: written at
# most once a minute per token, so a busy integration costs one UPDATE a minute, not one per request.
LAST_USED_EVERY = timedelta(minutes=1)


def _unauthorised(code: str, message: str) -> Response:
    """A 401 in the JSON error shape, naming the scheme to authenticate with (RFC 9110, 11.6.1)."""
    resp = json_error(401, code, message)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="ipoa"'
    return resp


def authenticate():
    """The API blueprint's before_request: the token's user in g.api_user, or a 401 that says why
    (unknown, revoked, expired, or the user deactivated). One SELECT; at most once a minute per token
    also an UPDATE of last_used_at in the same transaction."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorised("unauthorised", "Send 'Authorization: Bearer <token>'.")
    svc = services()
    now = svc.clock.now()
    with svc.uow() as uow:
        found = uow.session.execute(
            select(User, api_tokens.c.id, api_tokens.c.revoked_at, api_tokens.c.expires_at,
                   api_tokens.c.last_used_at)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == hash_token(token.strip()))
        ).first()
        if found is None or found.revoked_at is not None:
            return _unauthorised("unauthorised", "Unknown or revoked token.")
        user = found[0]
        if found.expires_at is not None and found.expires_at <= now:
            # Saying so lets the integration's owner ask for a new token rather than hunt for a typo.
            return _unauthorised("token_expired",
                                 f"This API token expired on {found.expires_at:%Y-%m-%d %H:%M} UTC; ask an "
                                 "administrator for a new one.")
        if not user.active:
            return _unauthorised("unauthorised", "Unknown or revoked token.")
        if found.last_used_at is None or now - found.last_used_at >= LAST_USED_EVERY:
            _note_used(uow, found.id, now)
        uow.session.expunge(user)
    g.api_user = user
    g.api_token_id = found.id
    return None


def _note_used(uow, token_id: int, now) -> None:
    """Record the token's use; never fail the request over it (a busy or locked row only skips it). The
    WHERE repeats the once-a-minute test, so concurrent requests of one token write it once."""
    try:
        uow.session.execute(update(api_tokens).where(
            api_tokens.c.id == token_id,
            or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at <= now - LAST_USED_EVERY))
            .values(last_used_at=now))
        uow.session.commit()
    except Exception as exc:  # noqa: BLE001 - a "last used" date is not worth a failed request
        uow.session.rollback()
        log.warning("last_used_at not recorded for API token %s: %s", token_id, type(exc).__name__)
