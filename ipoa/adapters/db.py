"""Database engine, sessions and migrations."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from ..paths import MIGRATIONS
from .orm import start_mappers
from .prepared import Prepared


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
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


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
