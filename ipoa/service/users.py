"""Managing users and their API tokens (the operators' CLI: `flask --app ipoa users ...`). Each change is
one unit of work holding the change and its security event (service/security.py), so the security log
has every change and nothing that did not happen.

`actor` is who is making the change, as the security log names them ("cli:<os user>" at the command
line). Events carry usernames, roles, centre codes, token ids, names and expiry dates and the names of the
fields changed: never a password, a token or a mobile number.

Passwords: at least 12 characters, not a common password, not containing the username
(domain/passwords.py). API tokens: named, expiring (TOKEN_DAYS, 90 by default), shown once (only their
hash is kept). A password reset, a role change or a deactivation ends the user's signed-in sessions."""
from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from ..domain import passwords
from ..domain.validation import normalise_uk_mobile, normalise_uk_phone
from ..users import ROLES, ApiToken, User, hash_token, new_token
from . import security, sessions

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

PASSWORD_MIN, PASSWORD_MAX = passwords.MIN_LENGTH, passwords.MAX_LENGTH
USERNAME_MAX, DISPLAY_NAME_MAX = 64, 120
# API tokens expire: this many days unless the operator says otherwise (TOKEN_DAYS, `--days`), and never
# more than TOKEN_MAX_DAYS, so that a forgotten token in a script dies within a year at most.
TOKEN_DAYS, TOKEN_MAX_DAYS = 90, 366
TOKEN_NAME_MAX = 80  # api_tokens.name
UNNAMED_TOKEN = "unnamed"  # `users token USERNAME` without --name (the alias automation relies on)
# A generated password: 5 groups of 4 from 31 unambiguous characters (no 0/o, 1/l/i), about 99 bits,
# easy to read out over the phone and to type once.
_GENERATED_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
NEEDS_CENTRE = ("handler", "supervisor")


class Keep(enum.Enum):
    """update_user: leave this field as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


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
class UserListing:
    username: str
    display_name: str
    role: str
    centre: str | None
    active: bool
    locked_until: datetime | None
    last_seen_at: datetime | None
    tokens_in_force: int


@dataclass(frozen=True)
class TokenSummary:
    id: int
    created_at: datetime
    revoked_at: datetime | None
    name: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    username: str | None = None

    def state(self, now: datetime) -> str:
        """'revoked', 'expired' or 'in force', as the API would treat the token now."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "in force"


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # shown once: only its hash is kept
    name: str
    expires_at: datetime

    def __iter__(self) -> Iterator[int | str]:
        # `token_id, token = issue_token(...)`, as callers unpacked it before tokens had names and expiry.
        return iter((self.id, self.token))


def create_user(svc: Services, actor: str, *, username: str, role: str, centre: str | None, password: str,
                display_name: str | None = None, mobile: str | None = None) -> UserSummary:
    _check_username(username)
    _check_role(role)
    _check_centre(svc, role, centre)
    _check_password(password, username)
    e164 = _mobile(mobile)
    name = _display_name(display_name if display_name is not None else username)
    now = svc.clock.now()
    with svc.uow() as uow:
        if uow.users.find(username) is not None:
            raise UserError(f"user {username} already exists", "username")
        user = User(username=username, display_name=name, role=role, centre=centre, password=password,
                    created_at=now, mobile=e164)
        uow.users.add(user)
        detail = {"role": role, **({"centre": centre} if centre else {})}
        security.record(uow, now, security.USER_CREATED, actor, subject=username, detail=detail)
        uow.commit()
        return _summary(user)


def update_user(svc: Services, actor: str, username: str, *, display_name: str | Keep = KEEP,
                mobile: str | None | Keep = KEEP, centre: str | None | Keep = KEEP,
                role: str | Keep = KEEP, answer_on: str | None | Keep = KEEP) -> list[str]:
    """Change a user's display name, mobile, centre, role or where they answer phone calls (None clears
    mobile, centre or answer_on); the fields that changed. A role change is its own event (role_changed,
    from and to); the rest are one user_changed naming the fields, never their values."""
    if answer_on is not KEEP:
        answer_on = _answer_on(answer_on)
    if role is not KEEP:
        _check_role(role)
    if display_name is not KEEP:
        display_name = _display_name(display_name)
    if mobile is not KEEP:
        mobile = _mobile(mobile)
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow, username)
        new_role = user.role if role is KEEP else role
        new_centre = user.centre if centre is KEEP else centre
        if role is not KEEP or centre is not KEEP:
            _check_centre(svc, new_role, new_centre)
        wanted = {"display_name": display_name, "mobile": mobile, "centre": centre, "answer_on": answer_on}
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
            # A session opened under the old role must not keep its pages: sign in again.
            _end_sessions(svc, uow, user, now, "role_changed")
        uow.commit()
    return changed


def set_active(svc: Services, actor: str, username: str, active: bool) -> bool:
    """Deactivate or reactivate a user; False if they already were. A deactivated user's web session ends
    at their next request (the session loader refuses inactive users) and their API tokens are refused
    (the API checks the user is active); reactivating them lets the tokens they hold work again."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow, username)
        if bool(user.active) == active:
            return False
        user.active = active
        if not active:
            user.last_seen_at = None  # off the dashboard's "signed in" count at once
            _end_sessions(svc, uow, user, now, "deactivated")
        kind = security.USER_REACTIVATED if active else security.USER_DEACTIVATED
        security.record(uow, now, kind, actor, subject=username)
        uow.commit()
    return True


def set_password(svc: Services, actor: str, username: str, password: str) -> None:
    """Set a user's password (prompted for at the command line) and end their sessions."""
    reset_password(svc, actor, username, password)


def reset_password(svc: Services, actor: str, username: str, password: str | None = None) -> str | None:
    """Set a new password, or generate a strong one when none is given (returned, to be shown once:
    only its hash is kept). Either way the user's signed-in sessions end, so whoever had the old
    password is signed out; the security event says whether it was generated, never the password."""
    generated = password is None
    if password is None:
        password = generate_password(username)
    _check_password(password, username)
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow, username)
        user.set_password(password)
        user.password_changed_at = now
        _end_sessions(svc, uow, user, now, "password_changed")
        security.record(uow, now, security.PASSWORD_CHANGED, actor, subject=username,
                        detail={"generated": True} if generated else None)
        uow.commit()
    return password if generated else None


def generate_password(username: str | None = None) -> str:
    while True:
        chars = [secrets.choice(_GENERATED_ALPHABET) for _ in range(20)]
        candidate = "-".join("".join(chars[i:i + 4]) for i in range(0, 20, 4))
        if passwords.problem(candidate, username) is None:  # all but certain the first time
            return candidate


def list_users(svc: Services) -> list[UserListing]:
    """Every user, by username, with their state and how many API tokens they hold in force."""
    now = svc.clock.now()
    with svc.uow() as uow:
        rows = uow.users.with_tokens_in_force(now)
        return [UserListing(u.username, u.display_name, u.role, u.centre, bool(u.active),
                            u.locked_until if u.locked_until and u.locked_until > now else None,
                            u.last_seen_at, n or 0) for u, n in rows]


def issue_token(svc: Services, actor: str, username: str, *, name: str | None = None,
                days: int | None = None) -> IssuedToken:
    """A new API token for the user, named and expiring in `days` (TOKEN_DAYS by default). Only its hash
    is stored, so the token can be shown once; the security log names it by id and name, with its expiry."""
    name = _token_name(name)
    days = _token_days(days)
    token = new_token()
    now = svc.clock.now()
    expires_at = now + timedelta(days=days)
    with svc.uow() as uow:
        user = _get(uow, username)
        row = ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now, name=name,
                       expires_at=expires_at)
        token_id = uow.users.add_token(row)  # flushed: the token's id, for its event
        security.record(uow, now, security.TOKEN_ISSUED, actor, subject=username,
                        detail={"token_id": token_id, "name": name, "expires_at": expires_at.isoformat(),
                                "days": days})
        uow.commit()
    return IssuedToken(token_id, token, name, expires_at)


def revoke_token(svc: Services, actor: str, token_id: int) -> str:
    """Revoke one token by id; the username it belonged to. An expired token can still be revoked (it
    then shows as revoked, which is what the operator meant)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        row = uow.users.token_with_owner(token_id)
        if row is None:
            raise UserError(f"no API token {token_id}", "token_id")
        token, username = row
        if token.revoked_at is not None:
            raise UserError(f"API token {token_id} was already revoked", "token_id")
        _revoke(uow, actor, now, username, [(token_id, token.name)])  # token.id: the token found by it
        uow.commit()
    return username


def revoke_tokens(svc: Services, actor: str, username: str, name: str | None = None) -> list[int]:
    """Revoke every token of a user not yet revoked (or only those called `name`); their ids."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = _get(uow, username)
        found = uow.users.unrevoked_tokens(user.id, name)
        _revoke(uow, actor, now, username, found)
        uow.commit()
    return [token_id for token_id, _ in found]


def _revoke(uow: UnitOfWork, actor: str, now: datetime, username: str, found: list[tuple[int, str | None]]) -> None:
    if not found:
        return
    uow.users.revoke_tokens([i for i, _ in found], now)
    for token_id, name in found:
        detail = {"token_id": token_id, **({"name": name} if name else {})}
        security.record(uow, now, security.TOKEN_REVOKED, actor, subject=username, detail=detail)


def tokens(svc: Services, username: str | None = None) -> list[TokenSummary]:
    """API tokens, oldest first: a user's, or everyone's (username None). Ids, names and dates only: the
    tokens themselves are not kept."""
    with svc.uow() as uow:
        rows = uow.users.tokens(None if username is None else _get(uow, username).id)
    return [TokenSummary(r.id, r.created_at, r.revoked_at, r.name, r.expires_at, r.last_used_at, r.username)
            for r in rows]


def _end_sessions(svc: Services, uow: UnitOfWork, user: User, now: datetime, reason: str) -> None:
    """End the user's signed-in sessions (server-side: service/sessions.py) in this unit of work, so the
    change and the end of the sessions commit together. The caller records the change's own event."""
    sessions.end_sessions(uow, user.id, reason, now=now)


@dataclass(frozen=True)
class Person:
    """How a page names a user: their name, role and centre."""

    username: str
    display_name: str
    role: str
    centre: str | None


def people(svc: Services, usernames: Iterable[str]) -> dict[str, Person]:
    """The named users (username -> Person), in one query; names that are not users are left out."""
    with svc.uow() as uow:
        return {u.username: Person(u.username, u.display_name, u.role, u.centre) for u in uow.users.named(usernames)}


def get_user(svc: Services, username: str) -> UserSummary:
    with svc.uow() as uow:
        return _summary(_get(uow, username))


# --- checks -------------------------------------------------------------------------------------------

def _get(uow: UnitOfWork, username: str) -> User:
    user = uow.users.find(username)
    if user is None:
        raise UserError(f"no user {username}", "username")
    return user


def _summary(user: User) -> UserSummary:
    return UserSummary(user.username, user.display_name, user.role, user.centre, user.mobile, bool(user.active))


def _check_username(username: str) -> None:
    # The sign-in form takes at most 64 characters, and a username is shown on pages and in logs.
    # Letters, digits and ._-@' only: what the security log records a failed sign-in under as typed
    # (security.looks_like_a_username), so a real username and an unknown one are treated alike.
    if not username or len(username) > USERNAME_MAX or not security.looks_like_a_username(username):
        raise UserError(f"a username is 1 to {USERNAME_MAX} characters: letters, digits and . _ - @ ' only",
                        "username")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role}: choose {', '.join(ROLES)}", "role")


def _check_centre(svc: Services, role: str, centre: str | None) -> None:
    if centre is not None and centre not in svc.directory.centres:
        raise UserError(f"unknown centre {centre}", "centre")
    if role in NEEDS_CENTRE and not centre:
        raise UserError("handlers and supervisors need a home centre", "centre")


def _check_password(password: str, username: str) -> None:
    problem = passwords.problem(password, username)
    if problem is not None:
        raise UserError(problem, "password")


def _token_name(name: str | None) -> str:
    if name is None:
        return UNNAMED_TOKEN
    cleaned = security.printable(name, TOKEN_NAME_MAX + 1)
    if not cleaned or len(cleaned) > TOKEN_NAME_MAX or cleaned != name.strip():
        raise UserError(f"a token's name is 1 to {TOKEN_NAME_MAX} characters, without control characters "
                        "(say what it is for, e.g. 'ambulance-integration')", "name")
    return cleaned


def _token_days(days: int | None) -> int:
    if days is None:
        return TOKEN_DAYS
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= TOKEN_MAX_DAYS:
        raise UserError(f"a token lasts 1 to {TOKEN_MAX_DAYS} days", "days")
    return days


def _mobile(mobile: str | None) -> str | None:
    if mobile is None:
        return None
    e164 = normalise_uk_mobile(mobile)
    if e164 is None:
        raise UserError(f"{mobile!r} is not a valid UK mobile number", "mobile")
    return e164


# A Twilio Client identity as ipoa accepts it: letters, digits and underscores (Twilio's own rule for
# identities that work on every SDK), at most 121 so that client:<identity> fits users.answer_on.
_CLIENT_IDENTITY = re.compile(r"[A-Za-z0-9_]{1,121}")
CLIENT_PREFIX = "client:"


def _answer_on(target: str | None) -> str | None:
    """Where the Answer button dials a caller through to (docs/telephony.md): a UK phone number, stored in
    E.164, or client:<identity>, a Twilio Client (the handler's browser or softphone)."""
    if target is None:
        return None
    if target.startswith(CLIENT_PREFIX):
        if _CLIENT_IDENTITY.fullmatch(target.removeprefix(CLIENT_PREFIX)):
            return target
        raise UserError("a Twilio Client identity is client: then 1 to 121 letters, digits or underscores",
                        "answer_on")
    e164 = normalise_uk_phone(target) if len(target) <= 32 else None
    if e164 is None:
        raise UserError(f"{target[:32]!r} is neither a UK phone number nor client:<identity>", "answer_on")
    return e164


def _display_name(name: str) -> str:
    cleaned = security.printable(name, DISPLAY_NAME_MAX + 1)
    if not cleaned or len(cleaned) > DISPLAY_NAME_MAX:
        raise UserError(f"a display name is 1 to {DISPLAY_NAME_MAX} characters", "display_name")
    return cleaned
