"""A thread keeps its engine connection from one unit of work to the next, instead of taking one from the
pool and handing it back for every unit of work.

Why: the pool's check-out and check-in, and the Connection made around them, were about 6% of the
instructions of a workflow step on SQLite and 5.5% on PostgreSQL (docs/performance.md, "A step asks less of
the kernel" and "PostgreSQL's connection kept"); with PostgreSQL's kept, a ringing call's app CPU fell from
1.42 to 1.28 ms a request (bench/voice.py).

What keeps this safe:
- Only a connection committed cleanly is kept (UnitOfWork._commit_connection): one a unit of work leaves in
  any other way (rolled back, an error, an ORM session that took it over) is closed as before.
- Between units of work a kept connection holds no transaction, so no lock: SQLite's write lock is taken by
  each unit of work's BEGIN IMMEDIATE and given up by its COMMIT; PostgreSQL's BEGIN goes with the first
  statement (adapters/prepared.py).
- A PostgreSQL connection can go stale while kept (a server restart, a failover, an idle time-out), as one in
  the pool can: before reuse it passes the pool's own test (`reusable`, adapters/db.py): pinged when kept
  longer than the pool's PING_AFTER_IDLE, and not used when the pool has seen a disconnect since it was
  made. One that fails is invalidated and the unit of work takes another from the pool. When a kept
  connection goes back to the pool, the pool is told how long it has been idle (not "just now"), so the pool
  pings it as it would have. SQLite's cannot go stale (no server on the other end).
- At most `limit` threads keep one at a time (the pool's own size), so that threads beyond them still find
  the pool's connections; the others check out and in as before.
- A thread's connection goes back to the pool when the thread object is collected after the thread ended
  (weakref.finalize), and all of them when the services close (`release_all`).
- A forked process never uses its parent's, nor hands them to the pool: in the child they are set aside
  untouched (os.register_at_fork) and the child keeps its own."""
from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

# The pool record's info key (adapters/db.py reads it at check-out): when the connection was last handed
# back or kept, i.e. since when it has been idle.
IDLE_SINCE = "ipoa.idle_since"


class HeldConnections:
    """The connections kept, one per thread, for one engine."""

    def __init__(self, limit: int, reusable: Callable[[Connection], bool] | None = None) -> None:
        self.limit = limit
        # Whether a kept connection may be used again (PostgreSQL: adapters/db.py); None: always.
        self._reusable = reusable
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
            usable = not (connection.closed or connection.invalidated)
            if usable:
                self._in_use.add(connection)
            else:
                self._held.discard(connection)
                local.connection = None
        if not usable:
            _close_quietly(connection)
            return None
        if self._reusable is not None:
            try:
                usable = self._reusable(connection)
            finally:
                if not usable:  # (also when the test raised: not kept, and closed)
                    self.forget(connection)
                    _close_quietly(connection)
        return connection if usable else None

    def keep(self, connection: Connection) -> bool:
        """Keep a connection just committed for this thread's next unit of work; False when not kept (the
        caller closes it): released meanwhile, the thread keeps another already, or `limit` threads keep
        one. A connection kept is idle from now (IDLE_SINCE: what `reusable` reads)."""
        local = self._local
        with self._lock:
            self._in_use.discard(connection)
            if getattr(local, "connection", None) is connection:
                if connection not in self._held:
                    local.connection = None
                    return False
                connection.info[IDLE_SINCE] = time.monotonic()
                return True
            if getattr(local, "connection", None) is not None or len(self._held) >= self.limit:
                return False
            self._held.add(connection)
            local.connection = connection
            connection.info[IDLE_SINCE] = time.monotonic()
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

    def kept(self) -> Connection | None:
        """The connection this thread keeps now, if any (for tools that watch a thread's connections)."""
        connection: Connection | None = getattr(self._local, "connection", None)
        return connection

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
    """Back to the pool. The pool's check-in notes the connection as idle from now; a kept one has been idle
    since it was kept, and the pool is told so: it pings it at its next check-out as it would have."""
    try:
        info: dict[Any, Any] | None = connection.info
    except Exception:  # noqa: BLE001 - closed or invalidated: nothing to tell the pool
        info = None
    since = info.get(IDLE_SINCE) if info is not None else None
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - going back to the pool; a broken one is the pool's to discard
        pass
    if info is not None and since is not None and IDLE_SINCE in info:
        info[IDLE_SINCE] = min(info[IDLE_SINCE], since)


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, HeldConnections] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_ABANDONED: list[HeldConnections] = []  # (a forked child's: kept referenced, so no finalizer touches them)


def for_engine(engine: Engine) -> HeldConnections | None:
    """The engine's kept connections: SQLite's, made at first use; another database's when its engine was
    made to keep them (`keep_for`, adapters/db.make_engine); else None: the pool's round applies."""
    if engine.dialect.name != "sqlite":
        return _BY_ENGINE.get(engine)
    held = _BY_ENGINE.get(engine)
    if held is None:
        with _LOCK:
            held = _BY_ENGINE.get(engine)
            if held is None:
                held = _BY_ENGINE[engine] = HeldConnections(limit=_pool_size(engine))
    return held


def keep_for(engine: Engine, reusable: Callable[[Connection], bool]) -> HeldConnections:
    """Threads keep this (server) engine's connections between units of work, each tested by `reusable`
    before it is used again."""
    with _LOCK:
        held = _BY_ENGINE[engine] = HeldConnections(limit=_pool_size(engine), reusable=reusable)
    return held


def _forked() -> None:
    """In a forked child: its parent's connections set aside, untouched (a SQLite connection must not cross a
    fork; closing the copy would hand the parent's connection to the child's pool). A child's SQLite engine
    gets kept connections of its own at first use; a PostgreSQL engine inherited goes the pool's round."""
    for held in list(_BY_ENGINE.values()):
        held.abandoned = True
        _ABANDONED.append(held)
    _BY_ENGINE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _pool_size(engine: Engine) -> int:
    size: Any = getattr(engine.pool, "size", None)
    return int(size()) if callable(size) else 1
