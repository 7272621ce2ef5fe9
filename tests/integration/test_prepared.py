"""Statements prepared for the DB-API cursor (adapters/prepared.py) behave as Core's: the same values read
back, a driver's error raised as SQLAlchemy's with the parameters hidden, a required parameter missing
refused, and the engine's statement listeners called. On SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import sys
from datetime import date, datetime

import pytest
from sqlalchemy import Text, bindparam, cast, exc, insert, select, update

from ipoa.adapters import json_text
from ipoa.adapters.orm import calls, outbox, referrals
from ipoa.adapters.prepared import Prepared, batched
from ipoa.adapters.repository import _CALL_AND_REFERRALS
from ipoa.service import calls as call_service
from tests.conftest import call_payload
from tests.helpers.web import referred


def test_a_call_and_its_referrals_read_as_core_reads_them(svc):
    ref, _ = referred(svc)
    with svc.uow() as uow:
        connection = uow.session.connection()
        prepared = _CALL_AND_REFERRALS.rows(connection, {"b_ref": ref})
        core = [tuple(row) for row in connection.execute(_CALL_AND_REFERRALS.statement, {"b_ref": ref})]
    assert prepared == core
    (row,) = prepared
    by_name = dict(zip([c.name for c in calls.columns], row))
    assert isinstance(by_name["logged_at"], datetime) and by_name["logged_at"].tzinfo is not None
    assert isinstance(by_name["recommended"], dict)  # JSON, decoded
    assert by_name["date_of_birth"] is None or isinstance(by_name["date_of_birth"], date)
    assert by_name["out_of_area"] in (True, False)


def test_a_driver_error_is_sqlalchemys_with_the_parameters_hidden(svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload())
    insert_call = Prepared(insert(calls), column_keys=[c.name for c in calls.columns if c.name != "id"])
    with svc.uow() as uow:
        connection = uow.session.connection()
        row = connection.execute(select(*[c for c in calls.columns if c.name != "id"])
                                 .where(calls.c.ref == call.ref)).one()
        with pytest.raises(exc.IntegrityError) as raised:  # the same ref again: the unique index refuses it
            insert_call.run(connection, dict(row._mapping))
    message = str(raised.value)
    # The row's values are not in it (the database's own detail may name the key, as through Core).
    assert "9990000026" not in message and "Edith" not in message
    assert "parameters hidden" in message  # SQLAlchemy's own words


def test_a_required_parameter_missing_is_refused_before_the_database(svc):
    by_ref = Prepared(select(calls.c.id).where(calls.c.ref == bindparam("b_ref")))
    with svc.uow() as uow, pytest.raises(exc.ArgumentError, match="b_ref"):
        by_ref.rows(uow.session.connection(), {})


def test_the_engines_statement_listeners_see_each_statement(svc):
    from sqlalchemy import event

    ref, _ = referred(svc)
    seen: list[tuple[str, object]] = []

    def before(_conn, _cursor, statement, _params, context, _many):
        context.started = True  # a listener may keep its own state on the context (bench/growth.py does)
        seen.append(("before", statement))

    def after(_conn, _cursor, statement, _params, context, _many):
        assert context.started
        seen.append(("after", statement))

    by_ref = Prepared(select(referrals.c.id).join(calls, calls.c.id == referrals.c.call_id)
                      .where(calls.c.ref == bindparam("b_ref")))
    event.listen(svc.db, "before_cursor_execute", before)
    event.listen(svc.db, "after_cursor_execute", after)
    try:
        with svc.uow() as uow:
            assert len(by_ref.rows(uow.session.connection(), {"b_ref": ref})) == 1
    finally:
        event.remove(svc.db, "before_cursor_execute", before)
        event.remove(svc.db, "after_cursor_execute", after)
    mine = [(when, s) for when, s in seen if "referrals" in s.lower()]
    assert [when for when, _ in mine] == ["before", "after"]


def test_in_a_batch_each_update_counts_the_rows_it_changed(svc):
    """On PostgreSQL the statements go in one batch (psycopg's pipeline mode); on SQLite one by one."""
    ref, _ = referred(svc)
    set_summary = Prepared(update(calls).where(calls.c.ref == bindparam("b_ref"), calls.c.version == bindparam("b_v")),
                           column_keys=("summary",))
    with svc.uow() as uow:
        connection = uow.session.connection()
        with batched(connection) as sync:
            changed = set_summary.run_later(connection, {"b_ref": ref, "b_v": 3, "summary": "Batched."})
            stale = set_summary.run_later(connection, {"b_ref": ref, "b_v": 1, "summary": "Stale."})
            sync()
            assert (changed(), stale()) == (1, 0)
        uow.session.commit()
    with svc.uow() as uow:
        assert uow.session.execute(select(calls.c.summary).where(calls.c.ref == ref)).scalar_one() == "Batched."


def test_an_error_in_a_batch_is_sqlalchemys_and_the_transaction_writes_nothing(svc, handler_actor):
    ref, _ = referred(svc)
    set_summary = Prepared(update(calls).where(calls.c.ref == bindparam("b_ref")), column_keys=("summary",))
    set_ref = Prepared(update(calls).where(calls.c.ref == bindparam("b_ref")), column_keys=("ref",))
    other = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True).ref
    with svc.uow() as uow, pytest.raises(exc.IntegrityError):
        connection = uow.session.connection()
        with batched(connection):
            set_summary.run(connection, {"b_ref": ref, "summary": "Never."})
            set_ref.run(connection, {"b_ref": ref, "ref": other})  # the unique index refuses it
            _CALL_AND_REFERRALS.rows(connection, {"b_ref": ref})  # results read: the error surfaces
    with svc.uow() as uow:
        assert uow.session.execute(select(calls.c.summary).where(calls.c.ref == ref)).scalar_one() != "Never."


def test_postgresql_statements_take_cursors_read_to_the_end_and_never_another_connections(svc, handler_actor,
                                                                                           monkeypatch):
    """PostgreSQL: a connection's cursors, once every result is read, serve its next statements (a psycopg
    cursor costs about 11 µs to make, docs/performance.md); a count still to be read after a batch keeps its
    own, and no connection is handed another's. SQLite closes each as before."""
    from ipoa.adapters import prepared

    if svc.db.dialect.name != "postgresql":
        pytest.skip("cursors are kept on PostgreSQL only")
    import psycopg

    made: list[object] = []  # by this module's statements (SQLAlchemy's own make theirs as ever)
    make = psycopg.Connection.cursor

    def counting(self, *args, **kwargs):
        cursor = make(self, *args, **kwargs)
        if sys._getframe(1).f_code.co_filename == prepared.__file__:
            made.append(cursor)
        return cursor

    ref, _ = referred(svc)  # (steps already made: the pool's connections have been used)
    monkeypatch.setattr(psycopg.Connection, "cursor", counting)
    # The same step's statements again, enough times that each idle connection of the pool (handed out in
    # turn) has served one: each keeps the cursors it read to the end.
    for _ in range(svc.db.pool.checkedin() + 3):
        call = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
        assert call.version == 1
    fresh = len(made)
    for _ in range(5):
        call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    assert len(made) == fresh, "a step on a connection used before made new cursors"

    # An error in a batch: its cursors are closed, not kept (the connection's next statements work).
    set_ref = Prepared(update(calls).where(calls.c.ref == bindparam("b_ref")), column_keys=("ref",))
    other = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True).ref
    with svc.uow() as uow, pytest.raises(exc.IntegrityError):
        connection = uow.session.connection()
        with batched(connection):
            set_ref.run(connection, {"b_ref": ref, "ref": other})  # the unique index refuses it
            _CALL_AND_REFERRALS.rows(connection, {"b_ref": ref})
    for _ in range(3):
        call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    keeping = 0
    for record in list(svc.db.pool._pool.queue):  # what each idle connection of the pool keeps: its own, open
        kept = record.info.get(prepared._FREE)
        if kept is not None:
            owner, cursors = kept
            assert owner is record.dbapi_connection
            assert all(not c.closed and c.connection is owner for c in cursors)
            assert len(cursors) <= prepared._FREE_MAX
            keeping += bool(cursors)
    assert keeping

    # Another DB-API connection (a reconnection, the pool's next one) never takes this one's cursors.
    with svc.db.connect() as one, svc.db.connect() as two:
        first, second = one.connection.dbapi_connection, two.connection.dbapi_connection
        cursor = first.cursor()
        info = {prepared._FREE: (first, [cursor])}
        assert prepared._cursor(info, second) is not cursor
        assert prepared._cursor(info, second).connection is second
        assert prepared._cursor(info, first) is cursor


def test_the_json_columns_are_written_by_orjson_and_read_back_equal(svc, handler_actor):
    """adapters/json_text.py: the engine's JSON columns (here an outbox event's payload) hold orjson's compact
    text, and read back (Core, the prepared statements) as the values written."""
    call = call_service.log_call(svc, handler_actor, call_payload())
    with svc.uow() as uow:
        connection = uow.session.connection()
        texts = connection.execute(select(cast(outbox.c.payload, Text), outbox.c.payload)
                                   .where(outbox.c.topic == "call.logged")).all()
    assert texts
    for text, payload in texts:
        assert payload["ref"] == call.ref
        assert text == json_text.dumps(payload)  # orjson's text, as written (json.dumps puts a space after ":")
        assert json.loads(text) == payload
