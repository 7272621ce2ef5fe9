"""Sessions held on the server, in `user_sessions` (docs/security.md, "Sign-in, sessions and multi-factor").

The browser's cookie holds only an opaque random id; the row, keyed by the id's SHA-256 (so a copy of the
table opens nobody's session), says whose session it is, whether the second factor has been given, when it
was last used, when it must end whatever happens, and holds the session's contents (the CSRF token, flash
messages) as JSON. A visitor who has not signed in yet has a row with no user.

A session ends, at once and for every copy of its cookie, when its row is marked ended: at sign-out, when
the user's password or role changes or they are deactivated (`end_sessions`, called by service/users.py),
after SESSION_IDLE_MINUTES without a request, or SESSION_MAX_HOURS after sign-in (a shift). Signing in,
and giving the second factor, move the session to a new id, so an id known before (planted, or seen on a
shared computer) is worth nothing after.

Times come from svc.clock, never the wall clock, so tests stand at any instant. `last_seen_at` is written
at most once a minute (not on every request), so the idle timeout is exact to within a minute."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeGuard

from ..adapters.session_store import SessionRow

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

TOUCH_EVERY = timedelta(minutes=1)
# Between the password and the second factor: long enough to find a phone, short enough that a password
# typed on a shared computer and walked away from does not wait there for long.
PENDING_MFA_FOR = timedelta(minutes=10)
# Rows of ended sessions are kept this long (who was signed in, from where, why it ended), then removed.
KEEP_ENDED = timedelta(days=30)
REASON_MAX = 32  # user_sessions.end_reason
CLIENT_MAX = 64  # user_sessions.client


@dataclass(frozen=True)
class Limits:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return cls(idle=timedelta(minutes=float(config.get("SESSION_IDLE_MINUTES", 30))),
                   lifetime=timedelta(hours=float(config.get("SESSION_MAX_HOURS", 12))))


Row = SessionRow  # one type for a stored session: the store's row (adapters/session_store.py)


def new_id() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def key_for(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def valid_id(sid: str | None) -> TypeGuard[str]:
    return sid is not None and 20 <= len(sid) <= 64 and all(c.isalnum() or c in "-_" for c in sid)


def load(uow: UnitOfWork, sid: str) -> Row | None:
    """The session's row if it has not ended (it may have run out: see `ended_by`), read in the caller's
    unit of work."""
    return uow.sessions.open(key_for(sid))


def ended_by(row: Row, now: datetime, limits: Limits) -> str | None:
    """Why a loaded session has ended by now ("idle", "expired"), or None if it stands."""
    if now >= row.expires_at:
        return "expired"
    # The half-made session's 10 minutes run from the password (the row is made then), not from the last
    # request: reloading the code page does not keep it waiting (docs/security.md, "Multi-factor sign-in").
    if row.pending_mfa and now - row.created_at > PENDING_MFA_FOR:
        return "expired"
    if now - row.last_seen_at > limits.idle:
        return "idle"
    return None


def create_anonymous(svc: Services, now: datetime, limits: Limits, data: str, client: str | None = None) -> str:
    """A row for a visitor not signed in, holding what their session has (a CSRF token, a message)."""
    sid = new_id()
    with svc.uow() as uow:
        uow.sessions.add(
            id=key_for(sid), user_id=None, created_at=now, last_seen_at=now, expires_at=now + limits.lifetime,
            client=_fit(client, CLIENT_MAX), data=data)
        uow.commit()
    return sid


def begin(uow: UnitOfWork, now: datetime, user_id: int, limits: Limits, *, verified: bool, client: str | None,
          replacing: str | None = None) -> str:
    """A signed-in session (verified) or one waiting for the second factor, in the sign-in's own unit of
    work; the session it replaces (the visitor's) is removed, or ended if it belonged to someone."""
    if replacing:
        uow.sessions.retire(key_for(replacing), now, "replaced")
    sid = new_id()
    uow.sessions.add(
        id=key_for(sid), user_id=user_id, created_at=now, last_seen_at=now, expires_at=now + limits.lifetime,
        mfa_verified_at=now if verified else None, client=_fit(client, CLIENT_MAX))
    return sid


def verified(uow: UnitOfWork, sid: str, now: datetime) -> str | None:
    """The second factor was given: the session moves to a new id and counts as signed in from now. The
    new id, or None if the session has ended meanwhile."""
    new = new_id()
    moved = uow.sessions.update_open(key_for(sid), id=key_for(new), mfa_verified_at=now, last_seen_at=now)
    return new if moved == 1 else None


def end(uow: UnitOfWork, sid: str, now: datetime, reason: str) -> bool:
    """End one session (sign-out, timeout); True if it was still open."""
    return uow.sessions.update_open(key_for(sid), ended_at=now, end_reason=_fit(reason, REASON_MAX)) == 1


def end_sessions(uow: UnitOfWork, user_id: int, reason: str, *, now: datetime) -> int:
    """End every open session of a user at once (password or role changed, deactivated); the number ended.
    In the caller's unit of work, so that the change and the end of the sessions commit together; `now` is
    the caller's (from svc.clock). The caller records its own security event (password_changed,
    role_changed, user_deactivated): this records none."""
    return uow.sessions.end_for_user(user_id, now, _fit(reason, REASON_MAX))


def write(svc: Services, sid: str, now: datetime, *, data: str | None = None, touch: bool = False) -> bool:
    """Save a session's contents and/or that it was used now; False if it has ended meanwhile (a sign-out
    in another tab), in which case nothing is written."""
    values: dict[str, Any] = {}
    if data is not None:
        values["data"] = data
    if touch:
        values["last_seen_at"] = now
    if not values:
        return True
    with svc.uow() as uow:
        done = uow.sessions.update_open(key_for(sid), **values)
        uow.commit()
    return done == 1


def prune(svc: Services, now: datetime, limits: Limits) -> int:
    """Remove visitors' sessions unused for longer than the idle timeout, and signed-in sessions that
    ended or ran out more than KEEP_ENDED ago. Run now and then by the web app (web/sessions.py)."""
    old = now - KEEP_ENDED
    with svc.uow() as uow:
        gone = uow.sessions.prune(now, now - limits.idle, old)
        uow.commit()
    return gone


def _fit(value: str | None, width: int) -> str | None:
    return None if value is None else str(value)[:width]
