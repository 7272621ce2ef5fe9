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
