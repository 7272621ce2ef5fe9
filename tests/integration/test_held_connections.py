"""A thread keeps its connection from one unit of work to the next (adapters/held_connections.py), and only a
connection committed cleanly, never one in use: a unit of work run inside another takes its own, a failed one
is closed, threads beyond the pool's size check out and in as before, and every kept connection goes back to
the pool when its thread is gone or the services close. On PostgreSQL a kept connection passes the pool's
own test before reuse: pinged after an idle spell, and replaced when the server closed it or the pool saw a
disconnect since it was made."""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, exc, text

from ipoa.adapters import held_connections
from ipoa.adapters.db import PING_AFTER_IDLE, make_engine
from tests.helpers.web import advance, logged


def dbapi(uow) -> object:
    return uow.connection().connection.dbapi_connection


def committed_connection(svc) -> object:
    with svc.uow() as uow:
        found = dbapi(uow)
        uow.commit()
    return found


@pytest.fixture
def postgresql_only(svc):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a server that can close a connection")


def test_a_threads_units_of_work_share_its_connection(svc):
    first = committed_connection(svc)
    assert committed_connection(svc) is first
    ref = logged(svc)  # a real use case on it, then another unit of work of the thread sees what it committed
    with svc.uow() as uow:
        assert dbapi(uow) is first
        assert uow.calls.get(ref) is not None


def test_a_unit_of_work_inside_another_takes_its_own_and_the_outer_one_stays_kept(svc):
    kept = committed_connection(svc)
    with svc.uow() as outer:
        assert dbapi(outer) is kept
        outer.connection().rollback()  # its transaction over (SQLite's write lock free), its connection still its
        with svc.uow() as inner:
            assert dbapi(inner) is not kept
            inner.commit()
        outer.commit()
    assert committed_connection(svc) is kept


def test_a_connection_an_orm_session_took_over_is_closed_not_kept(svc):
    kept = committed_connection(svc)
    held = held_connections.for_engine(svc.db)
    assert held is not None
    with svc.uow() as uow:
        assert dbapi(uow) is kept
        uow.session.rollback()  # the session now runs its transactions
        uow.commit()
    assert held.take() is None


def test_a_unit_of_work_that_fails_closes_its_connection_rather_than_keep_it(svc):
    kept = committed_connection(svc)
    held = held_connections.for_engine(svc.db)
    assert held is not None
    with pytest.raises(RuntimeError), svc.uow() as uow:
        assert dbapi(uow) is kept
        uow.connection().execute(text("SELECT 1"))
        raise RuntimeError("the use case failed")
    assert held.take() is None  # nothing kept for the thread: its next unit of work checks one out
    ref = logged(svc)
    advance(svc, ref, "start_triage")


def test_threads_beyond_the_pools_size_still_run_and_all_go_back_when_they_end(svc):
    held = held_connections.for_engine(svc.db)
    assert held is not None
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                advance(svc, logged(svc), "start_triage")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert held.held() <= held.limit
    del threads, thread
    gc.collect()  # the ended threads' objects collected: their kept connections go back to the pool
    assert held.held() <= 1  # (this thread's own, if it keeps one)


def test_closing_hands_every_kept_connection_back_to_the_pool(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'held.db'}")
    held = held_connections.for_engine(engine)
    assert held is not None
    try:
        def one_unit() -> None:
            connection = held.take() or engine.connect()
            connection.begin()
            connection.execute(text("SELECT 1"))
            connection.commit()
            if not held.keep(connection):
                connection.close()

        one_unit()
        thread = threading.Thread(target=one_unit)
        thread.start()
        thread.join(10)
        assert held.held() == 2
        assert engine.pool.checkedout() == 2
        held.release_all()
        assert held.held() == 0 and engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def _backend_pid(connection) -> int:
    return connection.exec_driver_sql("select pg_backend_pid()").scalar_one()


def _terminate(svc, pid: int) -> None:
    other = make_engine(svc.db.url.render_as_string(hide_password=False))
    try:
        with other.begin() as connection:
            connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        other.dispose()


def _one_unit(engine, held) -> int:
    """A unit of work as UnitOfWork runs one on its own connection: the kept one if fit, else the pool's."""
    connection = held.take() or engine.connect()
    connection.begin()
    pid = _backend_pid(connection)
    connection.commit()
    if not held.keep(connection):
        connection.close()
    return pid


def test_postgresql_keeps_its_connection_between_units_of_work(svc, postgresql_only):
    held = held_connections.for_engine(svc.db)
    assert held is not None and held.limit == svc.db.pool.size()
    first = committed_connection(svc)
    checked_out = svc.db.pool.checkedout()
    assert committed_connection(svc) is first
    assert svc.db.pool.checkedout() == checked_out  # no round of the pool


def test_a_kept_connection_the_server_closed_is_replaced_unseen_by_the_next_use_case(svc, postgresql_only):
    with svc.uow() as uow:
        pid = _backend_pid(uow.connection())
        kept = dbapi(uow)
        uow.commit()
    _terminate(svc, pid)  # a restart, a failover, an idle time-out
    time.sleep(PING_AFTER_IDLE + 0.1)  # idle longer than the pool's threshold: pinged before reuse
    ref = logged(svc)  # the use case runs, on another connection
    advance(svc, ref, "start_triage")
    assert committed_connection(svc) is not kept


@contextmanager
def own_engine(svc, ping_after_idle: float) -> Iterator[tuple[Engine, held_connections.HeldConnections]]:
    """An engine of the test's own on the suite's database, with its kept connections; all let go after."""
    engine = make_engine(svc.db.url.render_as_string(hide_password=False), ping_after_idle=ping_after_idle)
    held = held_connections.for_engine(engine)
    assert held is not None
    try:
        yield engine, held
    finally:
        held.release_all()
        engine.dispose()


def test_a_kept_connection_used_moments_ago_is_not_pinged(svc, postgresql_only, monkeypatch):
    with own_engine(svc, ping_after_idle=60) as (engine, held):
        pings: list[object] = []
        ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or ping(c))
        first = _one_unit(engine, held)
        assert _one_unit(engine, held) == first
        assert pings == []


def test_a_kept_connection_idle_past_the_threshold_is_pinged_and_if_closed_replaced(svc, postgresql_only):
    with own_engine(svc, ping_after_idle=0.05) as (engine, held):
        first = _one_unit(engine, held)
        time.sleep(0.1)
        assert _one_unit(engine, held) == first  # pinged, alive: kept on
        _terminate(svc, first)
        time.sleep(0.1)
        second = _one_unit(engine, held)
        assert second != first
        assert _one_unit(engine, held) == second  # the new one is kept in turn
        assert engine.pool.checkedout() == 1


def test_a_kept_connection_older_than_a_disconnect_the_pool_saw_is_not_reused(svc, postgresql_only):
    # The server restarted: another thread meets the disconnect first. As the pool would recycle its own
    # connections made before then, the thread's kept one is not used again either (it is not pinged: used
    # moments ago).
    with own_engine(svc, ping_after_idle=60) as (engine, held):
        kept = _one_unit(engine, held)
        time.sleep(0.05)  # (the pool compares wall-clock times)
        outcome: list[BaseException] = []

        def elsewhere() -> None:
            with engine.connect() as connection:
                _terminate(svc, _backend_pid(connection))
                try:
                    connection.exec_driver_sql("select 1")
                except exc.DBAPIError as error:
                    outcome.append(error)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(30)
        assert outcome and getattr(outcome[0], "connection_invalidated", False)
        assert _one_unit(engine, held) != kept


def test_a_kept_connection_handed_back_tells_the_pool_how_long_it_has_been_idle(svc, postgresql_only):
    with own_engine(svc, ping_after_idle=0.05) as (engine, held):
        first = _one_unit(engine, held)
        time.sleep(0.1)
        held.release_all()  # back to the pool after 0.1 s idle: not "idle from now"
        _terminate(svc, first)
        with engine.connect() as connection:  # the pool pings it, finds it closed, and makes another
            assert _backend_pid(connection) != first


def test_a_connection_in_use_when_the_services_close_is_closed_by_its_unit_of_work_not_kept(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'released.db'}")
    held = held_connections.for_engine(engine)
    assert held is not None
    try:
        first = engine.connect()
        first.begin()
        first.commit()
        assert held.keep(first)
        taken = held.take()
        assert taken is first and held.take() is None  # in use: not lent twice
        held.release_all()  # while a unit of work has it
        assert not first.closed
        assert not held.keep(first)  # its unit of work then closes it
        first.close()
        assert held.take() is None and held.held() == 0 and engine.pool.checkedout() == 0
    finally:
        engine.dispose()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is how a process would inherit them")
def test_a_forked_child_never_uses_its_parents_kept_connection(svc):
    import multiprocessing

    kept = committed_connection(svc)
    context = multiprocessing.get_context("fork")
    answer = context.Queue()

    def child() -> None:
        held = held_connections.for_engine(svc.db)  # SQLite: a holder of its own; PostgreSQL: the pool's round
        answer.put((held is None or held.take() is None, held.held() if held else 0))

    process = context.Process(target=child)
    process.start()
    found = answer.get(timeout=30)
    process.join(30)
    assert process.exitcode == 0
    assert found == (True, 0)  # nothing kept in the child: the parent's connection is not the child's
    assert committed_connection(svc) is kept  # and the parent's is still its own
