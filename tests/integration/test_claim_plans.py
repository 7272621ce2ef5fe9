"""The relay's and the worker's claims find their rows by primary key, however many wait: a backlog (an
outage over, a burst) must not make each claim read the whole backlog (docs/performance.md, texts' fourth
step). PostgreSQL's planner, told by its statistics that few events are unhandled and few texts pending
(as they are in steady state), chose the processed_at or status index for the claims and read every
waiting row to claim a batch of them."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, text

from ipoa.adapters import orm

HANDLED, WAITING = 3000, 3000


def _rows(now, n, *, handled: bool):
    outbox = [{"id": uuid.uuid4().hex, "topic": "referral.sent", "payload": {}, "created_at": now,
               "processed_at": now if handled else None, "attempts": 0} for _ in range(n)]
    texts = [{"id": uuid.uuid4().hex, "call_ref": "CNH-0000-0001", "recipient_kind": "on_duty",
              "to": "+447700900201", "template": "referral_sent", "body": "IPOA referral",
              "status": "queued" if handled else "pending", "attempts": 0 if not handled else 1,
              "created_at": now, "updated_at": now} for _ in range(n)]
    return outbox, texts


def _backlog(svc, now, tables: tuple[str, ...], prepare=lambda rows: None) -> list[list[dict]]:
    """Rows handled an hour ago, with statistics taken as in steady state (nothing waiting), then a backlog the
    statistics have not seen (each table's new rows, `prepare`d first): the new rows, a list per table."""
    handled = dict(zip(("outbox", "sms_messages"), _rows(now - timedelta(hours=1), HANDLED, handled=True)))
    waiting = dict(zip(("outbox", "sms_messages"), _rows(now, WAITING, handled=False)))
    with svc.db.begin() as conn:
        for table in tables:
            conn.execute(insert(orm.metadata.tables[table]), handled[table])
    with svc.db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f"ANALYZE {', '.join(tables)}"))
    with svc.db.begin() as conn:
        for table in tables:
            prepare(waiting[table])
            conn.execute(insert(orm.metadata.tables[table]), waiting[table])
    return [waiting[table] for table in tables]


def _plans(svc, claim):
    """The plan of each statement `claim(uow)` runs, from EXPLAIN with the same SQL and parameters."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append((statement, parameters))

    event.listen(svc.db, "before_cursor_execute", capture)
    try:
        with svc.uow() as uow:
            claim(uow)
            cursor = uow.session.connection().connection.cursor()
            # The test's tables hold thousands of rows, where reading a whole table costs about what 200 key
            # look-ups do; production's hold millions. The question is which index the claim takes.
            cursor.execute("SET LOCAL enable_seqscan = off")
            plans = []
            for statement, parameters in seen:
                cursor.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(r[0] for r in cursor.fetchall()))
            uow.session.rollback()
    finally:
        event.remove(svc.db, "before_cursor_execute", capture)
    assert plans, "the claim ran no UPDATE"
    return plans


@pytest.mark.postgres_only
def test_claims_take_their_rows_by_primary_key_when_a_backlog_has_built_up(svc):
    if svc.db.dialect.name != "postgresql":
        pytest.skip("the planner's choice is PostgreSQL's (SQLite's claims look their ids up by key)")
    now = svc.clock.now()
    waiting_outbox, waiting_texts = _backlog(svc, now, ("outbox", "sms_messages"))

    event_ids = [r["id"] for r in waiting_outbox[1000:1200]]
    for plan in _plans(svc, lambda uow: uow.outbox.claim(event_ids, now)):
        assert "pk_outbox" in plan and "ix_outbox_unprocessed" not in plan, plan

    text_ids = [r["id"] for r in waiting_texts[1000:1050]]
    lease = now + timedelta(seconds=20)
    plans = _plans(svc, lambda uow: uow.sms.claim_many(text_ids, now, lease, None))
    assert len(plans) == 1  # 50 texts: one statement (their ids as one array)
    for plan in plans:
        assert "pk_sms_messages" in plan and "ix_sms_messages_status_created" not in plan, plan
    single = _plans(svc, lambda uow: uow.sms.claim(text_ids[0], now, lease, None))
    assert "pk_sms_messages" in single[0], single[0]


@pytest.mark.postgres_only
def test_a_flush_of_outcomes_takes_its_texts_by_primary_key_when_many_are_submitting(svc):
    """The worker's recorder writes a flush's outcomes in one statement (adapters/sms_store._RECORD_ALL): it
    must look its texts up by key, not read every text `submitting` through the status index (thousands of
    them when a backlog is being sent), and record exactly the texts it names."""
    if svc.db.dialect.name != "postgresql":
        pytest.skip("the planner's choice is PostgreSQL's (SQLite records a text a statement, by key)")
    now = svc.clock.now()

    def submitting(rows):
        for row in rows:
            row.update(status="submitting", attempts=1, submitted_at=now)

    (sending,) = _backlog(svc, now, ("sms_messages",), submitting)

    outcomes = [(r["id"], f"SM{k:032d}", "queued") for k, r in enumerate(sending[1000:1020])]
    plans = _plans(svc, lambda uow: uow.sms.record_submitted_many(outcomes, now))
    assert len(plans) == 1  # the flush's 20 outcomes: one statement
    assert "pk_sms_messages" in plans[0] and "ix_sms_messages_status_created" not in plans[0], plans[0]

    with svc.uow() as uow:
        assert uow.sms.record_submitted_many(outcomes, now) == 20
        uow.commit()
    with svc.db.connect() as conn:
        rows = {r.id: (r.status, r.provider_sid, r.next_attempt_at) for r in conn.execute(
            text("SELECT id, status, provider_sid, next_attempt_at FROM sms_messages WHERE status <> 'submitting'"
                 " AND created_at = :now"), {"now": now})}
    assert rows == {i: ("queued", sid, None) for i, sid, _ in outcomes}
    with svc.uow() as uow:  # recorded already: no longer submitting, so not recorded again
        assert uow.sms.record_submitted_many(outcomes[:3], now) == 0
