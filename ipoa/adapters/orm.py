"""Tables and the imperative mapping of the domain classes onto them (the domain never imports this)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import configure_mappers, registry, relationship
from sqlalchemy.types import TypeDecorator

from ..domain.model import Call, Referral
from ..domain.sms.delivery import SmsMessage
from ..users import ApiToken, User

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
mapper_registry = registry(metadata=metadata)


class UTCDateTime(TypeDecorator):
    """Stores UTC instants; always hands back aware UTC datetimes (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        """On SQLite, its DATETIME text read as a UTC instant in one step: `fromisoformat` of the text with
        "+00:00" added gives what SQLAlchemy's two processors give (fromisoformat, then process_result_value's
        replace), at a fifteenth of the cost: replace() with a keyword is dear, and a step reads about a dozen
        instants (docs/performance.md, "Engine core"). Text it does not read so (a date alone, an offset
        of its own) goes the two processors' way. tests/unit/test_utc_datetime.py compares the two."""
        both = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or both is None:
            return both
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                instant = parse(value + "+00:00")
            except (TypeError, ValueError):
                return both(value)
            # (a date alone parses, its "+00:00" taken for a time of day: naive, so the two processors')
            return instant if instant.tzinfo is not None else both(value)

        return process

    def bind_processor(self, dialect):
        """On SQLite, process_bind_param and SQLite's DATETIME text in one step: the same text (its default
        storage format, YYYY-MM-DD HH:MM:SS.ffffff, always with the microseconds, as datetime.isoformat
        writes it), at under half the cost: a workflow step binds about ten instants (docs/performance.md,
        "Engine core"). tests/unit/test_utc_datetime.py checks the two agree on any aware instant."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # The last instant in UTC written and its text: a unit of work writes the same instant (its clock's
        # `now`) into several columns and rows, and datetime's isoformat is dear (about 7,000 instructions: it
        # formats through PyUnicode_FromFormat). One tuple, replaced whole, so threads never see a mixed pair.
        # Only instants in UTC are remembered and compared: two datetimes with the same zone compare by their
        # wall-clock fields, fold ignored, so the two 01:30s of the hour London repeats would be "equal".
        last: tuple[datetime | None, str] = (None, "")

        def process(value: datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            offset = value.tzinfo
            if offset is UTC:  # (the clock's instants: isoformat's "+00:00" cut off, nothing converted)
                seen, text = last
                if value == seen:
                    return text
                text = value.isoformat(" ", "microseconds")[:-6]
                last = (value, text)
                return text
            if offset is None:
                raise ValueError("naive datetime: store aware UTC instants only")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process


calls = Table(
    "calls", metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", String(16), nullable=False, unique=True),
    Column("centre", String(8), nullable=False),
    Column("origin_centre", String(8), nullable=False),
    Column("caller_type", String(16), nullable=False),
    Column("caller_name", String(200)),
    Column("caller_phone", String(20)),
    Column("nhs_number", String(10), index=True),
    Column("given_name", String(100), nullable=False),
    Column("family_name", String(100), nullable=False),
    Column("date_of_birth", Date),
    Column("postcode", String(8)),
    # The address for a visit (optional; patient-identifying like the postcode: pseudonymised by
    # retention, never in a text or a log line).
    Column("address_line_1", String(100)),
    Column("town", String(60)),
    Column("locality", String(64)),
    Column("out_of_area", Boolean, nullable=False, default=False),
    Column("need", String(40), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("updates_to", String(20)),
    Column("state", String(32), nullable=False),
    Column("workflow", String(40), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("recommended", JSON),
    Column("route", JSON),
    Column("callback_due", UTCDateTime),
    Column("logged_at", UTCDateTime, nullable=False),
    Column("logged_by", String(64), nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("breach", String(16)),
    Column("breached_at", UTCDateTime),
    # Every centre the call has been with, space-separated ("CNH ASC"): a handler's relationship to a
    # call covers transfers to and from their centre (domain/access.py).
    Column("centre_path", String(120), nullable=False),
    # Consent to share (domain/sharing.py): given | refused | not_asked | lacks_capacity_best_interests.
    # NULL only on calls logged before consent was recorded.
    Column("consent", String(40)),
    Column("consent_recorded_by", String(64)),
    Column("consent_recorded_at", UTCDateTime),
    # Set when retention removed the identifiers (service/retention.py): codes and timings remain.
    Column("pseudonymised_at", UTCDateTime),
    Index("ix_calls_centre_state", "centre", "state"),
    Index("ix_calls_state", "state"),
    Index("ix_calls_logged_at", "logged_at"),  # reports select a period's calls
    # A caller who rings again is matched to their open calls by number (service/phone_calls.py): 0013.
    Index("ix_calls_caller_phone", "caller_phone"),
)

referrals = Table(
    "referrals", metadata,
    Column("id", String(32), primary_key=True),
    Column("call_id", Integer, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("service", String(8), nullable=False),
    Column("state", String(32), nullable=False),
    Column("workflow", String(40), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("sent_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("outcome_reason", Text),
    Column("breach", String(16)),
    Column("breached_at", UTCDateTime),
    # Why the details could be shared with this service (domain/sharing.py): same_organisation,
    # consent_given, lacks_capacity_best_interests, or a lawful basis (vital_interests, safeguarding,
    # legal_duty) with its reason.
    Column("sharing_basis", String(40)),
    Column("sharing_reason", Text),
    Index("ix_referrals_service_state", "service", "state"),
    # Open referrals by state (queue figures, breaches, the dashboard): migration 0005.
    Index("ix_referrals_state", "state"),
    Index("ix_referrals_sent_at", "sent_at"),  # reports select a period's referrals
)

# The chained tables (audit, access, security): append-only, each row numbered (seq) and hashed over its
# content and the previous row's hash (domain/audit_chain.py). On PostgreSQL triggers refuse UPDATE and
# DELETE (migration 0007). seq is given by the application, never by the database.
audit_events = Table(
    "audit_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("call_ref", String(16), nullable=False, index=True),
    Column("entity", String(16), nullable=False),
    Column("entity_id", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("trigger", String(40), nullable=False),
    Column("reason", Text),
    Column("data", JSON, nullable=False),
)

access_events = Table(
    "access_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("centre", String(8)),
    Column("call_ref", String(16), nullable=False),
    Column("referral_id", String(32)),
    Column("route", String(120), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("grant_id", Integer),
    Index("ix_access_events_call_ref", "call_ref", "seq"),
)

security_events = Table(
    "security_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("subject", String(80)),
    Column("client", String(64)),
    Column("detail", JSON, nullable=False),
    Index("ix_security_events_kind_at", "kind", "at"),
    # Failed sign-ins are counted per username at every attempt (service/signin.py).
    Index("ix_security_events_actor_at", "actor", "at"),
)

# The last event of each chain: a transaction extending a chain locks its head row (so events are
# numbered one after another), and `audit verify` compares the head with the chain (events deleted at
# the end, or added outside the application).
audit_chain_heads = Table(
    "audit_chain_heads", metadata,
    Column("chain", String(16), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Each run of `audit verify` (nightly by the scheduler, or on demand): a broken chain shows on the
# supervisors' exceptions panel.
audit_verifications = Table(
    "audit_verifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("by", String(80), nullable=False),
    Column("ok", Boolean),
    Column("events", Integer),
    Column("problem", Text),
)

# Break-glass: one user, one call, for a limited time, with a reason; reviewed by a supervisor of the
# centre that holds the call.
break_glass_grants = Table(
    "break_glass_grants", metadata,
    Column("id", Integer, primary_key=True),
    Column("call_ref", String(16), nullable=False),
    Column("centre", String(8), nullable=False),  # the call's centre when opened: whose supervisors review it
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("user_centre", String(8)),
    Column("reason", String(40), nullable=False),
    Column("note", Text),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("reviewed_at", UTCDateTime),
    Column("reviewed_by", String(64)),
    Column("review_comment", Text),
    Index("ix_break_glass_grants_lookup", "username", "call_ref", "expires_at"),
    Index("ix_break_glass_grants_review", "centre", "reviewed_at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", String(32), primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Column("processed_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Index("ix_outbox_unprocessed", "processed_at", "created_at"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(120), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("centre", String(8)),
    # Supervisors' mobiles receive escalations (E.164); optional for everyone else.
    Column("mobile", String(20)),
    Column("active", Boolean, nullable=False, default=True),
    # Last request while signed in (written at most once a minute): "handlers signed in" on the dashboard.
    Column("last_seen_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # Sign-in throttling: failed sign-ins are counted since failures_since (reset by a success or an
    # unlock); too many lock the account until locked_until (docs/security.md).
    Column("locked_until", UTCDateTime),
    Column("failures_since", UTCDateTime),
    Column("password_changed_at", UTCDateTime),
    # Multi-factor sign-in (TOTP): the shared secret once enrolled.
    Column("mfa_secret", String(64)),
    Column("mfa_enrolled_at", UTCDateTime),
    # The last TOTP time step accepted, so that no code is accepted twice (service/mfa.py).
    Column("mfa_last_step", Integer),  # unix time // 30: fits a 32-bit integer for 2,000 years
    # Where the handler answers phone calls: E.164, or client:<identity> (migration 0014, docs/telephony.md).
    Column("answer_on", String(140)),
)

# Server-side sessions: the cookie holds only an opaque id; the row (keyed by the id's SHA-256) says whose
# it is and whether it still stands. Sign-out, a password or role change and deactivation end them.
user_sessions = Table(
    "user_sessions", metadata,
    Column("id", String(64), primary_key=True),
    # NULL: a visitor not signed in yet (the sign-in form's CSRF token, messages such as "Signed out.").
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the maximum lifetime (a shift)
    Column("mfa_verified_at", UTCDateTime),  # NULL: the second factor is still to be given
    Column("ended_at", UTCDateTime),
    Column("end_reason", String(32)),
    Column("client", String(64)),
    Column("data", Text),  # the session's contents as JSON (CSRF token, messages): never in the cookie
)

# One-time recovery codes for multi-factor sign-in, stored hashed.
mfa_recovery_codes = Table(
    "mfa_recovery_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# A client's Idempotency-Key on POST /api/v1/calls and events: a retry with the same key gets the first
# answer and changes nothing.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("name", String(80)),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

workflow_definitions = Table(
    "workflow_definitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("source", String(255), nullable=False),
    Column("deployed_at", UTCDateTime, nullable=False),
    UniqueConstraint("name", "version", name="uq_workflow_definitions_name_version"),
)

professionals = Table(
    "professionals", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(120), nullable=False),
    Column("mobile", String(20), nullable=False, unique=True),
    Column("service", String(8), nullable=False),
    Column("opted_out_at", UTCDateTime),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    # Deactivated professionals are kept (their texts and audit events name them) but are never on duty
    # nor texted (migration 0012).
    Column("active", Boolean, nullable=False, default=True),
    # Texted OFF within a shift: not texted until this instant (the shift's end) or until they text ON.
    Column("unavailable_until", UTCDateTime),
    Index("ix_professionals_service", "service"),
)

# -- rotas: who is on duty (migration 0011; domain/rota, adapters/rota_store.py) ----------------------------
# A service's shifts: weekly patterns (weekday set, day NULL) and one-off shifts on a date (day set,
# weekday NULL); start and end are Europe/London wall-clock times (docs/domain.md, "Rotas"). A pattern
# is deactivated, never deleted: the covers and swaps made for it stay readable.
rota_shifts = Table(
    "rota_shifts", metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(8), nullable=False),
    Column("weekday", Integer),
    Column("day", Date),
    Column("start_time", Time, nullable=False),
    Column("end_time", Time, nullable=False),
    Column("label", String(20)),
    Column("duty_lead_id", Integer, ForeignKey("professionals.id", ondelete="SET NULL")),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("active", Boolean, nullable=False, default=True),
    Index("ix_rota_shifts_service_day", "service", "day"),
)

# The professionals who work a shift (its members; the duty lead is the shift's own column).
rota_shift_members = Table(
    "rota_shift_members", metadata,
    Column("shift_id", Integer, ForeignKey("rota_shifts.id", ondelete="CASCADE"), primary_key=True),
    Column("professional_id", Integer, ForeignKey("professionals.id", ondelete="CASCADE"), primary_key=True),
)

# One-off changes to pattern occurrences: kind "cover" (shift_id and day: the occurrence; professionals,
# a JSON list, or NULL to keep them; duty_lead_id or NULL to keep it), "leave" (professional_id off from
# first_day to last_day) and "swap" (professional_id's occurrence shift_id/day exchanged with
# other_professional_id's other_shift_id/other_day).
rota_changes = Table(
    "rota_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(8), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("shift_id", Integer, ForeignKey("rota_shifts.id", ondelete="CASCADE")),
    Column("day", Date),
    Column("professionals", JSON),
    Column("duty_lead_id", Integer, ForeignKey("professionals.id", ondelete="CASCADE")),
    Column("professional_id", Integer, ForeignKey("professionals.id", ondelete="CASCADE")),
    Column("first_day", Date),
    Column("last_day", Date),
    Column("other_professional_id", Integer, ForeignKey("professionals.id", ondelete="CASCADE")),
    Column("other_shift_id", Integer, ForeignKey("rota_shifts.id", ondelete="CASCADE")),
    Column("other_day", Date),
    Column("reason", String(200)),
    Index("ix_rota_changes_service_kind", "service", "kind"),
)

# A service's standing duty lead set as a professional. Without a row, the directory's duty_lead number
# (workflows/directory.yaml) is the standing lead: as that professional when the number is registered.
standing_duty_leads = Table(
    "standing_duty_leads", metadata,
    Column("service", String(8), primary_key=True),
    Column("professional_id", Integer, ForeignKey("professionals.id", ondelete="CASCADE"), nullable=False),
)

# Who a referral's texts went to and why (domain/rota/recipients.choose_recipients): one row per
# referral.sent event, written with its texts, so the call page can say it, and a referral that reached
# nobody is on the supervisor's exceptions panel.
sms_recipient_choices = Table(
    "sms_recipient_choices", metadata,
    Column("id", Integer, primary_key=True),
    Column("outbox_id", String(32), nullable=False, unique=True),
    Column("call_ref", String(16), nullable=False, index=True),
    Column("referral_id", String(32)),
    Column("service", String(8), nullable=False),
    Column("step", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_sms_recipient_choices_step_created", "step", "created_at"),
)

# Hand-overs (migration 0012; service/shift_handover.py). One row per referral re-sent at a shift change: the
# primary key is what makes a re-send happen once, whoever runs the job and however often.
handover_resends = Table(
    "handover_resends", metadata,
    Column("referral_id", String(32), ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True),
    Column("handover_at", UTCDateTime, primary_key=True),
    Column("service", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# How far each service's shift changes have been looked at: the next run starts from here, so a change
# is seen once and a scheduler that was down catches up.
handover_checks = Table(
    "handover_checks", metadata,
    Column("service", String(8), primary_key=True),
    Column("checked_until", UTCDateTime, nullable=False),
)

sms_messages = Table(
    "sms_messages", metadata,
    Column("id", String(32), primary_key=True),
    Column("call_ref", String(16), nullable=False, index=True),
    Column("referral_id", String(32)),
    Column("recipient_kind", String(16), nullable=False),
    Column("professional_id", Integer, ForeignKey("professionals.id", ondelete="SET NULL")),
    Column("to", String(20), nullable=False),
    Column("template", String(40), nullable=False),
    Column("body", String(320), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_sid", String(64), unique=True),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("outbox_id", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    # When a text held back (a transient gateway error, a crashed worker) is due to be tried again: the
    # relay hands due ones over itself, depending on no lock a dead process may hold.
    Column("next_attempt_at", UTCDateTime),
    # A supervisor followed up a text not delivered by phone (the dashboard's exceptions panel): who, when,
    # and what they found; audited too (migration 0010, service/dashboard.py).
    Column("followed_up_at", UTCDateTime),
    Column("followed_up_by", String(64)),
    Column("follow_up_note", Text),
    # One message per recipient per outbox event: a re-delivered event cannot text anyone twice.
    UniqueConstraint("outbox_id", "to", "template", name="uq_sms_messages_outbox_to_template"),
    Index("ix_sms_messages_status_created", "status", "created_at"),
    Index("ix_sms_messages_created_at", "created_at"),  # reports select a period's texts
)

# Replies from professionals' phones, kept by Twilio's MessageSid so a re-delivered webhook acts once.
sms_inbound = Table(
    "sms_inbound", metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_sid", String(64), nullable=False, unique=True),
    Column("professional_id", Integer, ForeignKey("professionals.id", ondelete="SET NULL")),
    Column("command", String(16), nullable=False),
    Column("call_ref", String(16)),
    Column("outcome", String(32), nullable=False),
    Column("reply", String(320), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# -- texts: short links and escalation digests (migration 0008; service/sms.py) ----------------------------
# The short codes texts carry (`<PUBLIC_BASE_URL>/r/<code>`): random, so each is looked up here. A
# referral's secure page (one code per referral, made the first time a text needs it), or the list of
# breaches a digest text points to (one code per scope: "centre:CNH", "service:DN").
sms_links = Table(
    "sms_links", metadata,
    Column("code", String(16), primary_key=True),
    Column("referral_id", String(32), unique=True),
    Column("scope", String(24), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per number that has had an escalation text: when the latest went (or, for a digest, is due to
# go), and the digest collecting the escalations since, with how many it holds. Locked by the relay's
# transaction that records an escalation for that number, so concurrent relays digest exactly once.
sms_escalation_windows = Table(
    "sms_escalation_windows", metadata,
    Column("to", String(20), primary_key=True),
    Column("last_at", UTCDateTime, nullable=False),
    Column("digest_id", String(32)),
    Column("held", Integer, nullable=False),
    Column("scope", String(24)),  # the list the digest links to: "centre:CNH", "service:DN"
)

# Opt-outs (STOP) of numbers ipoa texts that are not a professional's (a professional's is on their row):
# a supervisor's mobile, a directory duty-lead number nobody is registered with (migration 0017;
# service/replies.py). START deletes the row. Escalations and referral texts to such numbers honour it.
sms_opt_outs = Table(
    "sms_opt_outs", metadata,
    Column("number", String(20), primary_key=True),
    Column("opted_out_at", UTCDateTime, nullable=False),
)

# SLA clocks. The database holds the truth: the scheduler re-reads due timers every tick, so a restart or
# a flushed Redis loses none, and firing claims the row (fired_at) in the escalation's transaction.
_RUNNING = text("fired_at IS NULL")  # a timer not yet fired nor stopped (timer_store's queries say the same)

timers = Table(
    "timers", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("call_ref", String(16), nullable=False, index=True),
    Column("referral_id", String(32)),
    Column("due_at", UTCDateTime, nullable=False),
    Column("set_at_version", Integer, nullable=False),
    Column("rule", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("enqueued_at", UTCDateTime),
    Column("fired_at", UTCDateTime),
    Column("outcome", String(16)),
    Column("stopped_at", UTCDateTime),
    # The scheduler's: the clocks still running, by due time (migration 0016). Only they are in it: a clock
    # stopped or fired leaves it, rather than moving to an ever-growing part of it for the fired.
    Index("ix_timers_due", "due_at", postgresql_where=_RUNNING, sqlite_where=_RUNNING),
)

# Phone legs (Twilio Voice, issue 15; docs/telephony.md): one row per inbound call Twilio handles (its
# CallSid), written by service/phone_calls.py, from ringing to hanging up. The caller's number is kept to
# call back an abandoned call and to match a caller who rings again; it is never logged nor texted.
# A phone leg waiting in its queue (adapters/voice_queue_queries.py reads these; its own conditions match).
_WAITING = text("enqueued_at IS NOT NULL AND left_queue_at IS NULL AND hung_up_at IS NULL AND answered_at IS NULL")

_DIAL_PENDING = text("outcome = 'answered' AND answered_by IS NOT NULL AND dial_status IS NULL")

phone_legs = Table(
    "phone_legs", metadata,
    Column("id", Integer, primary_key=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("centre", String(8), nullable=False),  # whose number was rung
    Column("queue", String(8)),  # the centre whose queue it is (or was) in: another one after an overflow
    Column("caller_number", String(20)),  # E.164 UK number; NULL when withheld or not a UK number
    Column("caller_type", String(16)),  # professional | public, from the menu
    Column("priority", Boolean, nullable=False, default=False),  # a professional: answered first
    Column("arrived_at", UTCDateTime, nullable=False),
    Column("enqueued_at", UTCDateTime),  # first joined a queue: the wait and the place in line count from it
    # Joined the queue it is in now: the overflow's into another centre's, else enqueued_at (migration 0019)
    Column("queue_joined_at", UTCDateTime),
    Column("answered_at", UTCDateTime),
    Column("answered_by", String(64)),
    Column("left_queue_at", UTCDateTime),
    Column("hung_up_at", UTCDateTime),
    Column("outcome", String(24)),  # domain/telephony/legs.py OUTCOMES; NULL while live
    Column("overflowed_from", String(8)),
    Column("matched_call_ref", String(16)),  # an open call for the caller's number when it rang
    Column("call_ref", String(16)),  # the call made (or matched) for the callback an abandoned leg needs
    Column("last_status", String(20)),  # Twilio's CallStatus, ranked (domain/telephony/legs.py)
    Column("menu_attempt", Integer, nullable=False, default=0),
    Column("dial_status", String(20)),  # the DialCallStatus of Answer's <Dial>, once its dial result came
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_phone_legs_queue_enqueued_at", "queue", "enqueued_at"),  # a queue's callers, answered ones too
    # Only the callers waiting now (migration 0015): the answer to every ringing call reads its queue's longest
    # wait, which through the index above walked past every caller the queue ever answered. By when they joined
    # this queue (migration 0019), the order that read takes: its first entry is the longest wait.
    Index("ix_phone_legs_waiting", "queue", "queue_joined_at", postgresql_where=_WAITING, sqlite_where=_WAITING),
    Index("ix_phone_legs_arrived_at", "arrived_at"),  # a period's legs (the measures)
    # The answers whose dial result is still to come (migration 0018): the lost-call check reads them every
    # minute (service/lost_calls.py), a few among every leg ever answered.
    Index("ix_phone_legs_dial_pending", "answered_at", postgresql_where=_DIAL_PENDING, sqlite_where=_DIAL_PENDING),
    Index("ix_phone_legs_caller_number", "caller_number"),
)

# Handlers taking phone calls (a flag per user with when it last changed): a centre with nobody taking
# calls overflows if its line says so (domain/telephony/centre_voice.py).
handler_availability = Table(
    "handler_availability", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("taking_calls", Boolean, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

# The benchmark's baseline: one plain insert through the same app, auth and transaction handling.
bench_pings = Table(
    "bench_pings", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("note", String(64)),
)

_mapped = False


def start_mappers() -> None:
    global _mapped
    if _mapped:
        return
    referral_mapper = mapper_registry.map_imperatively(
        Referral, referrals,
        version_id_col=referrals.c.version, version_id_generator=False,
    )
    mapper_registry.map_imperatively(
        Call, calls,
        version_id_col=calls.c.version, version_id_generator=False,
        properties={
            "referrals": relationship(referral_mapper, order_by=referrals.c.sent_at,
                                      cascade="all, delete-orphan", lazy="selectin"),
        },
    )
    # Audit, access and security events, outbox messages and timers are not mapped: written once by Core
    # (adapters/row_inserts.py), read back as rows; plain dataclasses cost nothing to make and read, where
    # an instrumented one paid for every field set (docs/performance.md, "Engine core").
    mapper_registry.map_imperatively(SmsMessage, sms_messages)
    mapper_registry.map_imperatively(User, users)
    mapper_registry.map_imperatively(ApiToken, api_tokens)
    # Configured now rather than at the first ORM query: CallRepository.get sets a call's referrals
    # through the relationship's own attribute, which exists only once the mappers are configured (a
    # process whose first use of the database is that read, such as a worker's, would otherwise fail).
    configure_mappers()
    for cls in (Call, Referral):
        _construct_without_change_events(cls)

    _mapped = True


class _Fields:
    """What a domain constructor is run on: a bare object that only collects the attributes it sets."""


def _construct_without_change_events(cls: type) -> None:
    """A new Call or Referral built by its own domain constructor, whose attributes are then put in the
    instance's dict as the ORM's loading puts a row's (adapters/repository._loaded): no change event per
    attribute. Mapped, the constructor's ~40 attribute sets each fired the ORM's events (about 20 µs a
    call, more inside a request: docs/performance.md, "Intake's app CPU cut"), which nothing uses: calls
    and referrals are written by Core from their values (adapters/repository.py), never by the session's
    flush. A collection (a call's referrals) is still set through its attribute, so it is the ORM's own;
    left empty, it is not set at all: reading it gives the same empty collection, made when first read."""
    from sqlalchemy.orm.instrumentation import ClassManager, manager_of_class

    manager: ClassManager[Any] = manager_of_class(cls)
    domain_init = manager.original_init  # the class's own __init__, which the ORM's calls after its set-up
    if domain_init is None:
        raise RuntimeError(f"{cls.__name__} is not mapped with a constructor of its own")
    collections = frozenset(manager.mapper.relationships.keys())

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        fields = _Fields()
        domain_init(fields, *args, **kwargs)
        values = fields.__dict__
        later = {name: values.pop(name) for name in collections if name in values}
        self.__dict__.update(values)
        for name, value in later.items():
            if value:
                setattr(self, name, value)

    manager.original_init = __init__
