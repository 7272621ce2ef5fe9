"""On PostgreSQL, a unit of work's new rows in one statement: its outbox messages and timers INSERTed, the
audit chain's head moved from the head this process last left (audit_store's guess) and the events hashed
after it INSERTed, as data-modifying CTEs. One round trip where there were three or four (the events' INSERT,
the head's UPDATE, one executemany per other table): on every workflow step (docs/performance.md, "Engine
core").

The events are inserted only if the head moved as guessed (the INSERT selects from the UPDATE's RETURNING,
filtered on the new head); otherwise the statement returns the head as it stands, the other rows are in, and
audit_store hashes the events again after it under the lock the UPDATE took, as it does without this module.
PostgreSQL runs every data-modifying CTE exactly once, whether or not the main query reads it."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, bindparam, case, cast, insert, select, union_all, update
from sqlalchemy.orm import Session

from ..domain.audit_chain import Head
from . import row_inserts
from .orm import audit_chain_heads as heads

# Beyond this many bound parameters a statement goes the usual way: each shape is its own statement
# (built and compiled once), and a few hundred parameters are plenty for a step.
MAX_PARAMETERS = 400


def usable(session: Session, events: Sequence[Any], rows: Sequence[Any]) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    table = row_inserts.table_of(events[0])
    n = len(events) * len(table.columns) + sum(len(row_inserts.table_of(r).columns) for r in rows)
    return n <= MAX_PARAMETERS


def move_if_at_inserting(session: Session, chain_table: Table, chain: str, expected: Head, new: Head,
                         events: Sequence[Any], rows: Sequence[Any]) -> tuple[Head | None, bool]:
    """(the head as it stands after the statement, whether the events were inserted). The rows are inserted
    either way; None: there is no head row (nothing of the chain was written)."""
    grouped = row_inserts.grouped(rows)
    shape = (chain_table.name, len(events), tuple((table.name, len(objs)) for table, objs in grouped.items()))
    params: dict[str, Any] = {"head_chain": chain, "at_seq": expected.seq, "at_hash": expected.hash,
                              "new_seq": new.seq, "new_hash": new.hash}
    for i, event in enumerate(events):
        params.update(_params(f"e{i}", chain_table, event))
    for table, objs in grouped.items():
        for i, obj in enumerate(objs):
            params.update(_params(f"{table.name}{i}", table, obj))
    row = session.connection().execute(_statement(shape), params).first()
    if row is None:
        return None, False
    current = Head(row.seq, row.hash)
    return current, current == new


def _params(prefix: str, table: Table, obj: Any) -> dict[str, Any]:
    return {f"{prefix}_{name}": getattr(obj, name) for name in row_inserts.columns(table)}


@functools.lru_cache(maxsize=64)
def _statement(shape: tuple[str, int, tuple[tuple[str, int], ...]]) -> Select[Any]:
    """Built once per shape (which chain, how many events, how many rows of which table), with bound
    parameters: SQLAlchemy compiles it once and each use only binds."""
    from .orm import metadata

    chain_name, n_events, row_shape = shape
    at = (heads.c.seq == bindparam("at_seq")) & (heads.c.hash == bindparam("at_hash"))
    head = (update(heads).where(heads.c.chain == bindparam("head_chain"))
            .values(seq=case((at, bindparam("new_seq")), else_=heads.c.seq),
                    hash=case((at, bindparam("new_hash")), else_=heads.c.hash))
            .returning(heads.c.seq, heads.c.hash).cte("chain_head"))
    stmt = select(head.c.seq, head.c.hash)
    chain_table = metadata.tables[chain_name]
    names = row_inserts.columns(chain_table)
    moved = (head.c.seq == bindparam("new_seq")) & (head.c.hash == bindparam("new_hash"))
    # Each event a row selected from the head's RETURNING: none unless the head moved as guessed. The
    # casts give PostgreSQL each value's type (a bare parameter in a SELECT list has none).
    picks = [select(*[cast(bindparam(f"e{i}_{name}", type_=chain_table.c[name].type), chain_table.c[name].type)
                      for name in names]).select_from(head).where(moved)
             for i in range(n_events)]
    stmt = stmt.add_cte(insert(chain_table).from_select(list(names), picks[0] if n_events == 1
                                                        else union_all(*picks)).cte("ins_events"))
    for table_name, n in row_shape:
        table = metadata.tables[table_name]
        values = [{name: bindparam(f"{table_name}{i}_{name}", type_=table.c[name].type)
                   for name in row_inserts.columns(table)} for i in range(n)]
        stmt = stmt.add_cte(insert(table).values(values).cte(f"ins_{table_name}"))
    return stmt
