"""Database engine, sessions and migrations."""
from __future__ import annotations

import time
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from ..paths import MIGRATIONS
from . import held_connections, json_text
from .orm import start_mappers
from .prepared import Prepared, begin_with_first_statement


def normalise_url(url: str) -> str:
    # Operators write postgresql://; we drive it with psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    url = normalise_url(url)
    kwargs["hide_parameters"] = True  # a failed statement's message must not carry the row's identifiers
    kwargs.setdefault("json_serializer", json_text.dumps)  # the JSON columns' text, by orjson (json_text.py)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: writers queue for the lock up front
            # instead of failing on a read-to-write upgrade, so stale versions surface as conflicts.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            _BEGIN_IMMEDIATE.run(conn, {})  # on the DB-API cursor: every unit of work begins so

        return engine
    ping_after_idle = kwargs.pop("ping_after_idle", PING_AFTER_IDLE)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, ping_after_idle)
    begin_with_first_statement(engine)
    # A thread keeps its connection between units of work, tested as the pool tests one at check-out
    # (adapters/held_connections.py).
    held_connections.keep_for(engine, _reusable(engine, ping_after_idle))
    return engine


# A pooled PostgreSQL connection is pinged before use when it has sat unused in the pool for longer than this
# (seconds), not on every checkout (the pool's pre_ping): the ping is a round trip, one of six a workflow step
# made (docs/performance.md, "Engine core"). A connection handed back moments ago was working moments ago; one
# idle longer may have been closed by a server restart, a failover or an idle timeout, and is replaced unseen.
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = held_connections.IDLE_SINCE  # the pool record's info key: when the connection was last handed back


def _ping_when_idle(engine: Engine, after: float) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        if _used_lately(record.info, after):
            return
        if (closed := _closed_by_server(dialect, dbapi_connection)) is not None:
            # As the pool's own pre_ping: this connection is discarded and another checked out (a new one if
            # need be), and every connection made before now is replaced when next checked out (the server
            # may have restarted).
            raise exc.InvalidatePoolError("the pooled connection was closed") from closed


def _used_lately(info: dict, after: float) -> bool:
    """Idle (handed back to the pool, or kept by a thread) for at most `after` seconds: not pinged."""
    since = info.get(_IDLE_SINCE)
    return since is not None and time.monotonic() - since <= after


def _closed_by_server(dialect, dbapi_connection) -> Exception | None:
    """Pinged: the driver's error when the server has closed the connection; None when it answered. Any other
    error is raised."""
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        if not dialect.is_disconnect(error, dbapi_connection, None):
            raise
        return error
    return None


def _reusable(engine: Engine, after: float) -> Callable[[Connection], bool]:
    """The test a connection a thread kept (adapters/held_connections.py) passes before it is used again: the
    pool's own at check-out. Not when the pool has seen a disconnect since the connection was made (as the
    pool recycles it); pinged when idle longer than `after` (as _ping_when_idle); invalidated, and False,
    when either finds it unfit."""
    dialect = engine.dialect

    def reusable(connection: Connection) -> bool:
        fairy = connection.connection
        record = getattr(fairy, "_connection_record", None)
        if record is not None and engine.pool._invalidate_time > record.starttime:  # (dispose() makes a new pool)
            connection.invalidate()
            return False
        if _used_lately(connection.info, after):
            return True
        dbapi_connection = fairy.dbapi_connection
        if dbapi_connection is None:  # (invalidated meanwhile)
            return False
        if _closed_by_server(dialect, dbapi_connection) is not None:
            connection.invalidate()
            return False
        return True

    return reusable


# Prepared once (adapters/prepared.py): SQLAlchemy's own handling of a statement was most of its cost.
_BEGIN_IMMEDIATE = Prepared(text("BEGIN IMMEDIATE"))


def make_session_factory(engine: Engine) -> sessionmaker:
    start_mappers()
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")
