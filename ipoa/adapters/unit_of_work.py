"""One use case, one transaction: the state change, its audit events and its outbox messages commit
together or not at all. Committed outbox messages are then handed to the publisher; if that fails
(Redis down) they stay unpublished in the table and the sweep hands them over later."""
from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from sqlalchemy import Column, Connection, bindparam, func, update
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ..domain.audit_chain import Head, canonical
from ..domain.engine import Engine, Result
from ..domain.errors import VersionConflict
from ..domain.model import AccessEvent, AuditEvent, Call, SecurityEvent, Timer
from . import audit_store, held_connections, idempotency_store, prepared, row_inserts
from .access_log_queries import AccessLogQueries
from .audit_queries import AuditTrailQueries
from .break_glass_store import BreakGlassStore
from .dashboard_queries import DashboardQueries
from .idempotency_store import IdempotencyKeyStore
from .mfa_store import RecoveryCodeStore
from .outbox_store import OutboxStore
from .phone_measure_queries import PhoneMeasureQueries
from .prepared import Prepared
from .presence_store import PresenceStore
from .professional_store import ProfessionalStore
from .referral_store import ReferralStore
from .report_queries import ReportQueries
from .repository import VERSION_CHANGED, CallRepository
from .retention_store import RetentionStore
from .rota_store import RotaStore
from .security_store import SecurityEventStore
from .session_store import SessionStore
from .sms_reply_store import SmsReplyStore
from .sms_store import SmsStore
from .timer_store import TimerStore
from .user_store import UserStore
from .work_queue_queries import WorkQueueQueries
from .workflow_store import WorkflowStore

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, message_ids: list[str]) -> None: ...


class _Keyed(Protocol):
    """A mapped Call: it has the calls table's `id` column (adapters/orm.py), which the domain class
    does not declare (the database numbers it)."""

    id: int


class EngineSource(Protocol):
    """What gives the workflow engine (bootstrap.Services, a test's fake)."""

    def engine(self, needs: tuple[str, int] | None = None, session: Session | None = None) -> Engine: ...


_S = TypeVar("_S")


class CommittedRows:
    """The rows of a statement sent at commit (UnitOfWork.at_commit): called, they are given once the unit of
    work has committed."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] | None = None

    def __call__(self) -> list[tuple[Any, ...]]:
        if self.rows is None:
            raise RuntimeError("a statement sent at commit has rows once the unit of work has committed")
        return self.rows


class _Store(Generic[_S]):
    """A store of the unit of work (`uow.calls`, ...), built on first use in a `with` entry, on that entry's
    session (its stand-in, _SessionView: the ORM session itself is made only if the store needs more than
    the connection), and the same object until the next entry: a use case pays only for the stores it
    touches. Read on an instance it is typed as the store itself."""

    __slots__ = ("build", "name")

    def __init__(self, build: Callable[[Session], _S]) -> None:
        self.build = build
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, uow: None, owner: type | None = None) -> _Store[_S]: ...

    @overload
    def __get__(self, uow: UnitOfWork, owner: type | None = None) -> _S: ...

    def __get__(self, uow: UnitOfWork | None, owner: type | None = None) -> _S | _Store[_S]:
        if uow is None:
            return self
        stores = uow._stores
        if stores is None:
            raise AttributeError(f"uow.{self.name}: a unit of work's stores are used inside `with uow:`")
        store: _S | None = stores.get(self.name)
        if store is None:
            store = stores[self.name] = self.build(cast(Session, uow._view))
        return store

    def __set__(self, uow: UnitOfWork, store: _S) -> None:
        """Stands in for this entry only (as the store built would), until the next __enter__."""
        if uow._stores is None:
            raise AttributeError(f"uow.{self.name}: a unit of work's stores are set inside `with uow:`")
        uow._stores[self.name] = store


class _SessionView:
    """What the unit of work's stores are given as their session: the connection of the unit of work's
    transaction (`connection()`), its engine (`get_bind()`) and its `info`, without an ORM session; for
    anything else (an ORM query, `execute`, `add`, ...) the unit of work's session, made then
    (UnitOfWork.session: it takes over the transaction under way). Why: a workflow step and an intake run
    only prepared statements (adapters/prepared.py), and the session's own work (made, its transaction's
    states, a connection look-up through it per statement, its commit and close) was about 8% of a step
    (docs/performance.md, "A step without the ORM session")."""

    __slots__ = ("_uow",)

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def connection(self) -> Connection:
        return self._uow.connection()

    def get_bind(self) -> SqlEngine:
        return self._uow._engine()

    @property
    def info(self) -> dict[Any, Any]:
        uow = self._uow
        session = uow._session
        return session.info if session is not None else uow._info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow.session, name)


class UnitOfWork:
    # Calls and their records: loading and saving, and the reads a use case makes in its transaction.
    calls = _Store(CallRepository)
    referrals = _Store(ReferralStore)
    break_glass = _Store(BreakGlassStore)
    access_log = _Store(AccessLogQueries)
    professionals = _Store(ProfessionalStore)
    rotas = _Store(RotaStore)  # shifts, changes and standing duty leads; who a referral's texts went to
    sms_replies = _Store(SmsReplyStore)
    presence = _Store(PresenceStore)
    work_queues = _Store(WorkQueueQueries)  # read model: queue figures, a centre's queue, breaches
    dashboard = _Store(DashboardQueries)  # read model: the supervisor's dashboard
    reports = _Store(ReportQueries)  # read model: a period's rows for the reports
    phone_measures = _Store(PhoneMeasureQueries)  # read model: a period's phone legs (telephony measures)
    workflows = _Store(WorkflowStore)  # deployed workflow versions
    # Stores for sign-in, sessions, security and the background machinery (one adapters module each).
    users = _Store(UserStore)
    sessions = _Store(SessionStore)
    security_events = _Store(SecurityEventStore)
    recovery_codes = _Store(RecoveryCodeStore)
    idempotency_keys = _Store(IdempotencyKeyStore)
    audit_trail = _Store(AuditTrailQueries)  # read model: the chains' events and verification runs
    retention = _Store(RetentionStore)
    timers = _Store(TimerStore)
    outbox = _Store(OutboxStore)
    sms = _Store(SmsStore)

    def __init__(self, session_factory: sessionmaker[Session], publisher: Publisher | None = None):
        self.session_factory = session_factory
        self.publisher = publisher
        self._stores: dict[str, Any] | None = None  # this entry's stores, built as they are first used
        self._view = _SessionView(self)

    def __enter__(self) -> UnitOfWork:
        # The ORM session is made when first used (`session`): a use case that only runs prepared statements
        # (adapters/prepared.py) runs them on the unit of work's connection (`connection`) without one.
        self._session: Session | None = None
        self._connection: Connection | None = None  # the transaction's connection while there is no session
        self._held: held_connections.HeldConnections | None = None  # its engine's kept connections
        self._info: dict[Any, Any] = {}  # the session's info while there is no session (_SessionView.info)
        self._stores = {}
        self._pending: list[str] = []
        self._chained: list[Any] = []  # audit, access and security events: numbered and hashed at commit
        self._stops: list[tuple[str, str | None, str, Any]] = []  # clocks whose running timers close at commit
        self._inserts: list[Any] = []  # timers and outbox messages: inserted at commit (adapters/row_inserts.py)
        self._new_call: tuple[Prepared, dict[str, Any], Call, AuditEvent] | None = None  # add_new_call's statement
        self._at_commit: list[tuple[Prepared, dict[str, Any], CommittedRows]] = []  # at_commit's statements
        return self

    def __exit__(self, *exc: object) -> None:
        # close() rolls back anything uncommitted without expiring what was loaded, so callers can
        # still read the (now detached) objects they were handed.
        if self._session is not None:
            self._session.close()
        if self._connection is not None:
            self._close_connection()  # (rolls back a transaction still open on it)

    @property
    def session(self) -> Session:
        """The unit of work's ORM session, made on first use. Made while the transaction is under way on
        `connection`, it takes that transaction over (its connection, its BEGIN, what was sent): one
        transaction all the same, committed or rolled back by the session from then on."""
        session = self._session
        if session is None:
            if self._connection is not None:
                session = self.session_factory(bind=self._connection, join_transaction_mode="control_fully")
                session.connection()  # joined now: its commit, rollback or close ends the transaction under way
            else:
                session = self.session_factory()
            session.info.update(self._info)  # what the stores noted before the session was made
            self._session = session
        return session

    def connection(self) -> Connection:
        """The connection of the unit of work's transaction, for prepared statements (adapters/prepared.py):
        the session's, or without a session one of the engine's own, its transaction begun (the engine's
        begin events: BEGIN pending on PostgreSQL, BEGIN IMMEDIATE on SQLite) and committed by `commit`.
        Why: the ORM session's own work (its transaction's states, the pool's checkout through it, its
        commit and close) was 494 k of the 1,100 k instructions of a ringing call's use case, whose one
        statement needs none of it; an engine connection's, 224 k (docs/performance.md, "The incoming
        call's CPU cut")."""
        if self._session is not None:
            return self._session.connection()
        connection = self._connection
        if connection is None:
            engine = self._engine()
            held = self._held = held_connections.for_engine(engine)  # the thread's, kept from its last
            connection = (held.take() if held is not None else None) or engine.connect()  # unit of work
            self._connection = connection
            connection.begin()
        return connection

    def _engine(self) -> SqlEngine:
        bind = self.session_factory.kw["bind"]
        return cast(SqlEngine, bind)

    def dialect_name(self) -> str:
        """The database's dialect ("postgresql", "sqlite"), without making a session."""
        return self._engine().dialect.name

    def engine(self, services: EngineSource, needs: tuple[str, int] | None = None) -> Engine:
        """The services' workflow engine, the deployed versions it may need read on this unit of work's
        own connection: a second connection would wait on this one's lock under SQLite. (Before the unit of
        work has a session or a connection, it holds no lock: the services read on their own, and no session
        is made for it.)"""
        held = self._session is not None or self._connection is not None
        # (the view: a session is made only if the deployed versions must be read)
        return services.engine(needs=needs, session=cast(Session, self._view) if held else None)

    def add_new_call(self, call: Call, result: Result) -> None:
        """A call just logged, with what logging it caused. On PostgreSQL, one statement: the call's
        INSERT, its audit, outbox and timer INSERTs, and the audit chain's head moved on, as
        data-modifying CTEs (one round trip instead of five, on the path every call takes: see
        docs/performance.md, intake). The head's UPDATE locks it and hashes the event in the database:
        sha256(previous hash, number, canonical content), the same link domain/audit_chain.py makes
        (and `audit verify` checks). Elsewhere, the call is added to the repository and its rows go at commit."""
        shape = (len(result.audit), len(result.outbox), len(result.timers))
        if (self.dialect_name() != "postgresql" or result.new_referrals or result.stopped_clocks
                or shape not in _NEW_CALL_SHAPES or not _unset_at_logging(call, result)
                or not _shared_values_agree(call, result)):
            self.calls.add(call)
            self.record(result)
            return
        params = _params(call, "c", "calls")
        for prefix, objs, table in (("a", result.audit, "audit_events"), ("o", result.outbox, "outbox"),
                                    ("t", result.timers, "timers")):
            for i, obj in enumerate(objs):
                params.update(_params(obj, f"{prefix}{i}", table))
        (event,) = result.audit
        params["a0_content"] = canonical(audit_store.content("audit", event))
        # Sent at commit, in the commit's batch with the COMMIT: one round trip for both. Its row (the call's
        # id, the event's number and hash) is read once the batch is in.
        self._new_call = (_new_call_statement(shape), params, call, event)
        self._pending += [m.id for m in result.outbox]

    def at_commit(self, statement: Prepared, params: dict[str, Any]) -> CommittedRows:
        """A prepared statement (adapters/prepared.py) sent at commit, after the unit of work's other writes: on
        PostgreSQL in the commit's batch with its COMMIT; or, when it is the unit of work's only statement and
        nothing was sent before it, alone, without BEGIN or COMMIT (adapters/prepared.alone: a use case writing
        one row takes one round trip, service/phone_calls.incoming). Calling the object returned gives the
        statement's rows, once the unit of work has committed."""
        rows = CommittedRows()
        self._at_commit.append((statement, params, rows))
        return rows

    def _logged(self, read: Callable[[], list[tuple[Any, ...]]], call: Call, event: AuditEvent) -> None:
        """The row of add_new_call's statement, once its batch is in."""
        ((call_id, seq, hash_, _),) = read()
        cast("_Keyed", call).id, event.seq, event.hash = call_id, seq, hash_
        audit_store.moved(cast(Session, self._view), "audit", Head(seq, hash_))

    def record(self, result: Result) -> None:
        """What a change caused, written at commit: its stopped clocks' timers closed first, then its new
        rows (the commit's batch on PostgreSQL: adapters/prepared.batched)."""
        if result.stopped_clocks:
            # A clock started by an earlier change of this unit of work and stopped by this one never ran
            # (as domain/engine.Result.extend): its timer is not written at all.
            stopped = {(ref, rid, kind) for ref, rid, kind, _ in result.stopped_clocks}
            self._inserts = [row for row in self._inserts if not (
                isinstance(row, Timer) and (row.call_ref, row.referral_id, row.kind) in stopped)]
            self._stops += result.stopped_clocks
        self._inserts += result.timers
        self._chained += result.audit
        self._inserts += result.outbox
        self._pending += [m.id for m in result.outbox]

    def add_event(self, event: AuditEvent | AccessEvent | SecurityEvent) -> None:
        """An access or security event (or an audit event without a state change), committed with the
        rest of the unit of work."""
        self._chained.append(event)

    def _write(self, calls: CallRepository | None, stops: list[tuple[str, str | None, str, Any]],
               inserts: list[Any], chained: list[Any]) -> Callable[[], None] | None:
        """Stopped clocks' timers closed first (before any new timer of the same clock is inserted; the
        order firing takes its locks in too: timers, then the call); then the calls and referrals (the rows
        inserted point at them), then the new rows; the audit chain last: its head is the last lock the
        transaction takes. Each row's version is checked before COMMIT: someone else's change first is a
        VersionConflict, and nothing is written. Returns what numbers the audit events once the statements'
        results are in (audit_store.append)."""
        view = cast(Session, self._view)
        if stops:
            connection = self.connection()
            for call_ref, referral_id, kind, at in stops:
                if referral_id is None:
                    _STOP_CALL_CLOCK.run(connection, {"b_call_ref": call_ref, "b_kind": kind, "b_at": at})
                else:
                    _STOP_REFERRAL_CLOCK.run(connection, {"b_call_ref": call_ref, "b_referral_id": referral_id,
                                                          "b_kind": kind, "b_at": at})
        check = calls.save_changes() if calls is not None else None
        if self._session is not None:
            self._session.flush()
        row_inserts.insert_rows(view, inserts)
        numbered = audit_store.append(view, chained) if chained else None
        if check is not None:
            check()
        return numbered

    def commit(self) -> None:
        calls = self._stores.get("calls") if self._stores is not None else None
        chained, self._chained = self._chained, []
        inserts, self._inserts = self._inserts, []
        stops, self._stops = self._stops, []
        new_call, self._new_call = self._new_call, None
        at_commit, self._at_commit = self._at_commit, []
        # The session, if a store or the use case made one (ORM work); else the unit of work's own connection,
        # committed here (_SessionView).
        session = self._session
        view = cast(Session, self._view)
        try:
            # Only prepared statements to run (adapters/prepared.py): on PostgreSQL they go as one batch ending
            # with the COMMIT, two round trips instead of one per statement and one for the COMMIT. The ORM's
            # flush reads each statement's result as it goes: never in the batch. The before-commit hooks
            # (service/idempotency.py) run in it, with batch-safe statements
            # (adapters/idempotency_store.CommittingTransaction).
            only_prepared = (new_call is not None or calls is not None or stops or inserts or chained
                             or at_commit) and not (session is not None
                                                    and (session.new or session.dirty or session.deleted))
            read = numbered = None
            reads: list[Callable[[], list[tuple[Any, ...]]]] = []
            try:
                if (len(at_commit) == 1 and only_prepared and new_call is None and calls is None
                        and not (stops or inserts or chained)):
                    # One statement to write, and nothing else: when the transaction has sent nothing yet, the
                    # statement is the transaction, without BEGIN or COMMIT (adapters/prepared.alone). The
                    # before-commit hooks run first: should one write, the statement joins its transaction.
                    connection = self.connection()
                    idempotency_store.run_before_commit(view, self.connection)
                    statement, params, _ = at_commit[0]
                    if prepared.alone(connection):
                        found_alone = statement.rows(connection, params)
                    else:
                        with prepared.batched(connection):
                            later = statement.rows_later(connection, params)
                            prepared.commit_in_batch(connection)
                        found_alone = later()
                    reads.append(lambda: found_alone)
                elif only_prepared:
                    connection = self.connection()
                    with prepared.batched(connection):
                        if new_call is not None:
                            read = new_call[0].rows_later(connection, new_call[1])
                        numbered = self._write(calls, stops, inserts, chained)
                        reads = [statement.rows_later(connection, params) for statement, params, _ in at_commit]
                        idempotency_store.run_before_commit(view, self.connection)
                        prepared.commit_in_batch(connection)
                else:
                    if new_call is not None:  # (ORM changes too: the new call's statement on its own first)
                        found = new_call[0].rows(self.connection(), new_call[1])
                        read = lambda: found  # noqa: E731
                    numbered = self._write(calls, stops, inserts, chained)
                    for statement, params, _ in at_commit:
                        found_rows = statement.rows(self.connection(), params)
                        reads.append(lambda found_rows=found_rows: found_rows)  # type: ignore[misc]
                    idempotency_store.run_before_commit(view, self.connection)
            except DataError as exc:
                # The checks PostgreSQL makes itself when the COMMIT goes in the same batch (the statement failed,
                # so the transaction commits nothing): a row's version (CallRepository.save_changes), and the new
                # call's guard (no head row, and nothing of the audit chain may be written without it).
                if prepared.failed_check(exc, VERSION_CHANGED):
                    raise VersionConflict(None, None) from exc
                if new_call is not None and type(exc.orig).__name__ == "DivisionByZero":
                    raise audit_store.ChainHeadMissing("the audit chain's head record is missing") from exc
                raise
            except IntegrityError as exc:
                if audit_store.numbered_twice(exc):
                    raise audit_store.ChainHeadMissing("an audit chain's head record is missing beside its "
                                                       "events: run `flask --app ipoa audit verify`") from exc
                raise
            if read is not None and new_call is not None:
                self._logged(read, new_call[2], new_call[3])
            if numbered is not None:
                numbered()
            statements_rows = [r() for r in reads]  # (read before the session's commit: their cursors close)
            # After commit_in_batch (or alone), the transaction is over: nothing is sent.
            session = self._session  # (made since, if a store or hook needed one)
            if session is not None:
                session.commit()
            else:
                self._commit_connection()
            for (_, _, committed), found in zip(at_commit, statements_rows, strict=True):
                committed.rows = found
        except StaleDataError as exc:
            self._rollback()
            raise VersionConflict(None, None) from exc
        except VersionConflict:
            self._rollback()
            raise
        pending, self._pending = self._pending, []
        if pending and self.publisher is not None:
            try:
                self.publisher.publish(pending)
            except Exception:  # noqa: BLE001 - the sweep re-publishes; the committed change stands
                log.warning("outbox publish failed for %d message(s); the sweep will retry", len(pending),
                            exc_info=True)

    def _commit_connection(self) -> None:
        """Commits the unit of work's own connection (no session was made) and keeps it for the thread's next
        unit of work (adapters/held_connections.py), or gives it back to the pool: a statement after this
        begins a new transaction, as after a session's commit."""
        connection = self._connection
        if connection is not None:
            connection.commit()  # (should it fail, __exit__ closes the connection: never kept)
            self._connection = None
            held = self._held
            if held is None or not held.keep(connection):  # kept for the thread's next unit of work
                connection.close()

    def _close_connection(self) -> None:
        """The unit of work's connection closed (back to the pool, its transaction rolled back), not kept."""
        connection, self._connection = self._connection, None
        if connection is not None:
            held = self._held
            if held is not None:
                held.forget(connection)
            connection.close()

    def _rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        elif self._connection is not None:
            self._close_connection()  # (rolls the transaction back)


UnitOfWorkFactory = Callable[[], UnitOfWork]


def _stop_clock(referral: bool) -> Prepared:
    """A running clock of a call (or of one of its referrals) stopped: prepared once (adapters/prepared.py),
    each use only binds."""
    from .orm import timers

    # b_*: an UPDATE's bound parameters may not be named after its table's columns
    at = bindparam("b_at", type_=timers.c.stopped_at.type)
    subject = timers.c.referral_id == bindparam("b_referral_id") if referral else timers.c.referral_id.is_(None)
    return Prepared(update(timers).where(timers.c.call_ref == bindparam("b_call_ref"), subject,
                                         timers.c.kind == bindparam("b_kind"), timers.c.stopped_at.is_(None))
                    .values(stopped_at=at, fired_at=func.coalesce(timers.c.fired_at, at),
                            outcome=func.coalesce(timers.c.outcome, "stopped")))


_STOP_CALL_CLOCK = _stop_clock(referral=False)
_STOP_REFERRAL_CLOCK = _stop_clock(referral=True)


# Logging a call causes one audit event and one outbox event, and one timer when its centre has a triage
# clock; other shapes take the ORM path. (One audit event: the statement hashes exactly one.)
_NEW_CALL_SHAPES = {(1, 1, 1), (1, 1, 0)}


# Columns no record has yet when a call is logged: left out of the statement (they stay NULL), which keeps
# it at 50 parameters or fewer, the most psycopg caches the parsed query for (about 0.5 ms a call).
_UNSET_AT_LOGGING = {
    "calls": {"route", "callback_due", "closed_at", "breach", "breached_at", "pseudonymised_at"},
    "outbox": {"published_at", "processed_at", "last_error"},
    "timers": {"enqueued_at", "fired_at", "outcome", "stopped_at"},
}


def _unset_at_logging(call: Call, result: Result) -> bool:
    return all(getattr(obj, name) is None
               for table, objs in (("calls", [call]), ("outbox", result.outbox), ("timers", result.timers))
               for obj in objs for name in _UNSET_AT_LOGGING[table])


# Columns whose value at logging is, by construction, the call's own: bound once, as the call's parameter
# (checked before the statement is used: _shared_values_agree). Keeps the statement's parameters few.
_SHARED = {
    "calls": {"queued_at": "logged_at", "updated_at": "logged_at", "consent_recorded_at": "logged_at",
              "consent_recorded_by": "logged_by", "centre_path": "centre", "origin_centre": "centre"},
    "audit_events": {"at": "logged_at", "call_ref": "ref", "entity_id": "ref"},
    "outbox": {"created_at": "logged_at"},
    "timers": {"call_ref": "ref", "created_at": "logged_at"},
}


def _shared_values_agree(call: Call, result: Result) -> bool:
    return all(getattr(obj, col) == getattr(call, source)
               for table, objs in (("calls", [call]), ("audit_events", result.audit), ("outbox", result.outbox),
                                   ("timers", result.timers))
               for obj in objs for col, source in _SHARED[table].items())


# The audit event's number and hash come from the chain's head, in the statement itself.
_FROM_HEAD = {"audit_events": {"seq", "hash"}}


@functools.cache
def _columns(table_name: str) -> list[Column[Any]]:
    from .orm import metadata

    # Every column but an autoincrement key (calls: the database numbers them), those still unset, those
    # bound as the call's own value and those the chain's head gives.
    skip = (_UNSET_AT_LOGGING.get(table_name, set()) | set(_SHARED.get(table_name, {}))
            | _FROM_HEAD.get(table_name, set()))
    return [c for c in metadata.tables[table_name].columns
            if not (c.primary_key and c.autoincrement is not False and c.type.python_type is int)
            and c.name not in skip]


@functools.cache
def _param_names(prefix: str, table_name: str) -> tuple[str, ...]:
    """The statement's parameters for a table's columns, under a prefix (c: the call, a0: its audit event)."""
    return tuple(f"{prefix}_{c.name}" for c in _columns(table_name))


@functools.cache
def _values_of(table_name: str) -> Callable[[object], tuple[Any, ...]]:
    """An object's values of the table's columns, in one C call (attrgetter of the names, and of the first
    again, so that a single column comes as a tuple too: it is dropped)."""
    names = [c.name for c in _columns(table_name)]
    take = operator.attrgetter(*names, names[0])
    return lambda obj: take(obj)[:-1]


def _params(obj: object, prefix: str, table_name: str) -> dict[str, Any]:
    # On every intake: the parameters' names are made once per prefix, not per call (docs/performance.md,
    # "Intake's app CPU cut").
    return dict(zip(_param_names(prefix, table_name), _values_of(table_name)(obj), strict=True))


_statements: dict[tuple[int, int, int], Prepared] = {}


def _new_call_statement(shape: tuple[int, int, int]) -> Prepared:
    """Built once per shape with bound parameters and prepared (adapters/prepared.py): SQLAlchemy's cache key
    of a statement this large, built on every execution through Core, cost more than the statement."""
    prepared_statement = _statements.get(shape)
    if prepared_statement is None:
        from sqlalchemy import (
            ColumnClause,
            LargeBinary,
            Text,
            bindparam,
            case,
            cast,
            func,
            insert,
            literal_column,
            select,
            true,
            update,
        )

        from .orm import metadata

        calls = metadata.tables["calls"]

        def values(prefix: str, table_name: str) -> dict[str, Any]:
            table = metadata.tables[table_name]
            out = {c.name: bindparam(f"{prefix}_{c.name}", type_=c.type) for c in _columns(table_name)}
            out.update({col: bindparam(f"c_{source}", type_=calls.c[source].type)
                        for col, source in _SHARED[table_name].items() if col in table.c})
            return out

        # The head moves on by one and hashes the event: in SET, the columns are the old head's.
        heads = metadata.tables["audit_chain_heads"]
        newline: ColumnClause[Any] = literal_column("E'\\n'")
        one: ColumnClause[Any] = literal_column("1")
        link = func.encode(func.sha256(
            func.convert_to(heads.c.hash.concat(newline).concat(cast(heads.c.seq + one, Text)).concat(newline),
                            literal_column("'UTF8'"))
            .op("||")(bindparam("a0_content", type_=LargeBinary))), literal_column("'hex'"))
        head = (update(heads).where(heads.c.chain == literal_column("'audit'"))
                .values(seq=heads.c.seq + one, hash=link).returning(heads.c.seq, heads.c.hash).cte("chain_head"))
        new_call = insert(calls).values(values("c", "calls")).returning(calls.c.id).cte("new_call")
        # One row each: joined on true (a cross join, said so). Without a head row the join is outer and the
        # guard divides by zero: the statement fails, and with it the transaction, so the call is never
        # committed without its audit event even though COMMIT goes in the same batch (UnitOfWork.commit).
        guard = literal_column("1") / case((head.c.seq.is_(None), literal_column("0")), else_=literal_column("1"))
        stmt = select(new_call.c.id, head.c.seq, head.c.hash, guard.label("head_guard")).select_from(
            new_call.outerjoin(head, true()))
        audit = metadata.tables["audit_events"]
        event = values("a0", "audit_events")
        stmt = stmt.add_cte(insert(audit).from_select(
            ["seq", "hash", *event], select(head.c.seq, head.c.hash,
                                            *[cast(v, audit.c[k].type) for k, v in event.items()]))
            .cte("ins_a0"))
        for prefix, n, table_name in zip("ot", shape[1:], ("outbox", "timers")):
            for i in range(n):
                stmt = stmt.add_cte(insert(metadata.tables[table_name])
                                    .values(values(f"{prefix}{i}", table_name)).cte(f"ins_{prefix}{i}"))
        prepared_statement = _statements[shape] = Prepared(stmt)
    return prepared_statement
