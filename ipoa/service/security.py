"""The security log: sign-ins, failed sign-ins and sign-outs, users and API tokens created or changed, SMS
opt-outs and opt-ins, deploys. Each event is a row of the chained `security_events` table, written in the
same unit of work as the change it records (so a change is never without its event, nor an event without
its change), and shown to administrators on /admin/security and by `flask --app ipoa security events`.

An event's detail holds codes, ids and field names: never a password, a token, a phone number or a
patient identifier."""
from __future__ import annotations

import copy
import getpass
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.model import SecurityEvent
from ..log_redaction import redact

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
USER_CREATED = "user_created"
USER_CHANGED = "user_changed"
USER_DEACTIVATED = "user_deactivated"
USER_REACTIVATED = "user_reactivated"
ROLE_CHANGED = "role_changed"
PASSWORD_CHANGED = "password_changed"
TOKEN_ISSUED = "token_issued"
TOKEN_REVOKED = "token_revoked"
SMS_OPT_OUT = "sms_opt_out"
SMS_OPT_IN = "sms_opt_in"
WORKFLOW_DEPLOYED = "workflow_deployed"
CONFIG_DEPLOYED = "config_deployed"
BREAK_GLASS_REVIEWED = "break_glass_reviewed"  # written by service/records.review_break_glass
ROTA_CHANGED = "rota_changed"  # service/rotas.py: a shift, cover, leave, swap, duty lead or CSV import
PROFESSIONAL_CHANGED = "professional_changed"  # service/professionals.py: added, edited, deactivated
AVAILABILITY_CHANGED = "availability_changed"  # a professional's OFF / ON text within their shift
# Sign-in, sessions and multi-factor (service/signin.py, sessions.py, mfa.py; docs/security.md).
SIGN_IN_REFUSED = "sign_in_refused"        # not checked: the account is locked, or the address throttled
ACCOUNT_LOCKED = "account_locked"          # too many failed sign-ins for a username
ACCOUNT_UNLOCKED = "account_unlocked"      # by a supervisor or an administrator (page or CLI)
SESSION_ENDED = "session_ended"            # idle too long, or past its maximum lifetime
MFA_CHALLENGED = "mfa_challenged"          # password right; the code (or enrolment) is still to come
MFA_FAILED = "mfa_failed"                  # a wrong code: counts towards the lockout
MFA_ENROLLED = "mfa_enrolled"
MFA_RECOVERY_USED = "mfa_recovery_used"
MFA_CODES_RENEWED = "mfa_codes_renewed"    # a new set of recovery codes (the old ones no longer work)
MFA_RESET = "mfa_reset"                    # an administrator removed a user's authenticator
SIGN_IN_KINDS = (SIGN_IN_REFUSED, ACCOUNT_LOCKED, ACCOUNT_UNLOCKED, SESSION_ENDED, MFA_CHALLENGED, MFA_FAILED,
                 MFA_ENROLLED, MFA_RECOVERY_USED, MFA_CODES_RENEWED, MFA_RESET)

KINDS = (SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, USER_CREATED, USER_CHANGED, USER_DEACTIVATED, USER_REACTIVATED,
         ROLE_CHANGED, PASSWORD_CHANGED, TOKEN_ISSUED, TOKEN_REVOKED, SMS_OPT_OUT, SMS_OPT_IN,
         WORKFLOW_DEPLOYED, CONFIG_DEPLOYED, BREAK_GLASS_REVIEWED, ROTA_CHANGED, PROFESSIONAL_CHANGED,
         AVAILABILITY_CHANGED) + SIGN_IN_KINDS

# The table's column widths: a longer value would fail the whole unit of work, not just the event.
_ACTOR_MAX, _SUBJECT_MAX, _CLIENT_MAX = 80, 80, 64
PAGE_SIZE = 50
MAX_LIMIT = 1000


def record(uow: UnitOfWork, now: datetime, kind: str, actor: str, subject: str | None = None, client: str | None = None,
           detail: dict[str, Any] | None = None) -> SecurityEvent:
    """Add a security event to the unit of work; it is numbered, hashed and stored at uow.commit(),
    with everything else the unit of work holds."""
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    event = SecurityEvent(at=now, kind=kind, actor=_fit(actor, _ACTOR_MAX) or "unknown",
                          subject=_fit(subject, _SUBJECT_MAX), client=_fit(client, _CLIENT_MAX),
                          detail=copy.deepcopy(detail or {}))  # a copy: the caller's later changes stay out
    uow.add_event(event)
    return event


def _fit(value: str | None, width: int) -> str | None:
    return None if value is None else str(value)[:width]


def printable(text: str | None, width: int = 64) -> str:
    """What someone typed, safe to store and show: control and formatting characters removed (a newline
    could forge a line in a log, a bidi override could disguise a name), cut to width."""
    kept = "".join(ch for ch in (text or "") if not _control(ch))
    return kept.strip()[:width]


# What an unknown username is recorded as typed only if it is made of: letters and digits (any script)
# and these (jane.smith, j_o'neil, jane-smith, jane.smith@nhs.net), which is what usernames are.
USERNAME_PUNCTUATION = "._-@'"


def looks_like_a_username(name: str) -> bool:
    return bool(name) and all(ch.isalnum() or ch in USERNAME_PUNCTUATION for ch in name)


def attempted_username(typed: str | None) -> str:
    """What a failed or refused sign-in is recorded under (the security log keeps it for good, and
    administrators read it): the username typed, as printable() keeps it; "(blank)" for nothing; and
    "(not a username)" for text that does not look like one: with a space, which no username has
    (users._check_username), or with any character but letters, digits and USERNAME_PUNCTUATION. A
    password typed into the username box is kept out that way (most have such a character), and a
    mistyped username is still recorded as typed. A handler whose session ended mid-call may type on
    into the sign-in page's username box, and a patient's name or NHS number has no place in the security
    log. What reads as an identifier (an NHS number, a phone number, a postcode) is replaced as in a log
    line (log_redaction.redact)."""
    name = printable(typed)
    if not name:
        return "(blank)"
    if not looks_like_a_username(name):
        return "(not a username)"
    return redact(name)


def has_control_characters(text: str) -> bool:
    """No username has one (users.create_user refuses them), and PostgreSQL refuses a NUL in a query."""
    return any(_control(ch) for ch in text)


def _control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


def cli_actor() -> str:
    """The actor of a command run at the command line: "cli:" and the operating-system user."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a bare container: still say it was the CLI
        return "cli"
    who = printable(who, _ACTOR_MAX - 4)
    return f"cli:{who}" if who else "cli"


# --- reading the log ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    events: list[SecurityEvent]
    older: int | None  # pass as `before` for the next (older) page; None: this is the last page


def events(svc: Services, *, kind: str | None = None, user: str | None = None, before: int | None = None,
           limit: int = PAGE_SIZE) -> Page:
    """Security events newest first (by their number in the chain, which is commit order), optionally of
    one kind and naming one user as actor or subject; `before` pages back from an event number."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    limit = max(1, min(int(limit), MAX_LIMIT))
    with svc.uow() as uow:
        # One more than a page: is there a next page?
        found = uow.security_events.newest_first(kind=kind, user=user, before=before, limit=limit + 1)
    return Page(found[:limit], found[limit - 1].seq if len(found) > limit else None)


def latest(uow: UnitOfWork, kind: str) -> SecurityEvent | None:
    """The most recent event of a kind, read inside a unit of work (a deploy compares with the last)."""
    return uow.security_events.latest(kind)


def describe(event: SecurityEvent) -> str:
    """The detail as one line of plain text, for the admin page and the CLI."""
    detail = event.detail or {}
    if event.kind == ROLE_CHANGED:
        return f"role {detail.get('from')} to {detail.get('to')}"
    parts = []
    for key, value in sorted(detail.items()):
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)
