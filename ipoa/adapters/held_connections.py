"""SQLite: a thread keeps its engine connection from one unit of work to the next, instead of taking one from
the pool and handing it back for every unit of work.

Why: the pool's check-out and check-in, and the Connection made around them, were about 6% of the
instructions of a workflow step on SQLite (docs/performance.md, "A step asks less of the kernel"). With no
server on the other end, a connection kept between units of work cannot go stale the way a PostgreSQL one
can (a restart, a failover, an idle time-out: the pool pings those after an idle spell, adapters/db.py),
so PostgreSQL keeps the pool's round.

What keeps this safe:
- Only a connection committed cleanly is kept (UnitOfWork._commit_connection): one a unit of work leaves in
  any other way (rolled back, an error, an ORM session that took it over) is closed as before.
- Between units of work a kept connection holds no transaction, so no lock: SQLite's write lock is taken by
  each unit of work's BEGIN IMMEDIATE and given up by its COMMIT.
- At most `limit` threads keep one at a time (the pool's own size), so that threads beyond them still find
  the pool's connections; the others check out and in as before.
- A thread's connection goes back to the pool when the thread object is collected after the thread ended
  (weakref.finalize), and all of them when the services close (`release_all`).
- A forked process never uses its parent's, nor hands them to the pool: in the child they are set aside
  untouched (os.register_at_fork) and the child keeps its own."""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sqlalchemy import Connection, Engine


class HeldConnections:
    """The connections kept, one per thread, for one engine."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.abandoned = False  # a forked child's copy of its parent's: never used nor closed
        self._local = threading.local()  # .connection: the thread's, while it is in _held
        self._lock = threading.Lock()
        self._held: set[Connection] = set()
        self._in_use: set[Connection] = set()  # taken by a unit of work and not yet given back

    def take(self) -> Connection | None:
        """The thread's kept connection for a unit of work, if it has one fit to use and no unit of work of
        the thread has it now (one run inside another takes its own from the pool)."""
        local = self._local
        connection: Connection | None = getattr(local, "connection", None)
        if connection is None:
            return None
        with self._lock:
            if connection in self._in_use:
                return None
            if connection not in self._held:
                local.connection = None  # (released: closed by release_all or by the thread's ended hook)
                return None
            if not (connection.closed or connection.invalidated):
                self._in_use.add(connection)
                return connection
            self._held.discard(connection)
            local.connection = None
        _close_quietly(connection)
        return None

    def keep(self, connection: Connection) -> bool:
        """Keep a connection just committed for this thread's next unit of work; False when not kept (the
        caller closes it): released meanwhile, the thread keeps another already, or `limit` threads keep
        one."""
        local = self._local
        with self._lock:
            self._in_use.discard(connection)
            if getattr(local, "connection", None) is connection:
                if connection in self._held:
                    return True
                local.connection = None
                return False
            if getattr(local, "connection", None) is not None or len(self._held) >= self.limit:
                return False
            self._held.add(connection)
            local.connection = connection
        weakref.finalize(threading.current_thread(), self._thread_ended, connection)
        return True

    def forget(self, connection: Connection) -> None:
        """Not kept any more (the caller closes it)."""
        local = self._local
        with self._lock:
            self._held.discard(connection)
            self._in_use.discard(connection)
            if getattr(local, "connection", None) is connection:
                local.connection = None

    def release_all(self) -> None:
        """Every kept connection back to the pool (the services close); one a unit of work has now is closed
        by it as it ends (keep refuses it)."""
        with self._lock:
            idle = self._held - self._in_use
            self._held = set()
        for connection in idle:
            _close_quietly(connection)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _thread_ended(self, connection: Connection) -> None:
        with self._lock:
            if self.abandoned or connection not in self._held:
                return  # (not kept any more: closed by whoever let it go)
            self._held.discard(connection)
            self._in_use.discard(connection)
        _close_quietly(connection)


def _close_quietly(connection: Connection) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - going back to the pool; a broken one is the pool's to discard
        pass


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, HeldConnections] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_ABANDONED: list[HeldConnections] = []  # (a forked child's: kept referenced, so no finalizer touches them)


def for_engine(engine: Engine) -> HeldConnections | None:
    """The engine's kept connections: SQLite only (None elsewhere: the pool's round applies)."""
    if engine.dialect.name != "sqlite":
        return None
    held = _BY_ENGINE.get(engine)
    if held is None:
        with _LOCK:
            held = _BY_ENGINE.get(engine)
            if held is None:
                held = _BY_ENGINE[engine] = HeldConnections(limit=_pool_size(engine))
    return held


def _forked() -> None:
    """In a forked child: its parent's connections set aside, untouched (a SQLite connection must not cross a
    fork; closing the copy would hand the parent's connection to the child's pool)."""
    for held in list(_BY_ENGINE.values()):
        held.abandoned = True
        _ABANDONED.append(held)
    _BY_ENGINE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _pool_size(engine: Engine) -> int:
    size: Any = getattr(engine.pool, "size", None)
    return int(size()) if callable(size) else 1
