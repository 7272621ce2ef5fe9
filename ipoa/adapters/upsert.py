"""INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite alike: the stores' way to record a row that
may be there already (a retry, two relays, a race) without reading it first."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """One statement, compiled once and cached, executed for all the rows; a row whose unique key is taken
    is left as it is."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def insert_one_ignoring_conflict(session: Session, table: Table, row: dict[str, Any]) -> bool:
    """One row, if its unique key is free: whether it was inserted (one round trip, no read first). Told by
    RETURNING, not the rowcount, which psycopg leaves at -1 for this statement. The statement is built once
    per table and dialect, its values bound at execution (building it with the values would construct a
    bound parameter per column on every call)."""
    name = session.get_bind().dialect.name
    stmt = _INSERT_ONE.get((table.name, name))
    if stmt is None:
        dialect = postgresql if name == "postgresql" else sqlite
        stmt = _INSERT_ONE[(table.name, name)] = (
            dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns))
    return session.execute(stmt, row).first() is not None


_INSERT_ONE: dict[tuple[str, str], Any] = {}
