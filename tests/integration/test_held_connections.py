"""SQLite: a thread keeps its connection from one unit of work to the next (adapters/held_connections.py), and
only a connection committed cleanly, never one in use: a unit of work run inside another takes its own, a
failed one is closed, threads beyond the pool's size check out and in as before, and every kept connection
goes back to the pool when its thread is gone or the services close. PostgreSQL keeps the pool's round."""
from __future__ import annotations

import gc
import threading

import pytest
from sqlalchemy import text

from ipoa.adapters import held_connections
from ipoa.adapters.db import make_engine
from tests.helpers.web import advance, logged


def dbapi(uow) -> object:
    return uow.connection().connection.dbapi_connection


def committed_connection(svc) -> object:
    with svc.uow() as uow:
        found = dbapi(uow)
        uow.commit()
    return found


@pytest.fixture
def sqlite_only(svc):
    if svc.db.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's connections go back to the pool (test_postgresql_keeps_none)")


def test_a_threads_units_of_work_share_its_connection(svc, sqlite_only):
    first = committed_connection(svc)
    assert committed_connection(svc) is first
    ref = logged(svc)  # a real use case on it, then another unit of work of the thread sees what it committed
    with svc.uow() as uow:
        assert dbapi(uow) is first
        assert uow.calls.get(ref) is not None


def test_a_unit_of_work_inside_another_takes_its_own_and_the_outer_one_stays_kept(svc, sqlite_only):
    kept = committed_connection(svc)
    with svc.uow() as outer:
        assert dbapi(outer) is kept
        outer.connection().rollback()  # its transaction over (SQLite's write lock free), its connection still its
        with svc.uow() as inner:
            assert dbapi(inner) is not kept
            inner.commit()
        outer.commit()
    assert committed_connection(svc) is kept


def test_a_connection_an_orm_session_took_over_is_closed_not_kept(svc, sqlite_only):
    kept = committed_connection(svc)
    held = held_connections.for_engine(svc.db)
    assert held is not None
    with svc.uow() as uow:
        assert dbapi(uow) is kept
        uow.session.rollback()  # the session now runs its transactions
        uow.commit()
    assert held.take() is None


def test_a_unit_of_work_that_fails_closes_its_connection_rather_than_keep_it(svc, sqlite_only):
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


def test_threads_beyond_the_pools_size_still_run_and_all_go_back_when_they_end(svc, sqlite_only):
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


def test_postgresql_keeps_none(svc):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert held_connections.for_engine(svc.db) is None
    checked_out = svc.db.pool.checkedout()
    committed_connection(svc)
    assert svc.db.pool.checkedout() == checked_out


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
def test_a_forked_child_never_uses_its_parents_kept_connection(svc, sqlite_only):
    import multiprocessing

    kept = committed_connection(svc)
    context = multiprocessing.get_context("fork")
    answer = context.Queue()

    def child() -> None:
        held = held_connections.for_engine(svc.db)
        answer.put((held is not None and held.take() is None, held.held() if held else -1))

    process = context.Process(target=child)
    process.start()
    found = answer.get(timeout=30)
    process.join(30)
    assert process.exitcode == 0
    assert found == (True, 0)  # a holder of its own, empty: the parent's connection is not the child's
    assert committed_connection(svc) is kept  # and the parent's is still its own
