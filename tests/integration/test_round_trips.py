"""Round trips to PostgreSQL per use case (issue 14, point 1; docs/performance.md, "Engine core"), counted
from libpq's own trace of the protocol messages; BEGIN sent with a transaction's first statement, which
every statement stays inside (adapters/prepared.begin_with_first_statement); and the pooled connection's
ping only after idleness (adapters/db.py): a connection the server closed while it sat in the pool is
replaced unseen.

A round trip is the client sending and then waiting for the server's answer: in the trace, a run of
frontend (F) messages followed by backend (B) ones. SQLite has no round trips: these tests need
PostgreSQL (TEST_DATABASE_URL), as production runs on."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from psycopg import pq
from sqlalchemy import bindparam, delete, event, func, insert, select, text, update

from ipoa.adapters import held_connections
from ipoa.adapters.audit_store import ChainHeadMissing
from ipoa.adapters.db import make_engine, make_session_factory
from ipoa.adapters.orm import audit_chain_heads, audit_events, bench_pings, calls, outbox, phone_legs, users
from ipoa.adapters.prepared import Prepared, batched
from ipoa.adapters.unit_of_work import UnitOfWork
from ipoa.domain.errors import VersionConflict
from ipoa.domain.telephony import answers
from ipoa.domain.telephony.centre_voice import Overflow
from ipoa.service import calls as call_service
from ipoa.service import phone_calls
from ipoa.users import User
from tests.helpers import PASSWORD_HASH, call_payload
from tests.helpers.voice import CALLER, CNH_LINE, leg, with_line
from tests.helpers.web import actor_for, advance, in_triage, logged


@pytest.fixture
def pg(svc, monkeypatch):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("round trips and pooled connections are PostgreSQL's (set TEST_DATABASE_URL)")
    # The deployed workflow versions are re-checked every 30 s by default (Services.engine): not within a test
    monkeypatch.setattr(svc, "workflow_refresh_seconds", 3600.0)
    svc.engine()
    return svc


@contextmanager
def traced(engine) -> Iterator[list[str]]:
    """The protocol messages of every connection checked out of `engine` meanwhile: 'F Parse', 'B DataRow'..."""
    messages: list[str] = []
    files = []

    def start(dbapi_connection, _record, _proxy):
        out = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed below, once the trace is read
        files.append((dbapi_connection, out))
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    event.listen(engine, "checkout", start)
    # (and the connection this thread keeps between units of work, which no checkout hands out again)
    held = held_connections.for_engine(engine)
    kept = held.kept() if held is not None else None
    if kept is not None:
        start(kept.connection.dbapi_connection, None, None)
    try:
        yield messages
    finally:
        event.remove(engine, "checkout", start)
        for dbapi_connection, out in files:
            dbapi_connection.pgconn.untrace()
            out.seek(0)
            for line in out.read().decode().splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[0] in ("F", "B"):
                    messages.append(" ".join([parts[0]] + parts[2:]))
            out.close()


NOT_YET_LOGGED = "9990000034"  # a valid NHS number (never issued: the 999 range) no test logs in this file


def round_trips(messages: list[str]) -> int:
    trips, sending = 0, False
    for message in messages:
        if message.startswith("F "):
            sending = True
        elif sending:
            trips, sending = trips + 1, False
    return trips


def test_a_workflow_step_takes_two_round_trips(pg):
    ref = in_triage(pg)
    call, _ = call_service.get_call(pg, ref)
    with traced(pg.db) as messages:
        call_service.fire_call_trigger(pg, actor_for("CNH"), ref, {
            "trigger": "refer", "expected_version": call.version, "data": {"service": "CRT"}})
    # The call and its referrals read alone, before the transaction's BEGIN; the BEGIN and the rest with the
    # COMMIT: the version checked and the audit event numbered and hashed by the statements themselves. No
    # ping (the connection was in use moments ago), no BEGIN nor COMMIT of their own: six before, then three
    # (docs/performance.md, "Engine core").
    assert round_trips(messages) == 2, messages
    first_trip = messages[:messages.index("B ReadyForQuery  I") + 1]  # (I: idle, no transaction open)
    begun = [m for m in messages if m.startswith("B CommandComplete") and "BEGIN" in m]
    assert begun and begun[0] not in first_trip, messages
    stored, history = call_service.get_call(pg, ref)
    assert stored.state == "referred" and history[-1].trigger == "refer" and history[-1].hash
    # and no COMMIT of the session's after the batch (a simple-protocol Query)
    assert sum(m.startswith("F Query") and "COMMIT" in m for m in messages) == 0, messages


def test_logging_a_call_takes_two_round_trips(pg):
    logged(pg)  # a first call: statements prepared, the chain's head known to this process
    payload = call_payload()
    payload["subject"]["nhs_number"] = NOT_YET_LOGGED
    with traced(pg.db) as messages:
        call_service.log_call(pg, actor_for("CNH"), payload)
    # BEGIN with the intake lock and the duplicate check; the call with its rows (one statement) and the
    # COMMIT. Six before: a ping, BEGIN alone, the lock's batch read before its end (two), the statement, COMMIT.
    assert round_trips(messages) == 2, messages


def test_logging_a_call_without_an_nhs_number_takes_one_round_trip(pg):
    logged(pg)
    payload = call_payload()
    del payload["subject"]["nhs_number"]
    with traced(pg.db) as messages:
        call = call_service.log_call(pg, actor_for("CNH"), payload)
    assert round_trips(messages) == 1, messages  # BEGIN, the call with its rows, COMMIT: one batch
    stored, history = call_service.get_call(pg, call.ref)
    assert stored.id == call.id and [e.seq for e in history] == [history[0].seq] and history[0].hash


def test_an_intake_without_the_audit_chains_head_commits_nothing(pg):
    """add_new_call's statement goes with the COMMIT: without the chain's head row its guard fails the
    statement, so the transaction commits nothing (the call is never stored without its audit event)."""
    logged(pg)
    with pg.db.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")  # the head's triggers
        connection.execute(delete(audit_chain_heads).where(audit_chain_heads.c.chain == "audit"))
    before = _count(pg, calls)
    payload = call_payload()
    del payload["subject"]["nhs_number"]
    with pytest.raises(ChainHeadMissing):
        call_service.log_call(pg, actor_for("CNH"), payload)
    assert _count(pg, calls) == before


def _count(svc, table) -> int:
    with svc.db.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_refused_step_writes_nothing_and_the_next_one_on_the_same_connection_commits(pg):
    ref = in_triage(pg)
    before, history = call_service.get_call(pg, ref)
    with pytest.raises(VersionConflict):  # a stale version: refused at the batch's version check
        call_service.fire_call_trigger(pg, actor_for("CNH"), ref, {
            "trigger": "refer", "expected_version": before.version - 1, "data": {"service": "CRT"}})
    after, same = call_service.get_call(pg, ref)
    assert (after.state, after.version, len(same)) == (before.state, before.version, len(history))
    advance(pg, ref, "refer", data={"service": "CRT"})
    done, _ = call_service.get_call(pg, ref)
    assert done.version > before.version and done.state != before.state


def _chain_state(svc) -> tuple[int, int, int]:
    with svc.db.connect() as connection:
        return (connection.execute(select(audit_chain_heads.c.seq).where(audit_chain_heads.c.chain == "audit"))
                .scalar_one(), _count(svc, audit_events), _count(svc, outbox))


def test_a_row_changed_after_the_read_fails_the_batch_and_its_commit(pg):
    """The step's batch carries its COMMIT, so the version is checked by the UPDATE's own statement: a call
    changed by someone else after this unit of work read it fails the transaction, nothing of the step is
    written (audit event, outbox, timers), and it is a VersionConflict."""
    ref = logged(pg)
    before = _chain_state(pg)
    with pg.uow() as uow:
        call = uow.calls.get(ref)
        assert call is not None
        engine = uow.engine(pg, needs=(call.workflow, call.workflow_version))
        uow.record(engine.fire(call, "start_triage", actor="round.trips", now=pg.clock.now(),
                               expected_version=call.version))
        with pg.db.begin() as other:  # someone else's change, committed after the read (no lock is held yet)
            other.execute(update(calls).where(calls.c.ref == ref).values(version=calls.c.version + 1))
        with traced(pg.db) as messages, pytest.raises(VersionConflict):
            uow.commit()
        assert not [m for m in messages if m.startswith("B CommandComplete") and "COMMIT" in m], messages
    assert _chain_state(pg) == before
    stored, _ = call_service.get_call(pg, ref)
    assert stored.state == "logged"
    advance(pg, ref, "start_triage")  # the connection is fine for the next one
    assert _chain_state(pg)[0] == before[0] + 1


def test_a_step_without_the_audit_chains_head_beside_its_events_commits_nothing(pg):
    """On PostgreSQL the step's audit event is numbered from the head in its own statement: with the head's
    row gone and events in the chain, it would be numbered 1 again, which the events' key refuses."""
    ref = in_triage(pg)
    call, history = call_service.get_call(pg, ref)
    with pg.db.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")  # the head's triggers
        connection.execute(delete(audit_chain_heads).where(audit_chain_heads.c.chain == "audit"))
    with pytest.raises(ChainHeadMissing):
        call_service.fire_call_trigger(pg, actor_for("CNH"), ref, {
            "trigger": "refer", "expected_version": call.version, "data": {"service": "CRT"}})
    after, same = call_service.get_call(pg, ref)
    assert (after.state, after.version, len(same)) == (call.state, call.version, len(history))


def _backend_pids(engine) -> set[int]:
    with engine.connect() as connection:
        return {connection.execute(text("select pg_backend_pid()")).scalar_one()}


def _terminate(url: str, pids: set[int]) -> None:
    other = make_engine(url, ping_after_idle=0)
    with other.begin() as connection:
        for pid in pids:
            connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_closed_while_idle_in_the_pool_is_replaced_unseen(pg):
    url = pg.db.url.render_as_string(hide_password=False)
    engine = make_engine(url, ping_after_idle=0.05)
    try:
        first = _backend_pids(engine)
        _terminate(url, first)
        time.sleep(0.1)  # idle longer than the threshold: pinged at checkout, found closed, replaced
        second = _backend_pids(engine)
        assert second and second != first
    finally:
        engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(pg):
    url = pg.db.url.render_as_string(hide_password=False)
    engine = make_engine(url, ping_after_idle=60)
    try:
        _backend_pids(engine)
        with traced(engine) as messages:
            _backend_pids(engine)
        # BEGIN, then the statement (Core's, not prepared: BEGIN goes just before it, as psycopg sent it), the
        # ROLLBACK as it goes back to the pool: no ping ("SELECT 1") before them.
        assert round_trips(messages) == 3, messages
        assert not [m for m in messages if m.startswith("F") and "SELECT 1" in m.upper()], messages
    finally:
        engine.dispose()


def test_after_a_server_restart_one_statement_fails_and_the_pool_then_recovers(pg):
    """What pinging only after idleness gives up, said plainly: a connection used within the threshold and
    closed since (a server restart) fails its next statement, as one in use at the restart would; the
    failure replaces every pooled connection made before it, and the next use succeeds."""
    from sqlalchemy.exc import DBAPIError

    url = pg.db.url.render_as_string(hide_password=False)
    engine = make_engine(url, ping_after_idle=60)
    try:
        pids = _backend_pids(engine)
        _terminate(url, pids)
        with pytest.raises(DBAPIError) as failed:
            _backend_pids(engine)
        assert failed.value.connection_invalidated
        assert _backend_pids(engine).isdisjoint(pids)
    finally:
        engine.dispose()


# The app's connections are in psycopg's autocommit mode and send BEGIN themselves (adapters/prepared.py,
# begin_with_first_statement): whichever kind of statement comes first in a unit of work, every statement
# is inside its transaction, and a rollback undoes them all.

def _pings(svc) -> int:
    with svc.db.connect() as connection:
        return connection.execute(select(func.count()).select_from(bench_pings)).scalar_one()


_PREPARED_PING = Prepared(insert(bench_pings).values(created_at=bindparam("b_at", type_=bench_pings.c.created_at.type),
                                                     note="prepared"))


def _core_first(uow, now):
    uow.session.execute(insert(bench_pings).values(created_at=now, note="core"))


def _prepared_first(uow, now):
    _PREPARED_PING.run(uow.session.connection(), {"b_at": now})


def _batch_first(uow, now):
    connection = uow.session.connection()
    with batched(connection):
        _PREPARED_PING.run(connection, {"b_at": now})


def _read_first(uow, now):
    uow.session.execute(select(func.count()).select_from(bench_pings)).scalar_one()


def _connection_first(uow, now):
    """On the unit of work's connection before it has a session: the session made next takes the transaction
    over (UnitOfWork.session)."""
    _PREPARED_PING.run(uow.connection(), {"b_at": now})


@pytest.mark.parametrize("first", [_core_first, _prepared_first, _batch_first, _read_first, _connection_first])
def test_every_statement_of_a_unit_of_work_is_in_its_transaction(pg, first):
    now = pg.clock.now()
    with pg.uow() as uow:
        first(uow, now)
        uow.session.execute(insert(bench_pings).values(created_at=now, note="second"))
        _PREPARED_PING.run(uow.session.connection(), {"b_at": now})
        # not committed: leaving the unit of work rolls everything back
    assert _pings(pg) == 0
    with pg.uow() as uow:
        first(uow, now)
        _PREPARED_PING.run(uow.session.connection(), {"b_at": now})
        uow.commit()
    assert _pings(pg) == (1 if first is _read_first else 2)


_PING_ID = Prepared(insert(bench_pings).values(created_at=bindparam("b_at", type_=bench_pings.c.created_at.type),
                                               note="at commit").returning(bench_pings.c.id))
_PINGS = Prepared(select(func.count()).select_from(bench_pings))


def test_a_unit_of_work_of_prepared_statements_only_is_one_transaction_without_the_orm(pg):
    """A read and a statement sent at commit on the unit of work's connection (UnitOfWork.connection), as a
    ringing call's answer runs: no ORM session is made; the read goes before the transaction, the statement
    alone; two statements at commit go in one batch with BEGIN and COMMIT."""
    now = pg.clock.now()
    with traced(pg.db) as messages, pg.uow() as uow:
        assert _PINGS.rows_before_transaction(uow.connection(), {}) == [(0,)]
        inserted = uow.at_commit(_PING_ID, {"b_at": now})
        uow.commit()
        assert uow._session is None  # noqa: SLF001 - what this test is about
    assert len(inserted()) == 1 and _pings(pg) == 1
    assert round_trips(messages) == 2 and not [m for m in messages if "BEGIN" in m or "COMMIT" in m], messages
    with traced(pg.db) as messages, pg.uow() as uow:
        first, second = uow.at_commit(_PING_ID, {"b_at": now}), uow.at_commit(_PING_ID, {"b_at": now})
        uow.commit()
    assert len(first()) == len(second()) == 1 and _pings(pg) == 3
    assert round_trips(messages) == 1 and [m for m in messages if m.startswith("F") and "COMMIT" in m], messages


def test_a_unit_of_work_of_prepared_statements_left_uncommitted_writes_nothing(pg):
    now = pg.clock.now()
    with pg.uow() as uow:
        _PREPARED_PING.run(uow.connection(), {"b_at": now})
        uow.at_commit(_PING_ID, {"b_at": now})
    assert _pings(pg) == 0


def test_a_transaction_that_runs_no_statement_sends_nothing(pg):
    with traced(pg.db) as messages, pg.uow() as uow:
        uow.session.connection()
        uow.commit()
    assert messages == []


def test_a_unit_of_work_that_only_read_ends_with_commit_and_keeps_the_prepared_statements(pg):
    ref = logged(pg)
    # An engine of one connection: psycopg prepares a statement on the server from its fifth run on a
    # connection, and the suite's pool may hold several connections, handed out in turn.
    engine = make_engine(pg.db.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)

    def read() -> None:
        with UnitOfWork(factory) as uow:
            # (a read in the transaction: uow.calls.get alone would go before it, and end with nothing to end)
            assert uow.calls.history(ref)

    try:
        for _ in range(6):
            read()
        with traced(engine) as messages:
            read()
    finally:
        engine.dispose()
    assert not [m for m in messages if "DEALLOCATE" in m or "ROLLBACK" in m], messages
    assert [m for m in messages if m.startswith("F") and "COMMIT" in m], messages
    # its statements ran prepared: bound to a named statement, not parsed again
    assert [m for m in messages if m.startswith('F Bind  "" "_pg3_')], messages


def test_a_unit_of_work_that_wrote_and_did_not_commit_rolls_back(pg):
    now = pg.clock.now()
    with traced(pg.db) as messages, pg.uow() as uow:
        uow.session.execute(select(func.count()).select_from(bench_pings)).scalar_one()
        uow.session.execute(insert(bench_pings).values(created_at=now, note="undone"))
    assert [m for m in messages if m.startswith("F") and "ROLLBACK" in m], messages
    assert _pings(pg) == 0


def test_a_new_call_in_a_unit_of_work_with_orm_changes_is_stored_with_them(pg, monkeypatch):
    """add_new_call's statement is sent at commit: in the commit's batch, or, when the unit of work also has
    changes for the ORM to flush (never in a batch), on its own before them."""
    original = UnitOfWork.add_new_call

    def and_an_orm_change(self, call, result):
        original(self, call, result)
        self.session.add(User(username="orm.change", display_name="Orm Change", role="handler", centre="CNH",
                              password_hash=PASSWORD_HASH, created_at=pg.clock.now()))

    monkeypatch.setattr(UnitOfWork, "add_new_call", and_an_orm_change)
    payload = call_payload()
    del payload["subject"]["nhs_number"]
    call = call_service.log_call(pg, actor_for("CNH"), payload)
    stored, history = call_service.get_call(pg, call.ref)
    assert stored.id == call.id and len(history) == 1 and history[0].seq == call_history_seq(pg, call.ref)
    with pg.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(users).where(
            users.c.username == "orm.change")).scalar_one() == 1


def call_history_seq(svc, ref: str) -> int:
    with svc.db.connect() as connection:
        return connection.execute(select(audit_events.c.seq).where(audit_events.c.call_ref == ref)).scalar_one()


MHA_LINE = "+441632960106"  # the Mental Health Central Access Point's: no menu, straight to the queue


def _sid(n: int) -> str:
    return f"CA{n:032x}"


def test_a_ringing_call_answered_with_the_menu_takes_one_round_trip(pg):
    logged(pg, caller={"phone": CALLER})  # an open call of the caller's: matched in the leg's statement
    phone_calls.incoming(pg, _sid(1), CNH_LINE, CALLER)  # the statement prepared, the engine loaded
    with traced(pg.db) as messages:
        answer = phone_calls.incoming(pg, _sid(2), CNH_LINE, CALLER)
    # The leg's INSERT with the caller's match in it, alone: no BEGIN and no COMMIT (a statement outside a
    # transaction commits as it ends). Four before: BEGIN, the match's read, the INSERT, COMMIT.
    assert answer.kind == answers.MENU and round_trips(messages) == 1, messages
    assert not [m for m in messages if m.startswith("F") and ("BEGIN" in m or "COMMIT" in m)], messages
    row = leg(pg, _sid(2))
    assert row.menu_attempt == 1 and row.matched_call_ref is not None


def test_a_ringing_call_put_in_a_queue_without_an_overflow_takes_one_round_trip(pg):
    # MHA's line has no overflow: the answer is its queue whatever the queues' state, which is not read.
    phone_calls.incoming(pg, _sid(3), MHA_LINE, CALLER)
    with traced(pg.db) as messages:
        answer = phone_calls.incoming(pg, _sid(4), MHA_LINE, CALLER)
    assert answer.kind == answers.QUEUED and round_trips(messages) == 1, messages
    assert not [m for m in messages if "handler_availability" in m], messages
    row = leg(pg, _sid(4))
    assert (row.queue, row.enqueued_at) == ("MHA", pg.clock.now())


def test_a_ringing_call_put_in_a_queue_with_an_overflow_takes_two_round_trips(pg, monkeypatch):
    monkeypatch.setattr(pg, "catalogue", with_line(pg.catalogue, "MHA", overflow=Overflow("CNH", "queue", 180, True)))
    phone_calls.incoming(pg, _sid(6), MHA_LINE, CALLER)
    with traced(pg.db) as messages:
        answer = phone_calls.incoming(pg, _sid(7), MHA_LINE, CALLER)
    # The queues' state (one statement for the centre's queue and its overflow's), then the leg's INSERT.
    # Six before: BEGIN, two queue reads, the match's read, the INSERT, COMMIT.
    assert round_trips(messages) == 2, messages
    assert (answer.kind, answer.queue) == (answers.OVERFLOW_QUEUE, "CNH")  # nobody taking MHA's calls


def test_a_retried_ringing_call_writes_nothing_and_is_told_where_the_caller_is(pg):
    first = phone_calls.incoming(pg, _sid(5), MHA_LINE, CALLER)
    before = leg(pg, _sid(5))
    pg.clock.advance(seconds=5)
    again = phone_calls.incoming(pg, _sid(5), MHA_LINE, CALLER)
    assert first.kind == again.kind == answers.QUEUED and again.queue == "MHA"
    assert leg(pg, _sid(5)) == before
    with pg.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(phone_legs)).scalar_one() == 1


def test_the_queues_longest_wait_is_read_from_the_waiting_callers_only(pg):
    """The queue read takes the partial index of the callers waiting now (migration 0015, on (queue,
    queue_joined_at) since 0019), not a walk past every caller the queue ever answered; and of those waiting,
    only the first in the index (the longest waiting in this queue), not every one as min() did: a deep queue
    costs its read no more than a short one. Every other caller overflowed in from another centre's queue after
    waiting there (enqueued_at an hour earlier): the longest wait is this queue's (queue_joined_at)."""
    from ipoa.adapters.voice_queue_queries import _QUEUES_NOW, queues_now

    now = pg.clock.now()
    waiting = 60  # the last 60 still wait, joined in no particular order; the 2,000 before them were answered
    joined = [now - timedelta(seconds=(n * 37) % waiting + 1) for n in range(waiting)]
    with pg.db.begin() as connection:
        connection.execute(insert(phone_legs), [
            {"call_sid": _sid(1000 + n), "centre": "MHA", "queue": "MHA", "priority": False, "arrived_at": now,
             "enqueued_at": now - timedelta(hours=1), "queue_joined_at": now - timedelta(hours=1),
             "answered_at": now, "left_queue_at": now, "menu_attempt": 0, "updated_at": now}
            for n in range(2000)] + [
            {"call_sid": _sid(4000 + n), "centre": "MHA", "queue": "MHA", "priority": False, "arrived_at": at,
             "enqueued_at": at - timedelta(hours=n % 2), "queue_joined_at": at, "answered_at": None,
             "left_queue_at": None, "menu_attempt": 0, "updated_at": now}
            for n, at in enumerate(joined)])
        compiled = _QUEUES_NOW._compiled(connection.dialect)
        params = compiled.parameters({"b_first": "MHA", "b_second": "CHS", "b_seen_since": now})
        plan = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + compiled.sql, params).scalars().all()
        state = queues_now(connection, "MHA", "CHS", now)
    scans = [line for line in plan if "ix_phone_legs_waiting" in line]
    assert len(scans) == 2, plan
    assert "rows=1 " in scans[0], plan  # MHA's: one entry read of its 60
    assert state["MHA"].longest_waiting_since == min(joined) and state["CHS"].longest_waiting_since is None


def test_loading_a_call_first_is_a_read_of_its_own_before_the_transaction(pg):
    """CallRepository.get, the transaction's first statement, goes alone without BEGIN (one round trip, no
    batch); a unit of work that only loaded the call then sends neither BEGIN, COMMIT nor ROLLBACK (its commit's
    batch, empty, only syncs)."""
    ref = logged(pg)
    with traced(pg.db) as messages, pg.uow() as uow:
        assert uow.calls.get(ref) is not None
        uow.commit()
    assert not [m for m in messages if any(word in m for word in ("BEGIN", "COMMIT", "ROLLBACK"))], messages
    # (psycopg may first prepare the statement, on its fifth run on the connection: a Parse of its own)
    after_read = messages[messages.index('B CommandComplete  "SELECT 1"') + 1:]
    assert after_read[0] == "B ReadyForQuery  I", messages
    assert set(after_read[1:]) <= {"F Sync", "F Flush", "B ReadyForQuery  I"}, messages  # the empty batch's end


def test_a_services_rota_is_read_in_one_round_trip(pg):
    # Its five reads (patterns, one-off shifts, their members, changes, standing duty leads) go together:
    # the relay reads a service's rota for each batch of referrals (docs/performance.md, SMS). Six round trips
    # before (a BEGIN, then one a read).
    from tests.helpers.rota import add_on_duty

    nia = add_on_duty(pg, name="Nia", service="DN", mobile="07700 900201")
    now = pg.clock.now()
    with pg.uow() as uow:
        uow.rotas.rota("DN", now, now)  # the statements prepared
    with pg.uow() as uow, traced(pg.db) as messages:
        rota = uow.rotas.rota("DN", now, now)
    assert round_trips(messages) == 1, messages
    assert rota.patterns and all(nia in p.professionals for p in rota.patterns)
