"""Appending to the chained tables and reading them back to verify (domain/audit_chain.py).

A transaction that extends a chain locks the chain's head row (its UPDATE, or SELECT ... FOR UPDATE, on
PostgreSQL; SQLite's writers are serialised already by BEGIN IMMEDIATE), numbers and hashes its events after
the head, moves the head and inserts the events, all in the same transaction as the change they record.
On PostgreSQL the database does it, one statement an event (_append_in_database). On SQLite usually one
statement moves the head: the events are hashed after the head this process last left, and an
UPDATE ... RETURNING moves it only from exactly there (see append). The unit of work does this after
flushing everything else, so the head is the last lock a transaction takes: two transactions never wait on
each other in a cycle."""
from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import Engine, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from ..domain.audit_chain import CHAINS, GENESIS, Break, Head, canonical, seal, verify
from . import row_inserts
from .orm import access_events, audit_events, security_events
from .orm import audit_chain_heads as heads
from .prepared import Prepared

TABLES = {"audit": audit_events, "access": access_events, "security": security_events}
_CONTENT = {chain: [c.name for c in table.columns if c.name not in ("seq", "hash")]
            for chain, table in TABLES.items()}


class ChainHeadMissing(RuntimeError):
    pass


def content(chain: str, obj: Any) -> dict[str, Any]:
    """What an event's hash covers: every column of its table but seq and hash."""
    return {name: getattr(obj, name) for name in _CONTENT[chain]}


def lock_head(session: Session, chain: str) -> Head:
    # Prepared statements (adapters/prepared.py), like every statement of a unit of work's commit: inside its
    # batch (PostgreSQL's pipeline mode) only they read their results back rightly.
    connection = session.connection()
    row = _LOCK_HEAD.first(connection, {"b_chain": chain})
    if row is not None:
        return Head(*row)
    # A chain with no events and no head (a new database, or the test suite's emptied one) starts
    # afresh; a head missing beside events is a broken chain, and nothing is appended to it.
    (count,) = _COUNT[chain].rows(connection, {})[0]
    if count:
        raise ChainHeadMissing(f"the {chain} chain's head record is missing: run `flask --app ipoa audit verify`")
    _INSERT_HEAD_IF_MISSING[connection.dialect.name].run(connection, {"b_chain": chain})  # two writers may race
    row = _LOCK_HEAD.first(connection, {"b_chain": chain})
    if row is None:
        raise ChainHeadMissing(f"the {chain} chain's head record could not be made")
    return Head(*row)


def _insert_head_if_missing() -> dict[str, Prepared]:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return {name: Prepared(insert(heads).values(chain=bindparam("b_chain"), seq=0, hash=GENESIS)
                           .on_conflict_do_nothing())
            for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


_LOCK_HEAD = Prepared(select(heads.c.seq, heads.c.hash).where(heads.c.chain == bindparam("b_chain")).with_for_update())
_COUNT = {chain: Prepared(select(func.count()).select_from(table)) for chain, table in TABLES.items()}
_INSERT_HEAD_IF_MISSING = _insert_head_if_missing()


def append(session: Session, events: Iterable[Any]) -> Callable[[], None]:
    """Number, hash and add events (AuditEvent, AccessEvent, SecurityEvent) to their chains. Returns what
    gives the events their numbers and hashes once the statements' results are in: on PostgreSQL the
    database numbers and hashes them (_append_in_database), and inside the unit of work's batch their rows
    come back only with the batch's end."""
    by_chain: dict[str, list[Any]] = {}
    for event in events:
        by_chain.setdefault(event.CHAIN, []).append(event)
    if session.connection().dialect.name == "postgresql":
        return _append_in_database(session, by_chain)
    for chain in CHAINS:  # always in this order: see the module's docstring
        new = by_chain.get(chain)
        if not new:
            continue
        seal_after = functools.partial(seal, new, content_of=functools.partial(content, chain))
        key = (_database(session), chain)
        guess, head = _last_head.get(key), None
        if guess is not None:
            # One statement when the head is where this process last left it (the usual case): the events
            # hashed after that head, the head moved on only if it still is that head. The UPDATE takes the
            # row's lock either way, as SELECT ... FOR UPDATE did, and returns the head as it then stands.
            moved = seal_after(guess)
            current = _move_if_at(session, chain, guess, moved)
            if current == moved:
                head = moved
            elif current is not None:  # another writer moved it: hashed again after theirs, under the lock
                head = seal_after(current)
                _set_head(session, chain, head)
        if head is None:  # no guess yet, or no head row
            head = seal_after(lock_head(session, chain))
            _set_head(session, chain, head)
        _last_head[key] = head
        row_inserts.insert_rows(session, new)
    return _numbered_already


def _numbered_already() -> None:
    return None


def _append_in_database(session: Session, by_chain: dict[str, list[Any]]) -> Callable[[], None]:
    """PostgreSQL: each event in one statement that moves its chain's head on by one, hashing the event in
    the database as domain/audit_chain.link does (sha256 over the previous hash, the number and the canonical
    content, which is bound), and inserts it with that number and hash. Nothing is read before COMMIT, so a
    workflow step's statements and its COMMIT go in one batch: two round trips a step, not three
    (docs/performance.md, "Two round trips a step"). The head's row is locked by the statement and held only
    until the COMMIT in the same batch.

    A chain with no head row and no events (a new database) gets its head in the same statement (an upsert:
    the event is its first). A head row missing beside events would number the event 1 again: the events'
    primary key refuses it, the transaction fails, and UnitOfWork.commit raises ChainHeadMissing."""
    connection = session.connection()
    reads: list[tuple[Any, Callable[[], list[tuple[Any, ...]]]]] = []
    for chain in CHAINS:  # always in this order: see the module's docstring
        for event in by_chain.get(chain, ()):
            fields = content(chain, event)
            params = {f"e_{name}": value for name, value in fields.items()}
            params["e_content"] = canonical(fields)
            reads.append((event, _append_one(chain).rows_later(connection, params)))

    def numbered() -> None:
        for event, read in reads:
            ((event.seq, event.hash),) = read()

    return numbered


def numbered_twice(error: Exception) -> bool:
    """Whether a database error is an event's number taken already in its chain (see _append_in_database)."""
    diag = getattr(getattr(error, "orig", None), "diag", None)
    return getattr(diag, "constraint_name", None) in {f"pk_{table.name}" for table in TABLES.values()}


@functools.cache
def _append_one(chain: str) -> Prepared:
    from sqlalchemy import ColumnClause, LargeBinary, Text, cast, insert, literal_column
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    table = TABLES[chain]
    content_bytes = bindparam("e_content", type_=LargeBinary)
    newline: ColumnClause[Any] = literal_column("E'\\n'")
    one: ColumnClause[Any] = literal_column("1")
    utf8: ColumnClause[Any] = literal_column("'UTF8'")

    def link(previous: Any, seq: Any) -> Any:
        return func.encode(func.sha256(func.convert_to(previous.concat(newline).concat(cast(seq, Text))
                                                       .concat(newline), utf8).op("||")(content_bytes)),
                           literal_column("'hex'"))

    head = (pg_insert(heads).values(chain=literal_column(f"'{chain}'"), seq=one,
                                    hash=link(literal_column(f"'{GENESIS}'"), one))
            .on_conflict_do_update(index_elements=[heads.c.chain],
                                   set_={"seq": heads.c.seq + one, "hash": link(heads.c.hash, heads.c.seq + one)})
            .returning(heads.c.seq, heads.c.hash).cte("chain_head"))
    values = [cast(bindparam(f"e_{name}", type_=table.c[name].type), table.c[name].type) for name in _CONTENT[chain]]
    event = (insert(table).from_select(["seq", "hash", *_CONTENT[chain]], select(head.c.seq, head.c.hash, *values))
             .returning(table.c.seq, table.c.hash).cte("chain_event"))
    return Prepared(select(event.c.seq, event.c.hash))


def moved(session: Session, chain: str, head: Head) -> None:
    """The head a statement of the unit of work's own moved the chain to (UnitOfWork.add_new_call)."""
    _last_head[(_database(session), chain)] = head


# Each chain's head as this process last moved it, by database: where the next unit of work most likely finds
# it. Only a guess: _move_if_at moves the head only from exactly this head, so a stale guess (another process
# wrote since, the transaction rolled back) costs one more statement, never a wrong link.
_last_head: dict[tuple[str, str], Head] = {}


def _database(session: Session) -> str:
    engine = session.get_bind().engine
    text = _url_text.get(engine)
    if text is None:
        text = _url_text[engine] = engine.url.render_as_string(hide_password=False)
    return text


# Each engine's database URL as text, worked out once: a URL object builds its hash anew each time it is
# looked up, which cost about 2% of a workflow step (docs/performance.md, "Engine core").
_url_text: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _set_head(session: Session, chain: str, head: Head) -> None:
    _SET_HEAD.run(session.connection(), {"b_chain": chain, "seq": head.seq, "hash": head.hash})


_SET_HEAD = Prepared(update(heads).where(heads.c.chain == bindparam("b_chain")), column_keys=("seq", "hash"))


def _move_if_at(session: Session, chain: str, expected: Head, new: Head) -> Head | None:
    """UPDATE ... RETURNING the chain's head: to new if it is expected, else left as it is (but locked all
    the same). The head as it stands after the statement (new when moved), or None when there is no head row.
    Never backwards (the PostgreSQL trigger of migration 0007 would refuse it): new is after expected."""
    params = {"head_chain": chain, "at_seq": expected.seq, "at_hash": expected.hash, "new_seq": new.seq,
              "new_hash": new.hash}
    row = _MOVE_IF_AT.first(session.connection(), params)
    return Head(*row) if row is not None else None


# Prepared once (adapters/prepared.py): each use only binds.
_AT = (heads.c.seq == bindparam("at_seq")) & (heads.c.hash == bindparam("at_hash"))
_MOVE_IF_AT = Prepared(update(heads).where(heads.c.chain == bindparam("head_chain"))
                       .values(seq=case((_AT, bindparam("new_seq")), else_=heads.c.seq),
                               hash=case((_AT, bindparam("new_hash")), else_=heads.c.hash))
                       .returning(heads.c.seq, heads.c.hash))


def _rows(session: Session, chain: str, batch: int = 2000) -> Iterator[tuple[int, str, dict[str, Any]]]:
    table = TABLES[chain]
    cols = [table.c[name] for name in _CONTENT[chain]]
    last = None
    while True:  # keyset pages: a long walk holds no cursor open and works the same on both databases
        stmt = select(table.c.seq, table.c.hash, *cols).order_by(table.c.seq).limit(batch)
        rows = session.execute(stmt if last is None else stmt.where(table.c.seq > last)).all()
        if not rows:
            return
        for r in rows:
            yield r.seq, r.hash, {name: getattr(r, name) for name in _CONTENT[chain]}
        last = rows[-1].seq


def verify_chain(session: Session, chain: str) -> tuple[Break | None, int]:
    """(the first break or None, how many events were read)."""
    row = session.execute(select(heads.c.seq, heads.c.hash).where(heads.c.chain == chain)).first()
    head = Head(row.seq, row.hash) if row is not None else None
    counted = [0]

    def counting() -> Iterator[tuple[int, str, dict[str, Any]]]:
        for r in _rows(session, chain):
            counted[0] += 1
            yield r

    problem = verify(chain, counting(), head)
    return problem, counted[0]
