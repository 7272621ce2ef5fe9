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
count and time statements) see each statement, with a bare object as its context."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, NoReturn, cast

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement's SQL for one dialect, with how to bind a mapping of parameters and read a row."""

    __slots__ = ("sql", "binds", "positional", "columns")

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect,
                                                       column_keys=list(column_keys) if column_keys else None))
        self.sql = compiled.string
        processors: Mapping[str, Any] = compiled._bind_processors  # what Core applies to each bound value
        binds = compiled.binds

        def bind(name: str) -> tuple[str, Processor, Any]:
            param = binds[name]
            # A literal in the statement (a bound value given at build time) is its own default.
            return name, processors.get(name), param.effective_value if not param.required else _REQUIRED

        self.positional = compiled.positiontup is not None
        names = compiled.positiontup if compiled.positiontup is not None else list(binds)
        self.binds = [bind(name) for name in names]
        # A SELECT's columns, or an INSERT's or UPDATE's RETURNING (none without it)
        returned = getattr(statement, "exported_columns", ())
        self.columns: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned]

    def parameters(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = []
        for name, process, default in self.binds:
            value = given.get(name, default)
            if value is _REQUIRED:
                raise exc.ArgumentError(f"a value is required for bound parameter {name!r}")
            values.append(process(value) if process is not None and value is not None else value)
        if self.positional:
            return values
        return {name: value for (name, _, _), value in zip(self.binds, values)}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(self.columns, raw))


_REQUIRED = object()


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

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        rows = self.rows(connection, params)
        return rows[0] if rows else None

    def run(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Runs the statement; how many rows it changed (the driver's rowcount)."""
        compiled = self._compiled(connection.dialect)
        count: int = _run(connection, compiled, compiled.parameters(params), many=False, fetch=False)
        return count

    def run_many(self, connection: Connection, params: Iterable[Mapping[str, Any]]) -> None:
        """Runs the statement once per mapping (the driver's executemany)."""
        compiled = self._compiled(connection.dialect)
        batch = [compiled.parameters(p) for p in params]
        if batch:
            _run(connection, compiled, batch, many=True, fetch=False)


def _run(connection: Connection, compiled: _Compiled, parameters: Any, *, many: bool, fetch: bool) -> Any:
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:
        raise exc.ResourceClosedError("the unit of work's connection is closed")
    cursor = dbapi_connection.cursor()
    dispatch = connection.dispatch
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
        return cursor.fetchall() if fetch else cursor.rowcount
    except connection.dialect.loaded_dbapi.Error as error:
        _raise(connection, cursor, compiled.sql, parameters, error, many)
    finally:
        cursor.close()


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
        connection.invalidate(error)
    raise wrapped from error
