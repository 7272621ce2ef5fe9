"""Text messages, their links and the escalation windows: `sms_messages`, `sms_links`,
`sms_escalation_windows`, and what a text needs of professionals, users and calls (service/sms.py).

The claim and lease statements are the send path's cost (docs/performance.md, SMS; bench/sms.py): each is
one statement, and the send claim is built once."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, String, and_, any_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from ..domain.sms.delivery import SmsMessage
from ..domain.sms.links import new_link_code
from .orm import calls, professionals, referrals, sms_links, sms_messages, sms_opt_outs, users
from .orm import sms_escalation_windows as windows
from .prepared import Prepared
from .results import rowcount
from .row_inserts import prepared_insert
from .upsert import insert_ignoring_conflicts

DIGEST_TEMPLATE = "escalation_digest"  # service/sms.py's: a digest is never sent before its window ends


class LinkRow(NamedTuple):
    referral_id: str | None
    scope: str | None


class WindowRow(NamedTuple):
    last_at: datetime
    digest_id: str | None
    held: int
    scope: str | None


class InvitationRow(NamedTuple):
    """A text to a number about a call's referral (service/replies.py): how it went, and the referral."""

    recipient_kind: str
    status: str
    referral_id: str
    state: str
    version: int
    workflow: str
    workflow_version: int
    service: str


class HandoverRow(NamedTuple):
    id: str
    next_attempt_at: datetime | None
    updated_at: datetime


def stopped(number: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether `number` texted STOP (and not START since): the one rule of a number's opt-out, whoever holds
    it (docs/domain.md, "SMS to professionals"). A professional's is on their row (professionals.opted_out_at),
    any other number's (a supervisor's mobile, a directory duty-lead number) in sms_opt_outs; either holds for
    the number. Who is chosen to be texted (opted_out, through service/rotas.reachable) and the send claim
    (_claim_of) both ask this."""
    return (select(sms_opt_outs.c.number).where(sms_opt_outs.c.number == number).exists()
            | select(_HOLDER.c.id).where(_HOLDER.c.mobile == number, _HOLDER.c.opted_out_at.is_not(None)).exists())


# The professionals table under its own name inside `stopped`, so that asking it of a professional's own mobile
# (adapters/rota_store's contacts) compares with the outer row's number, not the inner table's with itself.
_HOLDER = professionals.alias("stop_holder")


# Built once (a statement per send is built and its cache key computed each time otherwise): the
# service's _may_act in SQL. A NULL ticket compares as unknown, so only a job holding the current one
# gains by it. A text to a number that texted STOP after it was queued (stopped) is not claimed: it is left
# to service/sms._claim_unfinished, which records it as not sent.
_T = sms_messages.c.next_attempt_at.type  # UTCDateTime: aware UTC in, naive UTC for SQLite


# `pending`, written so that ix_sms_messages_status_created cannot serve it: a claim finds its texts by
# their ids (the primary key). Plainly written, PostgreSQL's planner took the status index, thought to
# hold few pending texts, and read every pending text to claim 25 of them: 1.9 ms a claim with 3,000
# waiting, against 1.1 ms by the key, and growing with the backlog (docs/performance.md, texts' fourth
# step). Same result: status is never NULL.
_PENDING = func.coalesce(sms_messages.c.status, "") == "pending"


def _claim_of(which: ColumnElement[bool], *returning: ColumnElement[Any]) -> ReturningUpdate[Any]:
    return (
        update(sms_messages)
        .where(which, _PENDING, ~stopped(sms_messages.c.to),
               or_(and_(sms_messages.c.attempts == 0, sms_messages.c.template != DIGEST_TEMPLATE),
                   sms_messages.c.next_attempt_at.is_(None),
                   sms_messages.c.next_attempt_at <= bindparam("claim_now", type_=_T),
                   sms_messages.c.next_attempt_at == bindparam("claim_ticket", type_=_T)))
        .values(status="submitting", attempts=sms_messages.c.attempts + 1,
                submitted_at=bindparam("claim_now", type_=_T), updated_at=bindparam("claim_now", type_=_T),
                next_attempt_at=bindparam("claim_lease", type_=_T))
        .returning(*returning)
    )


_CLAIM = _claim_of(sms_messages.c.id == bindparam("claim_id"),
                   sms_messages.c.to, sms_messages.c.body, sms_messages.c.attempts)
# The same claim for a batch job's texts at once (service/sms.send_many), on SQLite: one statement for up to
# CLAIM_SLOTS texts (a send job's batch, adapters/rq_queue.SMS_BATCH_SIZE, in two; more slots would take the
# statement past the 50 parameters psycopg keeps a parsed query for), the slots a batch leaves
# unused bound to NULL, which matches no id. A fixed list, not an expanding one, so that the statement is
# compiled once and run on the DB-API cursor (adapters/prepared.py): SQLAlchemy renders an expanding IN
# again at every use, which cost ~0.2 ms of a job's CPU (docs/performance.md, SMS).
CLAIM_SLOTS = 25
_CLAIM_MANY = Prepared(_claim_of(sms_messages.c.id.in_([bindparam(f"claim_id{k}") for k in range(CLAIM_SLOTS)]),
                                 sms_messages.c.id, sms_messages.c.to, sms_messages.c.body, sms_messages.c.attempts))
# On PostgreSQL the job's ids go as one array (`id = ANY(...)`): one statement for a job's texts however
# many, one round trip fewer a job than two statements of CLAIM_SLOTS, on the path every job waits for
# (docs/performance.md, texts' fifth step). The slots stay for SQLite, which has no arrays.
_CLAIM_ANY = Prepared(_claim_of(sms_messages.c.id == any_(bindparam("claim_ids", type_=postgresql.ARRAY(String))),
                                sms_messages.c.id, sms_messages.c.to, sms_messages.c.body, sms_messages.c.attempts))


# Built once too: recording what the gateway said of a text still `submitting` (the usual outcome,
# "queued" or "accepted"; "sent" and "delivered" also set their own times: update_submitting).
_RECORD = (
    update(sms_messages)
    .where(sms_messages.c.id == bindparam("record_id"), sms_messages.c.status == "submitting")
    .values(provider_sid=bindparam("record_sid"), status=bindparam("record_status"),
            updated_at=bindparam("record_now", type_=_T), next_attempt_at=None, error_message=None,
            error_code=None)
)


# The same for a flush's outcomes together on PostgreSQL (service/sms._record_many, the worker's recorder
# thread): one statement whatever their number, the ids, sids and statuses as three arrays joined to the
# table by id, instead of an executemany of one UPDATE a text (20 statements for PostgreSQL to run, and
# psycopg's work for each; the recorder thread was about 0.06 ms a text, a third of what the worker spent
# above the twilio client's own: docs/performance.md, texts' fifth step). "Submitting" is written as the
# claims write "pending": so that no status index can serve it, the texts found by key
# (tests/integration/test_claim_plans.py).
_OUTCOME = func.unnest(bindparam("record_ids", type_=postgresql.ARRAY(String)),
                       bindparam("record_sids", type_=postgresql.ARRAY(String)),
                       bindparam("record_statuses", type_=postgresql.ARRAY(String))
                       ).table_valued("id", "sid", "status").render_derived(name="outcome")
_RECORD_ALL = Prepared(
    update(sms_messages)
    .where(sms_messages.c.id == _OUTCOME.c.id, func.coalesce(sms_messages.c.status, "") == "submitting")
    .values(provider_sid=_OUTCOME.c.sid, status=_OUTCOME.c.status, updated_at=bindparam("record_now", type_=_T),
            next_attempt_at=None, error_message=None, error_code=None)
)


class SmsStore:
    def __init__(self, session: Session):
        self.session = session

    # -- links -------------------------------------------------------------------------------------------

    def _codes(self) -> dict[str, str]:
        return self.session.info.setdefault("ipoa_link_codes", {})  # per session, so per transaction here

    def prepare_link_codes(self, referral_ids, now: datetime, new: Iterable[str] = ()) -> None:
        """The codes for these referrals, made where missing: those expected to be `new` (a referral's
        first text) are inserted straight away, one INSERT ... ON CONFLICT DO NOTHING RETURNING for all
        of them; the rest, and any of those that had one already, are read with one SELECT, and the ones
        still missing inserted and read again. So one statement for a batch of new referrals, two for a
        mixed one, whatever their number (the relay's batch). A code taken meanwhile by another referral
        (1 in 10^7 with 60 million in use) is simply not cached: link_code draws again."""
        codes = self._codes()
        wanted = sorted(set(referral_ids) - set(codes))
        if not wanted:
            return
        fresh = sorted(set(new) & set(wanted))
        if fresh:
            insert = (postgresql.insert(sms_links) if self.session.get_bind().dialect.name == "postgresql"
                      else sqlite.insert(sms_links))
            for rid, code in self.session.execute(
                    insert.on_conflict_do_nothing().returning(sms_links.c.referral_id, sms_links.c.code),
                    [{"code": new_link_code(), "referral_id": r, "scope": None, "created_at": now} for r in fresh]):
                codes[rid] = code
            wanted = [r for r in wanted if r not in codes]
            if not wanted:
                return

        def load():
            for rid, code in self.session.execute(select(sms_links.c.referral_id, sms_links.c.code)
                                                  .where(sms_links.c.referral_id.in_(wanted))):
                codes[rid] = code
        load()
        missing = [r for r in wanted if r not in codes]
        if missing:
            insert_ignoring_conflicts(self.session, sms_links, [
                {"code": new_link_code(), "referral_id": r, "scope": None, "created_at": now} for r in missing])
            load()

    def link_code(self, now: datetime, *, referral_id: str | None = None, scope: str | None = None) -> str:
        """The code of a referral's secure page, or of a digest's list (scope "centre:CNH" or
        "service:DN"), made the first time it is needed. Two transactions making one at once agree: the
        second's insert does nothing and it reads the first's."""
        key = cast(str, referral_id or scope)  # callers name one
        cached = self._codes().get(key)
        if cached:
            return cached
        column = sms_links.c.referral_id if referral_id else sms_links.c.scope
        code = self.session.scalar(select(sms_links.c.code).where(column == key))
        while code is None:
            insert_ignoring_conflicts(self.session, sms_links, [{"code": new_link_code(), "referral_id": referral_id,
                                                         "scope": scope, "created_at": now}])
            code = self.session.scalar(select(sms_links.c.code).where(column == key))
        self._codes()[key] = code
        return code

    def link(self, code: str) -> LinkRow | None:
        row = self.session.execute(select(sms_links.c.referral_id, sms_links.c.scope)
                                   .where(sms_links.c.code == code)).first()
        return LinkRow(*row) if row is not None else None

    # -- who is told -------------------------------------------------------------------------------------

    def updates_to(self, ref: str) -> str | None:
        return self.session.scalar(select(calls.c.updates_to).where(calls.c.ref == ref))

    def referral_workflow(self, referral_id: str) -> tuple[str, int] | None:
        """The referral's workflow and version, or None."""
        row = self.session.execute(select(referrals.c.workflow, referrals.c.workflow_version)
                                   .where(referrals.c.id == referral_id)).first()
        return tuple(row) if row is not None else None

    # -- opt-outs (STOP) ---------------------------------------------------------------------------------

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Those of these numbers that texted STOP (stopped): in sms_opt_outs, or a professional's who did.
        One statement whatever their number."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        return set(self.session.scalars(
            select(sms_opt_outs.c.number).where(sms_opt_outs.c.number.in_(wanted))
            .union(select(professionals.c.mobile).where(professionals.c.mobile.in_(wanted),
                                                        professionals.c.opted_out_at.is_not(None)))))

    def users_with_mobile(self, number: str) -> list[str]:
        """The usernames of the users whose mobile this is (a supervisor's), for the security log."""
        return list(self.session.scalars(select(users.c.username).where(users.c.mobile == number)
                                         .order_by(users.c.username)))

    def texted(self, number: str) -> bool:
        """Whether ipoa texts this number: a user's mobile, or a number texted before."""
        return bool(self.session.scalar(select(literal(True)).where(
            select(users.c.id).where(users.c.mobile == number).exists()
            | select(sms_messages.c.id).where(sms_messages.c.to == number).exists())))

    def set_number_opted_out(self, number: str, at: datetime | None) -> bool:
        """STOP (at) or START (None) of a number, in sms_opt_outs; True if it changed anything."""
        if at is None:
            return rowcount(self.session.execute(sms_opt_outs.delete().where(sms_opt_outs.c.number == number))) > 0
        before = self.session.scalar(select(sms_opt_outs.c.number).where(sms_opt_outs.c.number == number))
        insert_ignoring_conflicts(self.session, sms_opt_outs, [{"number": number, "opted_out_at": at}])
        return before is None

    # -- escalation windows and digests --------------------------------------------------------------------

    def lock_window(self, number: str, never: datetime) -> WindowRow:
        """The number's window row, made if missing (last_at `never`), locked until the transaction ends
        (PostgreSQL; SQLite's BEGIN IMMEDIATE has every writing transaction wait for the one before
        anyway)."""
        insert_ignoring_conflicts(self.session, windows, [{"to": number, "last_at": never, "digest_id": None, "held": 0,
                                                   "scope": None}])
        row = self.session.execute(select(windows).where(windows.c.to == number).with_for_update()).one()
        return WindowRow(row.last_at, row.digest_id, row.held, row.scope)

    def set_window(self, number: str, **values: Any) -> None:
        self.session.execute(update(windows).where(windows.c.to == number).values(**values))

    def created_at(self, sms_id: str) -> datetime | None:
        return self.session.scalar(select(sms_messages.c.created_at).where(sms_messages.c.id == sms_id))

    def join_digest(self, digest_id: str, body: str, now: datetime) -> bool:
        """Rewrite a digest's text while it is still pending; False if it has gone (or is going)."""
        return bool(rowcount(self.session.execute(update(sms_messages).where(
            sms_messages.c.id == digest_id, sms_messages.c.status == "pending")
            .values(body=body, updated_at=now))))

    def add(self, message: SmsMessage) -> str:
        """Add a text; its id (flushed now)."""
        self.session.add(message)
        self.session.flush()
        return message.id

    def add_all(self, messages: list[SmsMessage]) -> None:
        """New texts (a relay's batch), INSERTed now in one executemany by Core, not by the ORM's flush:
        nothing changes them in the transaction that makes them, and the flush's identity map, state
        tracking and per-row bookkeeping were about a fifth of the relay's time (docs/performance.md, SMS).
        They stay outside the session; a later read in the transaction finds their rows."""
        if messages:
            prepared_insert(sms_messages).run_many(self.session.connection(), [_text_row(m) for m in messages])

    # -- handing over and sending --------------------------------------------------------------------------

    def due_for_handover(self, now: datetime, lost_after: datetime, limit: int) -> list[HandoverRow]:
        """Pending or submitting texts whose next attempt is due, or, never given one, unmoved since
        `lost_after`; oldest first."""
        return [HandoverRow(*r) for r in self.session.execute(
            select(sms_messages.c.id, sms_messages.c.next_attempt_at, sms_messages.c.updated_at)
            .where(sms_messages.c.status.in_(("pending", "submitting")),
                   or_(sms_messages.c.next_attempt_at <= now,
                       and_(sms_messages.c.next_attempt_at.is_(None), sms_messages.c.updated_at <= lost_after)))
            .order_by(sms_messages.c.created_at).limit(limit)).all()]

    def claim_handover(self, sms_id: str, next_attempt_at: datetime | None, ticket: datetime) -> bool:
        """Move a text's next attempt to `ticket` if it is still pending or submitting and nobody moved it
        since it was read (next_attempt_at as read); True if this did."""
        same = (sms_messages.c.next_attempt_at.is_(None) if next_attempt_at is None
                else sms_messages.c.next_attempt_at == next_attempt_at)
        return bool(rowcount(self.session.execute(update(sms_messages).where(
            sms_messages.c.id == sms_id, sms_messages.c.status.in_(("pending", "submitting")), same)
            .values(next_attempt_at=ticket))))

    def claim(self, sms_id: str, now: datetime, lease: datetime,
              ticket: datetime | None) -> tuple[str, str, int] | None:
        """Claim a pending text for sending, in one statement: (to, body, attempts), or None if it was not
        to be taken (see the service's _may_act)."""
        claimed = self.session.execute(_CLAIM, {"claim_id": sms_id, "claim_now": now, "claim_lease": lease,
                                                "claim_ticket": ticket}).first()
        return None if claimed is None else (claimed[0], claimed[1], claimed[2])

    def claim_many(self, sms_ids: list[str], now: datetime, lease: datetime,
                   ticket: datetime | None) -> dict[str, tuple[str, str, int]]:
        """claim() for several texts in one statement (on SQLite, one for every CLAIM_SLOTS of them): {id:
        (to, body, attempts)} for those claimed."""
        if not sms_ids:
            return {}
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            return {r[0]: (r[1], r[2], r[3]) for r in _CLAIM_ANY.rows(connection, {
                "claim_ids": list(sms_ids), "claim_now": now, "claim_lease": lease, "claim_ticket": ticket})}
        claimed: dict[str, tuple[str, str, int]] = {}
        for i in range(0, len(sms_ids), CLAIM_SLOTS):
            chunk = sms_ids[i:i + CLAIM_SLOTS]
            params: dict[str, Any] = {"claim_now": now, "claim_lease": lease, "claim_ticket": ticket}
            params.update({f"claim_id{k}": chunk[k] if k < len(chunk) else None for k in range(CLAIM_SLOTS)})
            claimed.update({r[0]: (r[1], r[2], r[3]) for r in _CLAIM_MANY.rows(connection, params)})
        return claimed

    def record_submitted_many(self, outcomes: list[tuple[str, str, str]], now: datetime) -> int:
        """record_submitted for several texts, (id, provider sid, status) each, in one statement on
        PostgreSQL (an executemany elsewhere); how many of them were still submitting (all of them, unless
        one moved on). The ids are distinct (a job's)."""
        if not outcomes:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            ids, sids, statuses = (list(column) for column in zip(*outcomes, strict=True))
            return _RECORD_ALL.run(self.session.connection(), {
                "record_ids": ids, "record_sids": sids, "record_statuses": statuses, "record_now": now})
        # SQLite: no round trips to save; the statement a text.
        return rowcount(self.session.execute(_RECORD, [
            {"record_id": i, "record_sid": sid, "record_status": status, "record_now": now}
            for i, sid, status in outcomes]))

    def get(self, sms_id: str, *, for_update: bool = False) -> SmsMessage | None:
        if for_update:
            return self.session.get(SmsMessage, sms_id, with_for_update=True)
        return self.session.get(SmsMessage, sms_id)

    def record_submitted(self, sms_id: str, provider_sid: str, status: str, now: datetime) -> bool:
        """The gateway took a text still `submitting` with this status (not "sent" nor "delivered": those
        go through update_submitting with their times); True if the text was still submitting."""
        return bool(rowcount(self.session.execute(_RECORD, {"record_id": sms_id, "record_sid": provider_sid,
                                                            "record_status": status, "record_now": now})))

    def update_submitting(self, sms_id: str, **values: Any) -> int:
        """Change a text still `submitting`; how many rows changed (0 or 1)."""
        return rowcount(self.session.execute(update(sms_messages).where(sms_messages.c.id == sms_id,
                                                                        sms_messages.c.status == "submitting")
                                             .values(**values)))

    def by_provider_sid_for_update(self, provider_sid: str) -> SmsMessage | None:
        return self.session.scalars(select(SmsMessage).where(sms_messages.c.provider_sid == provider_sid)
                                    .with_for_update()).one_or_none()

    # -- reading -------------------------------------------------------------------------------------------

    def invitations(self, number: str, call_ref: str, templates: Iterable[str]) -> list[InvitationRow]:
        """The texts of these templates sent to `number` about the call's referrals, with each referral: its
        open ones first (closed_at is set as a referral reaches a final state), then the latest sent."""
        return [InvitationRow(*r) for r in self.session.execute(
            select(sms_messages.c.recipient_kind, sms_messages.c.status, referrals.c.id, referrals.c.state,
                   referrals.c.version, referrals.c.workflow, referrals.c.workflow_version, referrals.c.service)
            .join(referrals, referrals.c.id == sms_messages.c.referral_id)
            .where(sms_messages.c.to == number, sms_messages.c.call_ref == call_ref,
                   sms_messages.c.template.in_(sorted(templates)))
            .order_by(referrals.c.closed_at.is_(None).desc(), referrals.c.sent_at.desc(),
                      sms_messages.c.created_at.desc())).all()]

    def call_ref_for_referral(self, referral_id: str) -> str | None:
        return self.session.scalar(select(calls.c.ref).join(referrals, referrals.c.call_id == calls.c.id)
                                   .where(referrals.c.id == referral_id))

    def for_call(self, ref: str) -> list[SmsMessage]:
        return list(self.session.scalars(select(SmsMessage).where(sms_messages.c.call_ref == ref)
                                         .order_by(sms_messages.c.created_at)))

    def recent(self, limit: int) -> list[SmsMessage]:
        return list(self.session.scalars(select(SmsMessage).order_by(sms_messages.c.created_at.desc()).limit(limit)))

    def recent_for_centre(self, centre: str, limit: int) -> list[SmsMessage]:
        """Texts about calls whose path went through `centre` (held, transferred to or from it)."""
        padded = literal(" ") + calls.c.centre_path + literal(" ")
        return list(self.session.scalars(
            select(SmsMessage).join(calls, calls.c.ref == sms_messages.c.call_ref)
            .where(padded.like(f"% {centre} %"))
            .order_by(sms_messages.c.created_at.desc()).limit(limit)))


_TEXT_COLUMNS = tuple(c.name for c in sms_messages.columns)


def _text_row(message: SmsMessage) -> dict[str, Any]:
    # The instance's own dict holds the attributes __init__ set (the mapped class's, with no events read);
    # the columns it never sets (the supervisor's follow-up) are NULL.
    own = vars(message)
    return {name: own.get(name) for name in _TEXT_COLUMNS}
