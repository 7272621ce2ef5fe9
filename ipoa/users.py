"""People who sign in, and their API tokens. Roles decide what each page and API route allows."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from ipoa.adapters.passwords import check_password_hash, generate_password_hash

ROLES = ("handler", "supervisor", "professional", "admin")
# What each role's pages and API routes are: every route names one of these capabilities. Which records a
# user may see and change within them is the access policy's to decide (domain/access.py): a handler's
# calls.read is their own centre's calls, not every call.
CAPABILITIES = {
    "calls.read": {"handler", "supervisor"},
    "calls.write": {"handler", "supervisor"},
    # Queue figures (counts, no identifiers): GET /api/v1/queues.
    "queues.read": {"handler", "supervisor", "admin"},
    "supervisor.view": {"supervisor"},
    "routing.decide": {"handler", "supervisor", "admin"},
    # Withdraw a referral the service has not accepted and refer the call elsewhere, in one action.
    "referrals.reroute": {"supervisor"},
    # Text the receiving service's duty lead about an open referral, now, with a reason.
    "referrals.escalate": {"supervisor"},
    "referrals.own": {"professional"},
    # Figures for every centre and service: counts carry no identifiers.
    "reports.view": {"supervisor", "admin"},
    "workflows.view": {"supervisor", "admin"},
    # Requeue failed background jobs from the exceptions panel.
    "jobs.manage": {"supervisor"},
    # Review break-glass openings of the centre's calls.
    "break_glass.review": {"supervisor"},
    # The security log (sign-ins, users, tokens, opt-outs, deploys) and the audit trail's verification.
    "security.view": {"admin"},
    # Unlock accounts locked after failed sign-ins: a supervisor their centre's users, an admin anyone's.
    "accounts.unlock": {"supervisor", "admin"},
    # Add, edit and deactivate the onward services' professionals (mobile, service, linked user).
    "professionals.manage": {"admin"},
    # See and change rotas: shifts, cover, leave, swaps, duty leads, CSV import and export.
    "rotas.manage": {"supervisor", "admin"},
}


class User:
    id: int  # the row's key, set by the imperative mapping (adapters/orm.py) once the user is stored

    def __init__(self, *, username: str, display_name: str, role: str, centre: str | None,
                 created_at: datetime, password: str | None = None, password_hash: str | None = None,
                 mobile: str | None = None):
        self.username = username
        self.mobile = mobile  # E.164; supervisors' escalation texts go here
        self.last_seen_at: datetime | None = None
        self.display_name = display_name
        self.role = role
        self.centre = centre
        self.active = True
        self.created_at = created_at
        self.locked_until: datetime | None = None  # sign-in throttling (docs/security.md)
        self.failures_since: datetime | None = None
        self.password_changed_at: datetime | None = None
        self.mfa_secret: str | None = None  # TOTP, once enrolled
        self.mfa_enrolled_at: datetime | None = None
        self.mfa_last_step: int | None = None  # the TOTP time step last accepted: none is accepted twice
        # Where the Answer button puts a phone caller through: E.164 or client:<identity> (docs/telephony.md).
        self.answer_on: str | None = None
        if password_hash is not None:
            self.password_hash = password_hash  # e.g. one hash shared by many test users (scrypt is slow by design)
        elif password is not None:
            self.set_password(password)
        else:
            raise ValueError("a user needs a password or a password hash")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def can(self, capability: str) -> bool:
        return self.role in CAPABILITIES.get(capability, set())

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


@dataclass
class ApiToken:
    user_id: int
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    id: int | None = None
    name: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "ipoa_" + secrets.token_urlsafe(32)
