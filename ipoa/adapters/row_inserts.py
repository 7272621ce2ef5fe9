"""Rows written once and never changed by the unit of work that makes them (audit, access and security
events; outbox messages; timers), inserted by Core, one executemany per table, instead of by the ORM's flush.

Why: the ORM's flush of these rows was a quarter of a workflow step's time (docs/performance.md, "Engine
core"): identity map, state tracking and a topological sort for rows nobody loads back or changes in the
same transaction. Their classes are plain dataclasses, not mapped (adapters/orm.py): the tables' columns are
exactly their fields."""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from ..domain.model import AccessEvent, AuditEvent, OutboxMessage, SecurityEvent, Timer
from .orm import access_events, audit_events, outbox, security_events, timers
from .prepared import Prepared

_TABLES: dict[type, Table] = {AuditEvent: audit_events, AccessEvent: access_events,
                              SecurityEvent: security_events, OutboxMessage: outbox, Timer: timers}


def insert_rows(session: Session, objs: Iterable[Any]) -> None:
    """INSERT each object as its table's row: one executemany per table, tables in the order first met
    (the caller's order: foreign keys point at rows inserted before)."""
    by_table: dict[Table, list[Any]] = {}
    for obj in objs:
        by_table.setdefault(_TABLES[type(obj)], []).append(obj)
    if by_table:
        connection = session.connection()
        for table, rows in by_table.items():
            # A dataclass instance's own dict holds its fields, which are its table's columns: bound as they
            # are (the statement takes its columns from it by name; a missing one is an error, never NULL).
            prepared_insert(table).run_many(connection, [vars(obj) for obj in rows])


@functools.cache
def _columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns)


@functools.cache
def prepared_insert(table: Table) -> Prepared:
    """An INSERT of all the table's columns, prepared once per table (adapters/prepared.py): each use only
    binds. Also the relay's texts' (adapters/sms_store.add_all)."""
    return Prepared(insert(table), column_keys=_columns(table))
