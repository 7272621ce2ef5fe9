"""Idempotency-Key records, `idempotency_keys` (service/idempotency.py; docs/security.md, "Races and
retries"), and the hook that completes a claim inside the change's own transaction: run by every unit of
work just before it commits, with a view of the committing transaction."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..domain.model import Call
from . import repository
from .orm import idempotency_keys as table
from .prepared import Prepared
from .results import rowcount


class KeyRow(NamedTuple):
    id: int
    method: str
    path: str
    request_hash: str
    status_code: int | None
    response_body: str | None
    created_at: datetime


class IdempotencyKeyStore:
    def __init__(self, session: Session):
        self.session = session

    def insert_if_new(self, values: dict[str, Any]) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None if the key is taken. On
        PostgreSQL a concurrent uncommitted claim of the same key makes this wait for it (the unique
        index), then do nothing; the claim transaction is short, so the wait is too."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=["user_id", "key"]) \
            .returning(table.c.id)
        return self.session.execute(stmt).scalar()

    def find(self, user_id: int, key: str) -> KeyRow | None:
        row = self.session.execute(select(table.c.id, table.c.method, table.c.path, table.c.request_hash,
                                          table.c.status_code, table.c.response_body, table.c.created_at)
                                   .where(table.c.user_id == user_id, table.c.key == key)).first()
        return None if row is None else KeyRow(*row)

    def remove_unanswered(self, key_id: int) -> bool:
        """Delete the row if it holds no answer yet; True if it did."""
        gone = self.session.execute(delete(table).where(table.c.id == key_id, table.c.status_code.is_(None)))
        return rowcount(gone) == 1

    def complete(self, key_id: int, status: int, body: str) -> bool:
        """Store the answer in a row that holds none yet; False if the row is gone or answered."""
        done = self.session.execute(update(table).where(table.c.id == key_id, table.c.status_code.is_(None))
                                    .values(status_code=status, response_body=body))
        return rowcount(done) == 1

    def store_answer(self, key_id: int, status: int, body: str) -> None:
        self.session.execute(update(table).where(table.c.id == key_id).values(status_code=status,
                                                                              response_body=body))

    def purge(self, cutoff: datetime, batch: int) -> int:
        """Delete up to `batch` records created before `cutoff`, oldest first; how many went."""
        ids = select(table.c.id).where(table.c.created_at < cutoff).order_by(table.c.created_at) \
            .limit(batch).scalar_subquery()
        return rowcount(self.session.execute(delete(table).where(table.c.id.in_(ids))))


class CommittingTransaction:
    """What a before-commit hook may see of the transaction about to commit: its session, if it has one (a
    unit of work that ran only prepared statements has none, and so no call loaded: UnitOfWork.session),
    and its connection."""

    __slots__ = ("_session", "_connection")

    def __init__(self, session: Session | None, connection: Callable[[], Connection]):
        self._session = session
        self._connection = connection

    def call(self, ref: str) -> Call | None:
        """The call `ref` if this transaction has it loaded (or added), else None."""
        return repository.in_transaction(self._session, ref) if self._session is not None else None

    def complete_key(self, key_id: int, status: int, body: str) -> bool:
        """As IdempotencyKeyStore.complete, as a prepared statement: a unit of work's commit may run its hooks
        inside a batch (adapters/prepared.batched), where only prepared statements' row counts can be read."""
        done = _COMPLETE.run_later(self._connection(), {"b_id": key_id, "b_status": status, "b_body": body})
        return done() == 1


# b_*: an UPDATE's bound parameters may not be named after its table's columns
_COMPLETE = Prepared(update(table).where(table.c.id == bindparam("b_id"), table.c.status_code.is_(None))
                     .values(status_code=bindparam("b_status", type_=table.c.status_code.type),
                             response_body=bindparam("b_body", type_=table.c.response_body.type)))


_hooks: list[Callable[[CommittingTransaction], None]] = []


def before_every_commit(hook: Callable[[CommittingTransaction], None]) -> None:
    """Run `hook` just before every unit of work commits, inside its transaction (adapters/unit_of_work.py;
    registered once per process, however often this is called)."""
    if hook not in _hooks:
        _hooks.append(hook)


def run_before_commit(session: Session | None, connection: Callable[[], Connection]) -> None:
    """The hooks, for the unit of work about to commit: its session (None: it has none) and its connection."""
    for hook in _hooks:
        hook(CommittingTransaction(session, connection))
