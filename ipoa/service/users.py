"""Managing users and their API tokens (the operators' CLI: `flask --app ipoa users ...`). Each change is
one unit of work holding the change and its security event (service/security.py), so the security log
has every change and nothing that did not happen.

`actor` is who is making the change, as the security log names them ("cli:<os user>" at the command
line). Events carry usernames, roles, centre codes, token ids and the names of the fields changed: never a
password, a token or a mobile number."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from ..adapters.orm import api_tokens
from ..domain.validation import normalise_uk_mobile
from ..users import ROLES, ApiToken, User, hash_token, new_token
from . import security

PASSWORD_MIN, PASSWORD_MAX = 8, 200  # the sign-in form takes at most 200: a longer one could never sign in
USERNAME_MAX, DISPLAY_NAME_MAX = 64, 120
NEEDS_CENTRE = ("handler", "supervisor")
KEEP = object()  # update_user: leave this field as it is


class UserError(ValueError):
    """A change the service refuses, in plain English; `field` names the input at fault, if one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class UserSummary:
    username: str
    display_name: str
    role: str
    centre: str | None
    mobile: str | None
    active: bool


@dataclass(frozen=True)
class TokenSummary:
    id: int
    created_at: datetime
    revoked_at: datetime | None


def create_user(svc, actor: str, *, username: str, role: str, centre: str | None, password: str,
                display_name: str | None = None, mobile: str | None = None) -> UserSummary:
    _check_username(username)
    _check_role(role)
    _check_centre(svc, role, centre)
    _check_password(password)
    e164 = _mobile(mobile)
    name = _display_name(display_name if display_name is not None else username)
    now = svc.clock.now()
    with svc.uow() as uow:
        if _find(uow.session, username) is not None:
            raise UserError(f"user {username} already exists", "username")
        user = User(username=username, display_name=name, role=role, centre=centre, password=password,
                    created_at=now, mobile=e164)
        uow.session.add(user)
        detail = {"role": role, **({"centre": centre} if centre else {})}
        security.record(uow, now, security.USER_CREATED, actor, subject=username, detail=detail)
        uow.commit()
        return _summary(user)


def update_user(svc, actor: str, username: str, *, display_name=KEEP, mobile=KEEP, centre=KEEP,
                role=KEEP) -> list[str]:
    """Change a user's display name, mobile, centre or role (None clears mobile or centre); the fields
    that changed. A role change is its own event (role_changed, from and to); the rest are one
    user_changed naming the fields, never their values."""
    if role is not KEEP:
        _check_role(role)
    if display_name is not KEEP:
        display_name = _display_name(display_name)
    if mobile is not KEEP:
        mobile = _mobile(mobile)
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow.session, username)
        new_role = user.role if role is KEEP else role
        new_centre = user.centre if centre is KEEP else centre
        if role is not KEEP or centre is not KEEP:
            _check_centre(svc, new_role, new_centre)
        wanted = {"display_name": display_name, "mobile": mobile, "centre": centre}
        changed = [f for f, v in wanted.items() if v is not KEEP and getattr(user, f) != v]
        for field in changed:
            setattr(user, field, wanted[field])
        if changed:
            security.record(uow, now, security.USER_CHANGED, actor, subject=username, detail={"fields": changed})
        if new_role != user.role:
            security.record(uow, now, security.ROLE_CHANGED, actor, subject=username,
                            detail={"from": user.role, "to": new_role})
            user.role = new_role
            changed.append("role")
        uow.commit()
    return changed


def set_active(svc, actor: str, username: str, active: bool) -> bool:
    """Deactivate or reactivate a user; False if they already were. A deactivated user's web session ends
    at their next request (the session loader refuses inactive users) and their API tokens are refused
    (the API checks the user is active); reactivating them lets the tokens they hold work again."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow.session, username)
        if bool(user.active) == active:
            return False
        user.active = active
        if not active:
            user.last_seen_at = None  # off the dashboard's "signed in" count at once
        kind = security.USER_REACTIVATED if active else security.USER_DEACTIVATED
        security.record(uow, now, kind, actor, subject=username)
        uow.commit()
    return True


def set_password(svc, actor: str, username: str, password: str) -> None:
    _check_password(password)
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow.session, username)
        user.set_password(password)
        security.record(uow, now, security.PASSWORD_CHANGED, actor, subject=username)
        uow.commit()


def issue_token(svc, actor: str, username: str) -> tuple[int, str]:
    """A new API token for the user: (its id, the token). Only its hash is stored, so the token can be
    shown once; the security log names it by id."""
    token = new_token()
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow.session, username)
        row = ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now)
        uow.session.add(row)
        uow.session.flush()  # the token's id, for its event
        security.record(uow, now, security.TOKEN_ISSUED, actor, subject=username, detail={"token_id": row.id})
        uow.commit()
    return row.id, token


def revoke_token(svc, actor: str, token_id: int) -> str:
    """Revoke one token by id; the username it belonged to."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = uow.session.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                                  .where(ApiToken.id == token_id)).first()
        if row is None:
            raise UserError(f"no API token {token_id}", "token_id")
        token, username = row
        if token.revoked_at is not None:
            raise UserError(f"API token {token_id} was already revoked", "token_id")
        _revoke(uow, actor, now, username, [token.id])
        uow.commit()
    return username


def revoke_tokens(svc, actor: str, username: str) -> list[int]:
    """Revoke every token of a user still in force; their ids."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow.session, username)
        ids = list(uow.session.scalars(select(ApiToken.id).where(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)))
        _revoke(uow, actor, now, username, ids)
        uow.commit()
    return ids


def _revoke(uow, actor: str, now: datetime, username: str, ids: list[int]) -> None:
    if not ids:
        return
    # revoked_at IS NULL again: a token revoked meanwhile by someone else keeps its first revocation.
    uow.session.execute(update(api_tokens).where(api_tokens.c.id.in_(ids), api_tokens.c.revoked_at.is_(None))
                        .values(revoked_at=now))
    for token_id in ids:
        security.record(uow, now, security.TOKEN_REVOKED, actor, subject=username, detail={"token_id": token_id})


def tokens(svc, username: str) -> list[TokenSummary]:
    """A user's API tokens, oldest first: ids and dates only (the tokens themselves are not kept)."""
    with svc.uow() as uow:
        user = _get(uow.session, username)
        rows = uow.session.execute(select(api_tokens.c.id, api_tokens.c.created_at, api_tokens.c.revoked_at)
                                   .where(api_tokens.c.user_id == user.id).order_by(api_tokens.c.id)).all()
    return [TokenSummary(r.id, r.created_at, r.revoked_at) for r in rows]


def get_user(svc, username: str) -> UserSummary:
    with svc.uow() as uow:
        return _summary(_get(uow.session, username))


# --- checks -------------------------------------------------------------------------------------------

def _find(session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def _get(session, username: str) -> User:
    user = _find(session, username)
    if user is None:
        raise UserError(f"no user {username}", "username")
    return user


def _summary(user: User) -> UserSummary:
    return UserSummary(user.username, user.display_name, user.role, user.centre, user.mobile, bool(user.active))


def _check_username(username: str) -> None:
    # The sign-in form takes at most 64 characters, and a username is shown on pages and in logs.
    if not username or len(username) > USERNAME_MAX or username != security.printable(username, USERNAME_MAX) \
            or any(ch.isspace() for ch in username):
        raise UserError(f"a username is 1 to {USERNAME_MAX} characters, without spaces or control characters",
                        "username")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role}: choose {', '.join(ROLES)}", "role")


def _check_centre(svc, role: str, centre: str | None) -> None:
    if centre is not None and centre not in svc.directory.centres:
        raise UserError(f"unknown centre {centre}", "centre")
    if role in NEEDS_CENTRE and not centre:
        raise UserError("handlers and supervisors need a home centre", "centre")


def _check_password(password: str) -> None:
    if not password or len(password) < PASSWORD_MIN:
        raise UserError(f"at least {PASSWORD_MIN} characters", "password")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"at most {PASSWORD_MAX} characters (the sign-in page takes no more)", "password")


def _mobile(mobile: str | None) -> str | None:
    if mobile is None:
        return None
    e164 = normalise_uk_mobile(mobile)
    if e164 is None:
        raise UserError(f"{mobile!r} is not a valid UK mobile number", "mobile")
    return e164


def _display_name(name: str) -> str:
    cleaned = security.printable(name, DISPLAY_NAME_MAX + 1)
    if not cleaned or len(cleaned) > DISPLAY_NAME_MAX:
        raise UserError(f"a display name is 1 to {DISPLAY_NAME_MAX} characters", "display_name")
    return cleaned
