"""Multi-factor sign-in: time-based one-time codes (TOTP, RFC 6238: any authenticator app) and one-time
recovery codes (docs/security.md, "Sign-in, sessions and multi-factor").

- The shared secret is made here (160 bits), shown once as a QR code (inline SVG drawn by segno: no
  request leaves the page) and as text for typing in, and kept in `users.mfa_secret` only once the user
  has proved their app has it by giving a code.
- A code is accepted for the 30 seconds before and after its own (clocks drift), and never twice: the
  time step of the last code accepted is kept (`users.mfa_last_step`), so a code read over a shoulder is
  spent.
- Recovery codes: 10 at enrolment, each about 79 bits, shown once; only their SHA-256 (with the user's id)
  is kept, and each works once. A new set replaces the old.

Wrong codes count towards the lockout like wrong passwords (service/signin.py, which calls this)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

import pyotp
import segno
from markupsafe import Markup

from ..users import User
from . import security

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

INTERVAL = 30
RECOVERY_CODES = 10
# 31 characters that cannot be mistaken for one another (no 0/o, 1/l/i): 16 of them, about 79 bits.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_GROUPS, _RECOVERY_GROUP = 4, 4
# ASCII digits, the whole code: \d also matches "١٢٣٤٥٦", which compare_digest refuses with a TypeError.
_TOTP = re.compile(r"[0-9]{6}")


def required_roles(setting: str | None) -> frozenset[str]:
    """MFA_REQUIRED_ROLES ("supervisor,admin") as a set; "" requires it of nobody."""
    return frozenset(r.strip() for r in (setting or "").split(",") if r.strip())


def new_secret() -> str:
    return pyotp.random_base32(32)  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=INTERVAL).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> Markup:
    """The QR code as an inline SVG element (no image request, nothing sent anywhere)."""
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=5, border=4, dark="#0b0c0c", light="#ffffff",
                        title="QR code to scan with your authenticator app")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-labelledby="qr-title" ', 1)
                  .replace("<title>", '<title id="qr-title">', 1))


def grouped(secret: str) -> str:
    """The secret as it is easiest to type: groups of four."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _step(now: datetime) -> int:
    return int(now.timestamp()) // INTERVAL


def matching_step(secret: str, code: str, now: datetime, after: int | None = None) -> int | None:
    """The time step whose code this is (now, the one before or the one after), if later than `after`."""
    code = re.sub(r"\s", "", code or "")
    if not _TOTP.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, interval=INTERVAL)
    current = _step(now)
    for step in (current - 1, current, current + 1):
        if after is not None and step <= after:
            continue  # that code, or an earlier one, was accepted already
        if hmac.compare_digest(totp.at(step * INTERVAL), code):
            return step
    return None


def accept_totp(user: User, code: str, now: datetime) -> bool:
    """Is this the user's current code, not used before? If so it is spent (user.mfa_last_step)."""
    if not user.mfa_secret:
        return False
    step = matching_step(user.mfa_secret, code, now, after=user.mfa_last_step)
    if step is None:
        return False
    user.mfa_last_step = step
    return True


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalise_recovery(code)) == _RECOVERY_GROUPS * _RECOVERY_GROUP


def _normalise_recovery(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _hash_recovery(user_id: int, code: str) -> str:
    return hashlib.sha256(f"ipoa-recovery:{user_id}:{_normalise_recovery(code)}".encode()).hexdigest()


def _new_recovery_code() -> str:
    chars = [secrets.choice(_ALPHABET) for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP)]
    return "-".join("".join(chars[i:i + _RECOVERY_GROUP]) for i in range(0, len(chars), _RECOVERY_GROUP))


def issue_recovery_codes(uow: UnitOfWork, user_id: int, now: datetime) -> list[str]:
    """A new set of recovery codes (the old set stops working); the codes themselves, to show once."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    uow.recovery_codes.replace(user_id, [_hash_recovery(user_id, c) for c in codes], now)
    return codes


def use_recovery_code(uow: UnitOfWork, user_id: int, code: str, now: datetime) -> bool:
    """Spend a recovery code: True once for each code (two requests racing with the same code: one wins)."""
    if not looks_like_recovery_code(code):
        return False
    return uow.recovery_codes.spend(user_id, _hash_recovery(user_id, code), now)


def recovery_codes_left(uow: UnitOfWork, user_id: int) -> int:
    return uow.recovery_codes.left(user_id)


def enrol(uow: UnitOfWork, user: User, secret: str, step: int, now: datetime) -> list[str]:
    """Keep the secret the user has proved their app holds (the code of `step`); their recovery codes."""
    user.mfa_secret = secret
    user.mfa_enrolled_at = now
    user.mfa_last_step = step
    return issue_recovery_codes(uow, user.id, now)


def status(svc: Services, user_id: int) -> tuple[datetime | None, int]:
    """When the user set up their authenticator app (None: not yet), and how many recovery codes are left."""
    with svc.uow() as uow:
        user = uow.users.get(user_id)
        if user is None or user.mfa_enrolled_at is None:
            return None, 0
        return user.mfa_enrolled_at, recovery_codes_left(uow, user_id)


def reset(svc: Services, actor: str, username: str, client: str | None = None) -> bool:
    """Remove a user's authenticator app and recovery codes (a lost phone): at their next sign-in they set
    it up again if their role requires it. Ends their sessions. False if they had none set up."""
    from . import sessions

    now = svc.clock.now()
    with svc.uow() as uow:
        user = uow.users.find(username)
        if user is None:
            raise LookupError(f"There is no user called {username}.")
        had = user.mfa_enrolled_at is not None
        user.mfa_secret = user.mfa_enrolled_at = user.mfa_last_step = None
        uow.recovery_codes.remove(user.id)
        sessions.end_sessions(uow, user.id, "mfa_reset", now=now)
        security.record(uow, now, security.MFA_RESET, actor, subject=username, client=client)
        uow.commit()
    return had
