"""Loading and saving calls. Reads for screens and figures live in adapters/queries.py."""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    bindparam,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.instrumentation import manager_of_class

from ..domain.errors import VersionConflict
from ..domain.model import AuditEvent, Call, Referral
from .orm import audit_events, calls, referrals
from .prepared import Prepared, batched, in_batch, one_row_or_fail


class OpenCallRow(NamedTuple):
    ref: str
    centre: str
    centre_path: str | None
    state: str
    logged_at: datetime
    need: str
    urgency: str


class CallRepository:
    """Calls as aggregates: a call with its referrals, loaded by `get` and saved by `save_changes` (the unit
    of work's commit).

    A call loaded by `get` is read by Core and never enters the ORM session. What its columns held is kept
    beside it (_Tracked), and at commit only what changed is written: one Core UPDATE per changed row with
    its version check (WHERE version = the version loaded; none updated is a VersionConflict), an INSERT
    for a new referral, and an INSERT for a call added by `add`. The ORM's flush did the same work at
    several times the cost, a quarter of a workflow step (docs/performance.md, "Engine core"). `get`
    returns the same object for the same ref within a unit of work, as the session's identity map did.
    (Read models still load calls through the ORM mapping, read-only.)"""

    def __init__(self, session: Session):
        self.session = session
        self._tracked: dict[str, _Tracked] = {}
        session.info[_CALLS] = self._tracked  # for in_transaction: a hook sees the session, not the store

    def add(self, call: Call) -> None:
        """A new call (with any referrals it has): INSERTed by save_changes, which gives it its id."""
        self._tracked[call.ref] = _Tracked(call, new=True)

    def get(self, ref: str) -> Call | None:
        """The call with its referrals, in one SELECT (joined), read by Core: every use case that changes a
        call reads them (the access policy's facts, the workflow).

        On PostgreSQL, when the transaction has sent nothing yet, the SELECT goes before its BEGIN, alone
        (adapters/prepared.Prepared.rows_before_transaction), and the BEGIN with the step's writes and COMMIT.
        It reads what it would inside: under READ COMMITTED a read takes no lock and sees what was committed
        when it began, in a transaction or not; what the step then writes is checked against the versions
        read (save_changes). Sending the BEGIN with it took a batch of its own (psycopg's pipeline mode),
        which costs more of the app's CPU than the statement: 6% of a workflow step (docs/performance.md,
        "Engine core")."""
        tracked = self._tracked.get(ref)
        if tracked is not None:
            return tracked.call
        rows = _CALL_AND_REFERRALS.rows_before_transaction(self.session.connection(), {"b_ref": ref})
        if not rows:
            return None
        n = len(_CALL_COLUMNS)
        call = _loaded(Call, _CALL_COLUMNS, rows[0][:n])
        set_committed_value(call, "referrals", [_loaded(Referral, _REFERRAL_COLUMNS, row[n:])
                                                for row in rows if row[n] is not None])
        self._tracked[ref] = _Tracked(call)
        return call

    def save_changes(self) -> Callable[[], None]:
        """Write what changed in the calls loaded by `get` (see the class). Returns the check to make before
        COMMIT, which raises VersionConflict when a row's version was no longer the one loaded (someone else
        changed it first). Inside a batch (adapters/prepared.batched, PostgreSQL) the COMMIT goes with the
        UPDATEs, so each UPDATE checks its row's version itself and fails the transaction
        (UnitOfWork.commit raises the VersionConflict), and there is nothing left to check."""
        if not self._tracked:
            return _nothing_to_check
        connection = self.session.connection()
        updates: list[Callable[[], int]] = []
        for tracked in self._tracked.values():
            tracked.save(connection, updates)

        def check() -> None:
            if any(updated() != 1 for updated in updates):
                raise VersionConflict(None, None)

        return check

    def lock_and_find_open(self, nhs_number: str, final_states: set[str], limit: int = 10) -> list[OpenCallRow]:
        """Intakes for one NHS number serialised from this check to commit, and the person's most recent
        open calls (ref, centre, state, logged_at, need, urgency): enough for the handler to recognise a
        duplicate. Bounded, and plain rows rather than entities, because every intake asks.

        The lock: without it, concurrent intakes all find no open call and all insert one (10 at once made
        7). On PostgreSQL a transaction-scoped advisory lock, released by commit or rollback, in a statement
        of its own before the check's, because a statement's snapshot is taken when it starts (READ
        COMMITTED): the check must start after the lock is held to see the call its holder committed. The
        two go in one batch with the transaction's BEGIN (adapters/prepared.batched: one round trip), which
        the server still runs one after the other. SQLite needs no lock: BEGIN IMMEDIATE already makes each
        writing transaction wait for the one before."""
        connection = self.session.connection()
        params = {"b_nhs_number": nhs_number, "b_limit": limit}
        find = _open_for_nhs_number(frozenset(final_states))
        if connection.dialect.name != "postgresql":
            return [OpenCallRow(*row) for row in find.rows(connection, params)]
        digest = hashlib.sha256(nhs_number.encode()).digest()
        with batched(connection):
            _LOCK_INTAKE.run(connection, {"b_key": int.from_bytes(digest[:4], "big", signed=True)})
            rows = find.rows_later(connection, params)
        return [OpenCallRow(*row) for row in rows()]

    def logged_in(self, centre: str, start: datetime, end: datetime, limit: int) -> list[Call]:
        """A centre's calls logged in [start, end), oldest first, at most limit."""
        return list(self.session.scalars(
            select(Call).where(calls.c.centre == centre, calls.c.logged_at >= start, calls.c.logged_at < end)
            .order_by(calls.c.logged_at).limit(limit)))

    def history(self, ref: str) -> list[AuditEvent]:
        stmt = select(audit_events).where(audit_events.c.call_ref == ref).order_by(audit_events.c.seq)
        return [AuditEvent(**row._mapping) for row in self.session.execute(stmt)]


def in_transaction(session: Session, ref: str) -> Call | None:
    """The call `ref` if the unit of work on this session has loaded or added it, else None."""
    tracked: dict[str, _Tracked] = session.info.get(_CALLS, {})
    found = tracked.get(ref)
    return found.call if found is not None else None


_CALLS = "ipoa.calls"  # the session.info key of a unit of work's calls
_CALL_COLUMNS = tuple(c.name for c in calls.columns)
_REFERRAL_COLUMNS = tuple(c.name for c in referrals.columns)
_T = TypeVar("_T")

# A call's row joined with each of its referrals' (or with NULLs when it has none), oldest referral first:
# built once, with a bound parameter (b_*: distinct from the columns' names).
_CALL_AND_REFERRALS = Prepared(select(*calls.columns, *referrals.columns)
                               .select_from(calls.outerjoin(referrals, referrals.c.call_id == calls.c.id))
                               .where(calls.c.ref == bindparam("b_ref")).order_by(referrals.c.sent_at))


@functools.lru_cache(maxsize=16)
def _open_for_nhs_number(final_states: frozenset[str]) -> Prepared:
    """Built once per workflow's final states, with bound parameters: each intake only binds (the states
    are written into the statement, so nothing is expanded per execution)."""
    return Prepared(select(calls.c.ref, calls.c.centre, calls.c.centre_path, calls.c.state, calls.c.logged_at,
                           calls.c.need, calls.c.urgency)
                    .where(calls.c.nhs_number == bindparam("b_nhs_number"),
                           calls.c.state.not_in([literal(state) for state in sorted(final_states)]))
                    .order_by(calls.c.logged_at.desc()).limit(bindparam("b_limit", type_=Integer)))


def _loaded(cls: type[_T], names: tuple[str, ...], values: Sequence[Any]) -> _T:
    """An instance of a mapped class as the ORM's loading makes one: without calling __init__, its columns'
    values set directly (no change events)."""
    obj: _T = manager_of_class(cls).new_instance()
    obj.__dict__.update(zip(names, values))
    return obj


def _values(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    # A JSON column's dict is compared, not copied: as with the ORM's JSON type, a change is a new value
    # (the domain never changes one in place). Read from the instance's dict: no attribute events.
    state = obj.__dict__
    return dict(zip(names, map(state.get, names)))  # (a dict comprehension's Python-level calls: twice the time)


class _Tracked:
    """A call of the unit of work and the column values it and its referrals were last saved with (None: a
    new call, not yet saved)."""

    __slots__ = ("call", "saved", "saved_referrals")

    def __init__(self, call: Call, new: bool = False):
        self.call = call
        self.saved: dict[str, Any] | None = None if new else _values(call, _CALL_COLUMNS)
        self.saved_referrals = {} if new else {r.id: _values(r, _REFERRAL_COLUMNS) for r in call.referrals}

    def save(self, connection: Connection, updates: list[Callable[[], int]]) -> None:
        """updates: each UPDATE's count of rows changed, to be read before COMMIT (one, or a conflict)."""
        call = self.call
        now = _values(call, _CALL_COLUMNS)
        if self.saved is None:
            del now["id"]  # the database numbers calls
            (new_id,) = _INSERT_CALL.rows(connection, now)[0]
            now["id"] = cast("_Keyed", call).id = new_id
        else:
            _update(connection, calls, self.saved, now, updates)
        referrals_now: dict[str, dict[str, Any]] = {}
        for referral in call.referrals:
            values = _values(referral, _REFERRAL_COLUMNS)
            values["call_id"] = now["id"]
            saved = self.saved_referrals.get(referral.id)
            if saved is None:
                _INSERT_REFERRAL.run(connection, values)
            else:
                _update(connection, referrals, saved, values, updates)
            referrals_now[referral.id] = values
        if set(self.saved_referrals) - set(referrals_now):
            raise RuntimeError(f"call {call.ref}: a referral was removed; referrals are never deleted")
        self.saved, self.saved_referrals = now, referrals_now


class _Keyed(Protocol):
    id: int  # the calls table's key, which the domain class does not declare (the database numbers it)


def _update(connection: Connection, table: Table, saved: dict[str, Any], now: dict[str, Any],
            updates: list[Callable[[], int]]) -> None:
    changed = {name: value for name, value in now.items() if value != saved[name]}
    if not changed:
        return
    if in_batch(connection):
        # PostgreSQL, with the COMMIT in the same batch: the count would come back with the COMMIT's answer,
        # too late to stop it, so the statement checks the version itself and fails the transaction.
        params = {f"v_{name}": value for name, value in changed.items()}
        params["b_id"], params["b_version"] = saved["id"], saved["version"]
        _checked_update_by_version(table, tuple(changed)).run(connection, params)  # (no count to read)
        return
    # b_*: an UPDATE's own bound parameters may not be named after the table's columns
    updates.append(_update_by_version(table, tuple(changed)).run_later(
        connection, {"b_id": saved["id"], "b_version": saved["version"], **changed}))


def _nothing_to_check() -> None:
    return None


@functools.lru_cache(maxsize=256)  # the sets of columns a step changes are few (a state, a version, a time...)
def _update_by_version(table: Table, columns: tuple[str, ...]) -> Prepared:
    """UPDATE table SET <columns> WHERE id = :b_id AND version = :b_version: prepared once per set of
    columns changed."""
    return Prepared(update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version")),
                    column_keys=columns)


# What the database says when a checked UPDATE found the row at another version (UnitOfWork.commit makes it a
# VersionConflict).
VERSION_CHANGED = "ipoa: the row was changed by someone else first"


@functools.lru_cache(maxsize=256)
def _checked_update_by_version(table: Table, columns: tuple[str, ...]) -> Prepared:
    """As _update_by_version, failing the statement (and the transaction) unless it updated the row
    (adapters/prepared.one_row_or_fail). v_*: the new values (a SET's bound parameters may not be named after
    the columns either)."""
    changed = (update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
               .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
               .returning(table.c.id).cte("versioned"))
    return Prepared(one_row_or_fail(changed, VERSION_CHANGED))


_INSERT_REFERRAL = Prepared(insert(referrals), column_keys=_REFERRAL_COLUMNS)
# Every column but the key, which the database numbers.
_INSERT_CALL = Prepared(insert(calls).returning(calls.c.id), column_keys=_CALL_COLUMNS[1:])


# pg_advisory_xact_lock(space, key): this space is the duplicate check's, so its keys never meet another
# advisory lock's. The key is a hash of the NHS number, not the number: locks show in pg_locks.
_INTAKE_LOCK_SPACE = 0x1A0A
_LOCK_INTAKE = Prepared(text(f"SELECT pg_advisory_xact_lock({_INTAKE_LOCK_SPACE}, CAST(:b_key AS integer))")
                        .bindparams(bindparam("b_key", type_=Integer)))
