"""The statements a workflow step runs on every call, compiled by SQLAlchemy once per database dialect and
run on the DB-API cursor of the unit of work's own connection.

Why: SQLAlchemy Core's own work per execution (the statement's cache key, the compiled form's look-up, the
parameters' construction, the result's metadata) took about 20 µs of a 25 µs statement on SQLite, and
each step runs about seven of them (docs/performance.md, "Engine core"). A Prepared statement is compiled
by SQLAlchemy from the same Table metadata, once per dialect, and keeps SQLAlchemy's own bind and result
processors: the values written and read are exactly those Core writes and reads. Each use only binds
and runs it, in the transaction the session began (same connection, same locks).

What Core would also do, kept: a driver error is raised as SQLAlchemy's exception for it (IntegrityError,
OperationalError, ... with the parameters hidden, as the app's engine hides them), a lost connection is
invalidated, and listeners of the engine's before/after_cursor_execute events (the tests and benchmarks
count and time statements) see each statement, with a bare object as its context.

On PostgreSQL a unit of work's writes at commit go as one batch ending with its COMMIT (`batched`: psycopg's
pipeline mode; `commit_in_batch`), two round trips instead of one per statement and one for the COMMIT; a
statement's row count (a version check) is read when the batch's results come in (`Prepared.run_later`),
and rows a batch's statement returns can be read once it is over (`Prepared.rows_later`)."""
from __future__ import annotations

import functools
import operator
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, NoReturn, cast

from sqlalchemy import Connection, Engine, event, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement's SQL for one dialect, with how to bind a mapping of parameters and read a row."""

    __slots__ = ("sql", "names", "positional", "defaults", "take", "bind_processors", "row_processors")

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect,
                                                       column_keys=list(column_keys) if column_keys else None))
        self.sql = compiled.string
        processors: Mapping[str, Any] = compiled._bind_processors  # what Core applies to each bound value
        binds = compiled.binds
        self.positional = compiled.positiontup is not None
        self.names: list[str] = list(compiled.positiontup if compiled.positiontup is not None else binds)
        # A literal in the statement (a value given when it was built) is its own default.
        self.defaults = {name: binds[name].effective_value for name in self.names if not binds[name].required}
        # The values in order, taken in one C call (itemgetter gives a single value alone, not in a tuple).
        self.take = (operator.itemgetter(*self.names, self.names[0]) if self.names else None)
        self.bind_processors = [(i, processors[name]) for i, name in enumerate(self.names) if name in processors]
        # A SELECT's columns, or an INSERT's or UPDATE's RETURNING (none without it)
        returned = getattr(statement, "exported_columns", ())
        self.row_processors = [(i, process) for i, process in enumerate(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned)
            if process is not None]

    def parameters(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if self.take is None:
            return [] if self.positional else {}
        if self.defaults:
            given = {**self.defaults, **given}
        try:
            values = list(self.take(given))[:-1]  # the last: the first again, so that one name is a tuple too
        except KeyError as missing:
            raise exc.ArgumentError(f"a value is required for bound parameter {missing.args[0]!r}") from None
        for i, process in self.bind_processors:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        return values if self.positional else dict(zip(self.names, values))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.row_processors:
            return tuple(raw)  # the drivers' rows are tuples already: no copy
        values = list(raw)
        for i, process in self.row_processors:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        return tuple(values)


class Prepared:
    """A Core statement (SELECT, INSERT, UPDATE, with or without RETURNING) run on the DB-API cursor.
    column_keys: the columns an INSERT or UPDATE sets, when they are not in the statement itself (as
    `compile(column_keys=...)`)."""

    __slots__ = ("statement", "column_keys", "_by_dialect", "_lock")

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = tuple(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            with self._lock:
                compiled = self._by_dialect.get(dialect.name)
                if compiled is None:
                    compiled = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect, self.column_keys)
        return compiled

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row the statement returns, each value as Core would give it."""
        compiled = self._compiled(connection.dialect)
        raw = _run(connection, compiled, compiled.parameters(params), many=False, fetch=True)
        return [compiled.row(r) for r in raw]

    def rows_later(self, connection: Connection, params: Mapping[str, Any]) -> Callable[[], list[tuple[Any, ...]]]:
        """As `rows`, but inside `batched` sent with the batch and read once the batch is in (after it ends):
        no round trip of its own. The returned function gives the rows."""
        if _BATCH not in connection.info:
            found = self.rows(connection, params)
            return lambda: found
        compiled = self._compiled(connection.dialect)
        cursor = _run(connection, compiled, compiled.parameters(params), many=False, fetch=False, cursor_back=True)
        connection.info[_BATCH].cursors.remove(cursor)  # still to be read: closed when read, not by the batch

        def read() -> list[tuple[Any, ...]]:
            try:
                found = [compiled.row(r) for r in cursor.fetchall()]
            except connection.dialect.loaded_dbapi.Error as error:
                cursor.close()
                _raise(connection, cursor, compiled.sql, None, error, False)
            _done(connection.info, connection.connection.dbapi_connection, cursor)
            return found

        return read

    def rows_before_transaction(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """As `rows`, for a plain read (no lock taken, nothing written) made before the transaction has sent
        anything: on PostgreSQL it then goes on its own, one round trip without the BEGIN, which stays pending
        for the transaction's first statement (which may then be its only one: `alone`). It sees what it would
        inside the transaction: under READ COMMITTED, PostgreSQL's default and the app's, every statement sees
        what was committed when it began, in a transaction or not. Once the transaction has begun (or on
        SQLite, whose BEGIN IMMEDIATE comes first), it runs in the transaction as `rows` does."""
        info = connection.info
        pending = info.pop(BEGIN_PENDING, False)
        try:
            return self.rows(connection, params)
        finally:
            if pending:
                info[BEGIN_PENDING] = True

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        rows = self.rows(connection, params)
        return rows[0] if rows else None

    def run(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Runs the statement; how many rows it changed (the driver's rowcount)."""
        compiled = self._compiled(connection.dialect)
        count: int = _run(connection, compiled, compiled.parameters(params), many=False, fetch=False)
        return count

    def run_later(self, connection: Connection, params: Mapping[str, Any]) -> Callable[[], int]:
        """Runs the statement, or inside `batched` sends it with the batch; the returned function gives how
        many rows it changed, once the batch's results are in (it waits for them if need be)."""
        batch: _Batch | None = connection.info.get(_BATCH)
        if batch is None:
            count = self.run(connection, params)
            return lambda: count
        compiled = self._compiled(connection.dialect)
        cursor = _run(connection, compiled, compiled.parameters(params), many=False, fetch=False, cursor_back=True)
        batch.cursors.remove(cursor)  # its count is read after the batch, maybe: closed then, never reused
        batch.kept.append(cursor)

        def rowcount() -> int:
            if cursor.rowcount < 0:  # not in yet: psycopg gives -1 until the batch's results are read
                batch.sync(connection)
            return int(cursor.rowcount)

        return rowcount

    def run_many(self, connection: Connection, params: Iterable[Mapping[str, Any]]) -> None:
        """Runs the statement once per mapping (the driver's executemany)."""
        compiled = self._compiled(connection.dialect)
        batch = [compiled.parameters(p) for p in params]
        if batch:
            _run(connection, compiled, batch, many=True, fetch=False)


def _run(connection: Connection, compiled: _Compiled, parameters: Any, *, many: bool, fetch: bool,
         cursor_back: bool = False) -> Any:
    """The rows (fetch), else the rowcount, or with cursor_back the cursor itself. Inside `batched`, a
    statement whose rows are not fetched at once has its results later: its cursor stays open until the
    batch ends (rowcount -1 until then)."""
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:
        raise exc.ResourceClosedError("the unit of work's connection is closed")
    info = connection.info
    batch: _Batch | None = info.get(_BATCH)
    if batch is None and BEGIN_PENDING in info:
        # The transaction's first statement: sent in a batch after its BEGIN, one round trip for both
        # (begin_with_first_statement), its rows or count read once the batch is in.
        with batched(connection):
            cursor = _run(connection, compiled, parameters, many=many, fetch=False, cursor_back=True)
            connection.info[_BATCH].cursors.remove(cursor)
        try:
            found = cursor.fetchall() if fetch else cursor.rowcount
        except connection.dialect.loaded_dbapi.Error as error:
            cursor.close()
            _raise(connection, cursor, compiled.sql, parameters, error, many)
        _done(info, dbapi_connection, cursor)
        return found
    if batch is not None and info.pop(BEGIN_PENDING, False):
        _send_begin(connection, batch)  # the batch's first statement: its transaction's BEGIN goes first
    cursor = _cursor(info, dbapi_connection)
    later = batch is not None and not fetch
    if later and batch is not None:
        batch.cursors.append(cursor)
    # The engine's listeners (the app's engine is where the tests and benchmarks listen): its dispatch lasts,
    # where a new Connection's (one per unit of work) builds its joined listeners on first use.
    dispatch = connection.engine.dispatch
    context = SimpleNamespace() if (dispatch.before_cursor_execute or dispatch.after_cursor_execute) else None
    try:
        if context is not None:
            dispatch.before_cursor_execute(connection, cursor, compiled.sql, parameters, context, many)
        if many:
            cursor.executemany(compiled.sql, parameters)
        else:
            cursor.execute(compiled.sql, parameters)
        if context is not None:
            dispatch.after_cursor_execute(connection, cursor, compiled.sql, parameters, context, many)
        if cursor_back:
            return cursor
        found = cursor.fetchall() if fetch else cursor.rowcount
    except BaseException as error:
        if not later:
            cursor.close()
        if isinstance(error, connection.dialect.loaded_dbapi.Error):
            _raise(connection, cursor, compiled.sql, parameters, error, many)
        raise
    if not later:
        _done(info, dbapi_connection, cursor)
    return found


# PostgreSQL: a DB-API connection's cursors read to the end and done with, for its next statements. A psycopg
# cursor costs about 11 µs to make (its adapters' set-up), and a workflow step ran about seven, one per
# statement, BEGIN and COMMIT (docs/performance.md, "Engine core"). The connection's info (its pool record's,
# kept across check-outs) holds them with the DB-API connection they belong to, so that one reconnected is
# never handed another's. SQLite's cursors are closed as before: a cursor left with a statement not stepped
# to its end would keep it open, and one costs about 1 µs to make.
_FREE = "ipoa.free_cursors"
_FREE_MAX = 16


def _cursor(info: dict[Any, Any], dbapi_connection: Any) -> Any:
    free = info.get(_FREE)
    if free is not None and free[0] is dbapi_connection and free[1]:
        return free[1].pop()
    return dbapi_connection.cursor()


def _done(info: dict[Any, Any], dbapi_connection: Any, cursor: Any) -> None:
    """A cursor of this DB-API connection whose results were all read: kept for the connection's next
    statement (PostgreSQL), or closed. info: the connection's (Connection.info)."""
    if dbapi_connection is None or isinstance(dbapi_connection, sqlite3.Connection) or cursor.closed:
        cursor.close()
        return
    free = info.get(_FREE)
    if free is None or free[0] is not dbapi_connection:
        free = info[_FREE] = (dbapi_connection, [])
    if len(free[1]) < _FREE_MAX:
        free[1].append(cursor)
    else:
        cursor.close()


_BATCH = "ipoa.batch"  # the connection's info key of the batch under way (the pool's record: removed after)


class _Batch:
    __slots__ = ("pipeline", "cursors", "kept")

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.cursors: list[Any] = []  # read by the batch's end: free for the connection's next statements
        self.kept: list[Any] = []  # still to be read by someone after the batch (run_later's): closed

    def sync(self, connection: Connection) -> None:
        try:
            self.pipeline.sync()
        except connection.dialect.loaded_dbapi.Error as error:
            _raise(connection, None, "(a batch of statements)", None, error, False)


@contextmanager
def batched(connection: Connection) -> Iterator[Callable[[], None]]:
    """On PostgreSQL (psycopg), the statements run inside are sent together in psycopg's pipeline mode: one
    round trip until a result is needed (a fetch, `run_later`'s count, the yielded sync, COMMIT) instead of
    one per statement. A statement's error is raised when the batch's results are read, not when it is
    sent. Elsewhere (SQLite: no round trips) statements run as they come and the sync does nothing. Yields
    a function that reads the batch's results in so far."""
    dbapi_connection = connection.connection.dbapi_connection
    pipeline_of = getattr(dbapi_connection, "pipeline", None)
    if pipeline_of is None or connection.dialect.name != "postgresql" or _BATCH in connection.info:
        yield lambda: None
        return
    clean = False
    try:
        with pipeline_of() as pipeline:
            # A pending BEGIN goes with the batch's first statement (_run, or the cursor events' for Core's),
            # so a batch that sends none sends no BEGIN either (commit_in_batch: nor COMMIT).
            batch = connection.info[_BATCH] = _Batch(pipeline)
            yield functools.partial(batch.sync, connection)
        clean = True
    except connection.dialect.loaded_dbapi.Error as error:  # raised as the pipeline ended
        _raise(connection, None, "(a batch of statements)", None, error, False)
    finally:
        batch = connection.info.pop(_BATCH, None)
        if batch is not None:
            for cursor in batch.cursors:
                if clean:  # (every result in: the pipeline ended without an error)
                    _done(connection.info, dbapi_connection, cursor)
                else:
                    cursor.close()
            for cursor in batch.kept:
                cursor.close()


# PostgreSQL: the transaction's BEGIN is not yet sent (begin_with_first_statement). A key of the connection's
# info (its pool record's), as _BATCH.
BEGIN_PENDING = "ipoa.begin_pending"
_WROTE = "ipoa.wrote"  # the transaction ran a statement other than a SELECT


def _send_begin(connection: Connection, batch: _Batch | None, wrap: bool = True) -> None:
    """wrap=False: a driver's error raised as it is, for SQLAlchemy to handle (inside its own execution)."""
    dbapi_connection = connection.connection.dbapi_connection
    cursor = _cursor(connection.info, dbapi_connection)
    if batch is not None:
        batch.cursors.append(cursor)
    try:
        cursor.execute("BEGIN")
    except connection.dialect.loaded_dbapi.Error as error:
        if batch is None:
            cursor.close()
        if not wrap:
            raise
        _raise(connection, cursor, "BEGIN", None, error, False)
    if batch is None:
        _done(connection.info, dbapi_connection, cursor)


def begin_with_first_statement(engine: Engine) -> None:
    """On PostgreSQL, a transaction's BEGIN sent with its first statement: one round trip, not two.

    psycopg, left to begin transactions itself, sends BEGIN and waits for its answer before the first
    statement, even in pipeline mode (it must learn the transaction's status). So the app's connections are
    put in psycopg's autocommit mode, in which psycopg sends nothing of its own, and the BEGIN is ours: when
    SQLAlchemy begins a transaction, BEGIN is noted as pending on the connection, and it goes just before
    the transaction's first statement. A prepared statement (this module's, the hot paths) sends it in a
    batch with itself; any other statement of SQLAlchemy's sends it just before, as psycopg did. psycopg's
    commit() and rollback() go by the server's transaction status, so SQLAlchemy's commits and rollbacks are
    unchanged, and a transaction that ran no statement sends neither BEGIN nor COMMIT.

    Every statement of the app goes through SQLAlchemy's cursor events or this module (`_run`), which both
    send a pending BEGIN first: no statement of a transaction runs outside it
    (tests/integration/test_round_trips.py). A connection with SQLAlchemy's AUTOCOMMIT isolation level gets
    no BEGIN. Code that takes the DB-API connection itself (engine.raw_connection(), as bench/engine.py's
    baselines do) sets psycopg's autocommit to False to have psycopg's own transactions."""
    @event.listens_for(engine, "connect")
    def _ours(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "checkout")
    def _ours_again(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.info.pop(BEGIN_PENDING, None)
        record.info.pop(_WROTE, None)
        if not dbapi_connection.autocommit:  # SQLAlchemy set it back after an isolation level of its own
            dbapi_connection.autocommit = True

    @event.listens_for(engine, "begin")
    def _pending(connection: Connection) -> None:
        connection.info.pop(_WROTE, None)
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.info[BEGIN_PENDING] = True

    @event.listens_for(engine, "commit")
    def _over(connection: Connection) -> None:
        if not connection.invalidated:  # (an invalidated connection's info is gone with it: nothing pending)
            connection.info.pop(BEGIN_PENDING, None)
            connection.info.pop(_WROTE, None)

    @event.listens_for(engine, "rollback")
    def _over_reading(connection: Connection) -> None:
        """A transaction that only read is ended by COMMIT rather than ROLLBACK (the same for it): psycopg
        answers every ROLLBACK by forgetting the connection's prepared statements (DEALLOCATE ALL, one more
        round trip), and every read-only unit of work (a page, the API's token check) ends by rolling back.
        SQLAlchemy's rollback then finds no transaction and sends nothing."""
        if connection.invalidated:
            return
        info = connection.info
        info.pop(BEGIN_PENDING, None)
        if info.pop(_WROTE, False) or _BATCH in info:
            return
        dbapi_connection = connection.connection.dbapi_connection
        status = getattr(getattr(dbapi_connection, "info", None), "transaction_status", None)
        if status is not None and status.name == "INTRANS":
            try:
                dbapi_connection.commit()  # type: ignore[union-attr]
            except connection.dialect.loaded_dbapi.Error:
                pass  # SQLAlchemy's own rollback follows, and deals with the connection as it finds it

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_first(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        info = connection.info
        if info.pop(BEGIN_PENDING, False):
            # An error goes to SQLAlchemy as the statement's would (it wraps it, and a lost connection is
            # invalidated as its own statements' are).
            _send_begin(connection, info.get(_BATCH), wrap=False)
        if statement.lstrip()[:6].upper() != "SELECT":
            info[_WROTE] = True  # (anything but a plain SELECT counts as a write: WITH, SAVEPOINT, ...)


def in_batch(connection: Connection) -> bool:
    """Inside `batched` on PostgreSQL: what is sent now is answered only when the batch ends, with its COMMIT.
    A check that must stop the COMMIT is then made by the database itself (`one_row_or_fail`)."""
    return _BATCH in connection.info


def one_row_or_fail(changed: Any, message: str) -> Any:
    """A SELECT over a data-modifying CTE (`changed`, with RETURNING) that fails its statement, and so the
    transaction whose COMMIT follows in the same batch, unless the CTE changed exactly one row: the text
    `message` cast to an integer, which PostgreSQL refuses with the text in its error (`failed_check`). The
    cast's argument depends on the count, so the planner cannot fold it (and fail every time)."""
    from sqlalchemy import Integer, case, cast, func, literal_column, select

    quoted = "'" + message.replace("'", "''") + "'"
    return select(cast(case((func.count() == 1, literal_column("'1'")), else_=literal_column(quoted)), Integer)
                  ).select_from(changed)


def failed_check(error: exc.DBAPIError, message: str) -> bool:
    """Whether a driver's error is the refusal of a `one_row_or_fail` statement made with `message`."""
    return getattr(error.orig, "sqlstate", None) == "22P02" and message in str(error.orig)


def alone(connection: Connection) -> bool:
    """On PostgreSQL, whether the transaction has sent nothing yet (its BEGIN still pending), in which case
    the BEGIN is dropped: the caller's one statement then goes without BEGIN and COMMIT, a transaction of its
    own (the server commits a statement sent outside a transaction when it ends, as durably as a COMMIT),
    one round trip and no batch. The caller must send exactly one statement and then commit; the session's
    commit finds no transaction and sends nothing. False elsewhere (SQLite) and once anything was sent."""
    return bool(connection.info.pop(BEGIN_PENDING, False))


def commit_in_batch(connection: Connection) -> None:
    """Inside `batched` on PostgreSQL, the transaction's COMMIT sent as the batch's last statement: it goes,
    and its outcome comes back, in the batch's last round trip, and the session's own commit afterwards finds
    no transaction and sends nothing. (psycopg's `commit()` would wait for its answer, and the batch's end for
    another.) An error committing is raised as the batch ends. Elsewhere it does nothing: the session commits
    as usual."""
    batch: _Batch | None = connection.info.get(_BATCH)
    if batch is None:
        return
    if connection.info.pop(BEGIN_PENDING, False):
        return  # the transaction sent nothing: nothing to commit
    # Not a statement to the engine's listeners: Core's COMMIT is not one either (its `commit` event fires
    # when the session commits).
    cursor = _cursor(connection.info, connection.connection.dbapi_connection)
    batch.cursors.append(cursor)
    try:
        cursor.execute("COMMIT")
    except connection.dialect.loaded_dbapi.Error as error:
        _raise(connection, cursor, "COMMIT", None, error, False)


def _raise(connection: Connection, cursor: Any, sql: str, parameters: Any, error: Exception, many: bool) -> NoReturn:
    """As Core raises a driver's error: wrapped in SQLAlchemy's exception for it, the parameters hidden when
    the engine hides them (the app's does: a row's identifiers must not reach a log), a lost connection
    invalidated."""
    dialect = connection.dialect
    disconnect = dialect.is_disconnect(cast(Any, error), connection.connection.dbapi_connection, cursor)
    wrapped = exc.DBAPIError.instance(sql, parameters, error, dialect.loaded_dbapi.Error,
                                      hide_parameters=connection.engine.hide_parameters,
                                      connection_invalidated=disconnect, dialect=dialect, ismulti=many)
    if disconnect:
        # As Core: the server may have restarted, so every pooled connection made before now is replaced when
        # next checked out, and this one is discarded.
        connection.engine.pool._invalidate(connection.connection, error, _checkin=False)
        connection.invalidate(error)
    raise wrapped from error
