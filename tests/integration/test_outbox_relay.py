"""Committed outbox messages reach the RQ worker through the relay; messages left behind (Redis down,
a crash before hand-over) are swept later; processing is idempotent."""
from __future__ import annotations

from rq import Queue, SimpleWorker
from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.adapters.queue import OUTBOX_LIST, QUEUE_NAME, OutboxNotifier, RQEnqueuer
from ipoa.adapters.redis_conn import connect
from ipoa.service import calls as call_service
from ipoa.service import outbox
from tests.conftest import call_payload


def outbox_rows(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(orm.outbox.c.id, orm.outbox.c.topic, orm.outbox.c.processed_at,
                                          orm.outbox.c.payload)).all()


def run_worker(app, svc) -> None:
    with app.app_context():
        SimpleWorker([QUEUE_NAME], connection=svc.redis()).work(burst=True)


def test_committed_messages_are_processed_by_a_real_worker(app, svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload())
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    assert svc.redis().llen(OUTBOX_LIST) == 2  # the request paid one RPUSH each
    assert outbox.relay_once(svc, RQEnqueuer(svc.redis), block_seconds=0) == 2
    assert svc.redis().llen(OUTBOX_LIST) == 0
    assert Queue(QUEUE_NAME, connection=svc.redis()).count == 2
    run_worker(app, svc)
    rows = outbox_rows(svc)
    assert [r.topic for r in sorted(rows, key=lambda r: r.topic)] == ["call.logged", "call.state_changed"]
    assert all(r.processed_at is not None for r in rows)


def test_messages_committed_while_redis_is_down_go_out_after_the_sweep(app, svc, handler_actor, tmp_path):
    svc_publisher = svc.publisher
    # A publisher whose Redis is unreachable: the commit must still succeed.
    svc.publisher = OutboxNotifier(lambda: connect(f"unix://{tmp_path / 'no-such-redis.sock'}"))
    try:
        call = call_service.log_call(svc, handler_actor, call_payload())
    finally:
        svc.publisher = svc_publisher
    assert call_service.get_call(svc, call.ref)[0].state == "logged"
    assert svc.redis().llen(OUTBOX_LIST) == 0
    assert [r.processed_at for r in outbox_rows(svc)] == [None]
    enqueuer = RQEnqueuer(svc.redis)
    assert outbox.sweep(svc, enqueuer, older_than_seconds=30) == 0  # too fresh: may still be on its way
    svc.clock.advance(seconds=60)
    assert outbox.sweep(svc, enqueuer, older_than_seconds=30) == 1
    run_worker(app, svc)
    assert all(r.processed_at is not None for r in outbox_rows(svc))
    assert outbox.sweep(svc, enqueuer, older_than_seconds=30) == 0


def test_a_message_delivered_twice_is_processed_once(svc, handler_actor):
    call_service.log_call(svc, handler_actor, call_payload())
    (row,) = outbox_rows(svc)
    assert outbox.process(svc, row.id) is True
    assert outbox.process(svc, row.id) is False
    assert outbox.process(svc, "no-such-message") is False


def test_republishing_a_waiting_message_does_not_queue_it_twice(svc, handler_actor):
    call_service.log_call(svc, handler_actor, call_payload())
    (row,) = outbox_rows(svc)
    enqueuer = RQEnqueuer(svc.redis)
    assert outbox.relay_once(svc, enqueuer, block_seconds=0) == 1
    enqueuer.publish([row.id])  # the sweep finds it unprocessed while its job still waits
    assert Queue(QUEUE_NAME, connection=svc.redis()).count == 1


def test_the_relay_loop_hands_over_and_sweeps_until_stopped(app, svc, handler_actor):
    call_service.log_call(svc, handler_actor, call_payload())
    svc.redis().delete(OUTBOX_LIST)  # as if the relay crashed after popping, before enqueueing
    svc.clock.advance(seconds=60)
    cycles = []
    outbox.run_relay(svc, RQEnqueuer(svc.redis), sweep_every=0,
                     stop=lambda: cycles.append(1) or len(cycles) > 1)
    assert Queue(QUEUE_NAME, connection=svc.redis()).count == 1
    run_worker(app, svc)
    assert all(r.processed_at is not None for r in outbox_rows(svc))


def test_outbox_payloads_carry_no_patient_identifier(svc, handler_actor):
    body = call_payload(subject={"given_name": "Zebedee", "family_name": "Quixotically",
                                 "nhs_number": "9990000026", "date_of_birth": "1931-07-19",
                                 "postcode": "LE15 6XY"},
                        caller={"name": "Wilhelmina Caller", "phone": "07911 123456"},
                        summary="Distinctive-summary-text")
    call = call_service.log_call(svc, handler_actor, body)
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "refer", "expected_version": 2,
                                                                  "data": {"service": "CRT"}})
    dumped = repr([r.payload for r in outbox_rows(svc)])
    for secret in ("Zebedee", "Quixotically", "9990000026", "1931", "LE15", "Wilhelmina", "7911123456",
                   "Distinctive"):
        assert secret not in dumped
    assert call.ref in dumped
