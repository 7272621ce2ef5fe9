"""Signing in: the password, the lockout, the second factor, and unlocking (docs/security.md, "Sign-in,
sessions and multi-factor").

Each attempt is one unit of work holding the check, its security event, the lockout's bookkeeping and the
new session's row: they commit together or not at all, so an account is never used without a record of it
(web/auth.py fails closed when the record cannot be written).

The lockout, per username, whether or not anyone has that username (so the answers never tell which
usernames exist): failed sign-ins and wrong codes are counted from the security log, since the later of
SIGNIN_WINDOW_MINUTES ago and the last reset (a sign-in, an unlock, the last lock); the SIGNIN_MAX_FAILURES-th
locks the username for SIGNIN_LOCK_MINUTES, or until a supervisor or an administrator unlocks it. A known
user's lock is `users.locked_until` (an account is locked while it is in the future; `unlock` clears it
and sets `failures_since`); an unknown username's is its latest `account_locked` event. While locked,
attempts are refused without checking anything, so a locked account's answer cannot say whether the
password was right. Attempts on one username are taken one at a time (a PostgreSQL advisory lock; SQLite
has one writer anyway), so a burst of parallel guesses gets no more than its share.

A password right for a user whose role needs a second factor (MFA_REQUIRED_ROLES), or who has set one up,
opens a session that does not count as signed in until the code (or a recovery code) is given, or, if
they have not set up an authenticator app yet, until they have. Only then are the failures reset: a
right password does not reset them, or a guesser who has it could try codes for ever."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..adapters.passwords import check_password_hash, generate_password_hash
from ..users import User
from . import mfa, security, sessions

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

_DUMMY_HASH = generate_password_hash("not a password anyone has")

SIGNED_IN = "signed_in"
NEEDS_CODE = "needs_code"              # the password was right; now the code from the app
NEEDS_ENROLMENT = "needs_enrolment"    # the password was right; set up an authenticator app first
FAILED = "failed"
LOCKED = "locked"
GONE = "gone"                          # the half-finished sign-in has ended (timed out, deactivated)

_COUNTED = (security.SIGN_IN_FAILED, security.MFA_FAILED)


@dataclass(frozen=True)
class Policy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)
    mfa_roles: frozenset[str] = frozenset({"supervisor", "admin"})
    mfa_voluntary: bool = True
    limits: sessions.Limits = field(default_factory=sessions.Limits)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        return cls(max_failures=int(config.get("SIGNIN_MAX_FAILURES", 5)),
                   window=timedelta(minutes=float(config.get("SIGNIN_WINDOW_MINUTES", 15))),
                   lock_for=timedelta(minutes=float(config.get("SIGNIN_LOCK_MINUTES", 15))),
                   mfa_roles=mfa.required_roles(config.get("MFA_REQUIRED_ROLES", "supervisor,admin")),
                   mfa_voluntary=bool(config.get("MFA_VOLUNTARY", True)),
                   limits=sessions.Limits.from_config(config))

    def mfa_required(self, user: User) -> bool:
        return user.role in self.mfa_roles

    def mfa_offered(self, user: User) -> bool:
        return self.mfa_required(user) or self.mfa_voluntary or enrolled(user)


@dataclass(frozen=True)
class Outcome:
    result: str
    user: User | None = None          # detached; for the web layer's login_user
    sid: str | None = None            # the session's new id (the cookie's value)
    locked_until: datetime | None = None
    recovery_codes: tuple[str, ...] = ()  # after enrolment: shown once
    recovery_codes_left: int | None = None


def enrolled(user: User) -> bool:
    return user.mfa_enrolled_at is not None and bool(user.mfa_secret)


# --- the password ------------------------------------------------------------------------------------

def check_password(svc: Services, policy: Policy, username: str, password: str, client: str | None,
                   replacing: str | None = None) -> Outcome:
    """One sign-in attempt with a username and password; `replacing` is the visitor's session id, which
    the new session replaces (so an id known before sign-in is useless after it)."""
    now = svc.clock.now()
    # One spelling of what was typed for the whole attempt: the lock's key, the lookup, the count and the
    # lockout. Spaces around it and invisible characters in it are not part of a username (no username has
    # them: users._check_username), so "handler " is handler, found, checked and locked as handler; were
    # the lookup exact and the count not, a variant spelling would lock an unknown name but not a known
    # one, and the answers would tell them apart (docs/security.md, "Signing in").
    typed = security.printable(username)
    with svc.uow() as uow:
        uow.users.one_at_a_time(typed or "(blank)")  # a lock's key, never stored
        user = uow.users.find(typed) if typed else None
        # Recorded under the account's username; under what was typed only as far as it could be one.
        name = user.username if user is not None else security.attempted_username(typed)
        if name != typed:
            # Counted under `name`, which other spellings share ("(not a username)"): one at a time too.
            uow.users.one_at_a_time(name)
        until = _locked_until(uow, name, user, now, policy)
        if until is not None:
            security.record(uow, now, security.SIGN_IN_REFUSED, name, client=client, detail={"reason": "locked"})
            uow.commit()
            return Outcome(LOCKED, locked_until=until)
        if user is None:
            # Spend the same time as a real check, so response times don't reveal which usernames exist.
            check_password_hash(_DUMMY_HASH, password)
        # The password first: a deactivated account takes as long to refuse as a wrong password.
        if not (user is not None and user.check_password(password) and user.is_active):
            security.record(uow, now, security.SIGN_IN_FAILED, name, client=client,
                            detail={"reason": "bad_credentials"})
            until = _count_failure(uow, name, user, now, policy, client)
            uow.commit()
            return Outcome(LOCKED if until else FAILED, locked_until=until)
        second_factor = enrolled(user) or policy.mfa_required(user)
        sid = sessions.begin(uow, now, user.id, policy.limits, verified=not second_factor, client=client,
                             replacing=replacing)
        if second_factor:
            step = "code" if enrolled(user) else "enrol"
            security.record(uow, now, security.MFA_CHALLENGED, user.username, client=client, detail={"step": step})
            result = NEEDS_CODE if enrolled(user) else NEEDS_ENROLMENT
        else:
            user.failures_since = now
            security.record(uow, now, security.SIGN_IN, user.username, client=client)
            result = SIGNED_IN
        uow.commit()
    return Outcome(result, user=user, sid=sid)


# --- the second factor -------------------------------------------------------------------------------

def pending_user(svc: Services, policy: Policy, sid: str | None) -> User | None:
    """The user whose password was right in this session, which waits for their second factor."""
    if not sid:
        return None
    now = svc.clock.now()
    with svc.uow() as uow:
        row = sessions.load(uow, sid)
        if row is None or row.user_id is None or not row.pending_mfa or sessions.ended_by(row, now, policy.limits):
            return None
        user = uow.users.get(row.user_id)
        return user if user is not None and user.is_active else None


def check_code(svc: Services, policy: Policy, sid: str, code: str, client: str | None) -> Outcome:
    """The code from the authenticator app, or a recovery code, for the session waiting for it."""
    return _second_factor(svc, policy, sid, client, code=code)


def confirm_enrolment(svc: Services, policy: Policy, sid: str, secret: str, code: str, client: str | None) -> Outcome:
    """The first code from a newly set-up app, for the session waiting for it: the secret is kept, the
    recovery codes are made (shown once), and the session counts as signed in."""
    return _second_factor(svc, policy, sid, client, code=code, new_secret=secret)


def _second_factor(svc: Services, policy: Policy, sid: str, client: str | None, *, code: str,
                   new_secret: str | None = None) -> Outcome:
    now = svc.clock.now()
    with svc.uow() as uow:
        row = sessions.load(uow, sid)
        if row is None or row.user_id is None or not row.pending_mfa or sessions.ended_by(row, now, policy.limits):
            return Outcome(GONE)
        user = uow.users.get(row.user_id)
        if user is None or not user.is_active:
            sessions.end(uow, sid, now, "deactivated")
            uow.commit()
            return Outcome(GONE)
        name = user.username
        uow.users.one_at_a_time(name)
        uow.users.refresh(user)  # as it is now that no other attempt on this account is running
        until = _locked_until(uow, name, user, now, policy)
        if until is not None:
            sessions.end(uow, sid, now, "locked")
            security.record(uow, now, security.SIGN_IN_REFUSED, name, client=client,
                            detail={"reason": "locked", "step": "code"})
            uow.commit()
            return Outcome(LOCKED, locked_until=until)
        if (new_secret is None) != enrolled(user):
            return Outcome(NEEDS_ENROLMENT if new_secret is None else NEEDS_CODE, user=user)
        how: str | None = None
        codes: tuple[str, ...] = ()
        left: int | None = None
        if new_secret is not None:
            step = mfa.matching_step(new_secret, code, now)
            if step is not None:
                how, codes = "totp", tuple(mfa.enrol(uow, user, new_secret, step, now))
        elif mfa.accept_totp(user, code, now):
            how = "totp"
        elif mfa.use_recovery_code(uow, user.id, code, now):
            how, left = "recovery_code", mfa.recovery_codes_left(uow, user.id)
        if how is None:
            security.record(uow, now, security.MFA_FAILED, name, client=client,
                            detail={"step": "enrol" if new_secret else "code"})
            until = _count_failure(uow, name, user, now, policy, client)
            if until is not None:
                sessions.end(uow, sid, now, "locked")
            uow.commit()
            return Outcome(LOCKED if until else FAILED, locked_until=until)
        new_sid = sessions.verified(uow, sid, now)
        user.failures_since = now
        if codes:
            security.record(uow, now, security.MFA_ENROLLED, name, client=client,
                            detail={"recovery_codes": len(codes)})
        if left is not None:
            security.record(uow, now, security.MFA_RECOVERY_USED, name, client=client, detail={"left": left})
        security.record(uow, now, security.SIGN_IN, name, client=client, detail={"mfa": how})
        uow.commit()
    return Outcome(SIGNED_IN, user=user, sid=new_sid, recovery_codes=codes, recovery_codes_left=left)


# --- signed in: setting up an app voluntarily, new recovery codes ----------------------------------------

def enrol_signed_in(svc: Services, user_id: int, secret: str, code: str, client: str | None) -> tuple[str, ...] | None:
    """A signed-in user sets up an authenticator app (or replaces theirs); their recovery codes, or None
    if the code is not the app's. A wrong code here is not counted: the user is signed in already, and
    the secret is new, so guessing it gains nothing."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = uow.users.get(user_id)
        step = mfa.matching_step(secret, code, now)
        if user is None or step is None:
            return None
        replaced = enrolled(user)
        codes = tuple(mfa.enrol(uow, user, secret, step, now))
        security.record(uow, now, security.MFA_ENROLLED, user.username, client=client,
                        detail={"recovery_codes": len(codes), **({"replaced": True} if replaced else {})})
        uow.commit()
    return codes


def renew_recovery_codes(svc: Services, policy: Policy, user_id: int, code: str, client: str | None) -> Outcome:
    """A new set of recovery codes, for the current code from the app. Wrong codes count towards the
    lockout (someone at an unattended screen could otherwise try codes for ever); if they lock the
    account, its sessions end too."""
    now = svc.clock.now()
    with svc.uow() as uow:
        user = uow.users.get(user_id)
        if user is None or not enrolled(user):
            return Outcome(NEEDS_ENROLMENT)
        uow.users.one_at_a_time(user.username)
        uow.users.refresh(user)
        if mfa.accept_totp(user, code, now):
            codes = tuple(mfa.issue_recovery_codes(uow, user.id, now))
            security.record(uow, now, security.MFA_CODES_RENEWED, user.username, client=client,
                            detail={"recovery_codes": len(codes)})
            uow.commit()
            return Outcome(SIGNED_IN, user=user, recovery_codes=codes)
        security.record(uow, now, security.MFA_FAILED, user.username, client=client, detail={"step": "renew"})
        until = _count_failure(uow, user.username, user, now, policy, client)
        if until is not None:
            sessions.end_sessions(uow, user.id, "locked", now=now)
        uow.commit()
    return Outcome(LOCKED if until else FAILED, locked_until=until)


# --- locked accounts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LockedAccount:
    username: str
    display_name: str
    role: str
    centre: str | None
    locked_until: datetime


def locked_accounts(svc: Services, centre: str | None = None) -> list[LockedAccount]:
    """Accounts locked now, soonest unlocked first; only `centre`'s users when given (a supervisor's)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        return [LockedAccount(u.username, u.display_name, u.role, u.centre, _lock_of(u))
                for u in uow.users.locked(now, centre)]


def _lock_of(user: User) -> datetime:
    """A locked account's `locked_until` (uow.users.locked finds those whose lock is after now)."""
    if user.locked_until is None:
        raise ValueError(f"user {user.username} is listed as locked but has no locked_until")
    return user.locked_until


def unlock(svc: Services, actor: str, username: str, *, centre: str | None = None, client: str | None = None) -> bool:
    """Unlock an account: `locked_until` cleared, failed sign-ins counted afresh from now, and an
    `account_unlocked` event, in one unit of work. True if it was locked. `centre` limits it to that
    centre's users (a supervisor's page); the CLI passes none. Raises LookupError (a plain-English
    message) if there is no such user (or none at that centre)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        uow.users.one_at_a_time(username)
        user = uow.users.find(username)
        if user is None or (centre is not None and user.centre != centre):
            raise LookupError(f"There is no user called {username}" + (f" at {centre}." if centre else "."))
        was_locked = user.locked_until is not None and user.locked_until > now
        user.locked_until = None
        user.failures_since = now
        security.record(uow, now, security.ACCOUNT_UNLOCKED, actor, subject=username, client=client,
                        detail={"was_locked": was_locked})
        uow.commit()
    return was_locked


# --- the lockout's bookkeeping -------------------------------------------------------------------------

def _last_lock(uow: UnitOfWork, name: str, after: datetime) -> datetime | None:
    return uow.security_events.last_at(name, security.ACCOUNT_LOCKED, after)


def _locked_until(uow: UnitOfWork, name: str, user: User | None, now: datetime, policy: Policy) -> datetime | None:
    # Both kinds of username run the same query, so a known one costs what an unknown one does.
    last = _last_lock(uow, name, now - policy.lock_for)
    if user is not None:
        return user.locked_until if user.locked_until is not None and user.locked_until > now else None
    return last + policy.lock_for if last is not None else None


def _count_failure(uow: UnitOfWork, name: str, user: User | None, now: datetime, policy: Policy,
                   client: str | None) -> datetime | None:
    """Count the failure just recorded (its event is written at commit); lock the username if it is the
    max_failures-th since the last reset. When it is locked till, or None."""
    since = now - policy.window
    last = _last_lock(uow, name, since)
    if user is not None:
        last = user.failures_since
    if last is not None and last > since:
        since = last
    before = uow.security_events.count(name, _COUNTED, since)
    failures = before + 1
    if failures < policy.max_failures:
        return None
    until = now + policy.lock_for
    if user is not None:
        user.locked_until = until
        user.failures_since = now
    security.record(uow, now, security.ACCOUNT_LOCKED, name, subject=name, client=client,
                    detail={"failures": failures, "minutes": round(policy.lock_for.total_seconds() / 60)})
    return until
