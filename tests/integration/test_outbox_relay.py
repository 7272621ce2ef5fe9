"""Committed outbox events are handled by the relay, which queues one send job per text they cause;
events left behind (Redis down, a crash before hand-over) are swept later; handling is idempotent."""
from __future__ import annotations

from rq import Queue
from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.adapters.redis_conn import connect
from ipoa.adapters.rq_queue import OUTBOX_LIST, QUEUE_NAME, OutboxNotifier
from ipoa.service import calls as call_service
from ipoa.service import outbox
from tests.conftest import call_payload
from tests.helpers.rota import add_on_duty
from tests.helpers.web import advance, in_triage


def outbox_rows(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(orm.outbox.c.id, orm.outbox.c.topic, orm.outbox.c.processed_at,
                                          orm.outbox.c.payload)).all()


class SendQueue:
    """Records the text ids the relay hands over (what would become RQ send jobs)."""

    def __init__(self):
        self.ids: list[str] = []

    def __call__(self, sms_ids):
        self.ids += sms_ids


def referred_to_dn(svc, n: int) -> list[str]:
    """n calls logged, triaged and referred to district nursing (four outbox events each); their refs."""
    refs = []
    for _ in range(n):
        ref = in_triage(svc, need="community_nursing")
        advance(svc, ref, "refer", data={"service": "DN"})
        refs.append(ref)
    return refs


def test_the_relay_handles_committed_events_in_one_batch(svc, handler_actor):
    call = call_service.log_call(svc, handler_actor, call_payload())
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    assert svc.redis().llen(OUTBOX_LIST) == 2  # the request paid one RPUSH each
    sent = SendQueue()
    assert outbox.relay_once(svc, sent, block_seconds=0) == 2
    assert svc.redis().llen(OUTBOX_LIST) == 0
    assert sent.ids == []  # logging and triage text nobody
    assert Queue(QUEUE_NAME, connection=svc.redis()).count == 0  # and no job per event
    rows = outbox_rows(svc)
    assert sorted(r.topic for r in rows) == ["call.logged", "call.state_changed"]
    assert all(r.processed_at is not None for r in rows)


def test_a_referral_event_becomes_one_send_job_per_text(app, svc, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = call_service.log_call(svc, handler_actor, call_payload(need="community_nursing"))
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage", "expected_version": 1})
    call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "refer", "expected_version": 2,
                                                                  "data": {"service": "DN"}})
    assert outbox.relay_once(svc, outbox.rq_send_queue(svc), block_seconds=0) == 4
    queue = Queue(QUEUE_NAME, connection=svc.redis())
    assert [j.func_name for j in queue.jobs] == ["workers.jobs.send_sms"]


def test_events_committed_while_redis_is_down_are_handled_by_the_sweep(svc, handler_actor, tmp_path):
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
    sent = SendQueue()
    assert outbox.sweep(svc, sent, older_than_seconds=30) == 0  # too fresh: may still be on its way
    svc.clock.advance(seconds=60)
    assert outbox.sweep(svc, sent, older_than_seconds=30) == 1
    assert all(r.processed_at is not None for r in outbox_rows(svc))
    assert outbox.sweep(svc, sent, older_than_seconds=30) == 0


def test_an_event_delivered_twice_is_handled_once(svc, handler_actor):
    call_service.log_call(svc, handler_actor, call_payload())
    (row,) = outbox_rows(svc)
    assert outbox.process(svc, row.id) is True
    assert outbox.process(svc, row.id) is False
    assert outbox.process(svc, "no-such-message") is False
    assert outbox.handle(svc, [row.id, row.id, "no-such-message"]) == 0


def test_a_failing_event_does_not_hold_up_the_batch(svc, handler_actor, monkeypatch):
    first = call_service.log_call(svc, handler_actor, call_payload())
    second = call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    rows = {r.payload["ref"]: r.id for r in outbox_rows(svc)}
    real = outbox.sms.messages_for_event

    def broken_for_first(svc_, session, message_id, topic, payload):
        if payload["ref"] == first.ref:
            raise RuntimeError("boom")
        return real(svc_, session, message_id, topic, payload)

    monkeypatch.setattr(outbox.sms, "messages_for_event", broken_for_first)
    assert outbox.handle(svc, [rows[first.ref], rows[second.ref]]) == 1
    by_ref = {r.payload["ref"]: r for r in outbox_rows(svc)}
    assert by_ref[second.ref].processed_at is not None
    assert by_ref[first.ref].processed_at is None  # left for the sweep, with the error recorded
    with svc.uow() as uow:
        err, attempts = uow.session.execute(select(orm.outbox.c.last_error, orm.outbox.c.attempts)
                                            .where(orm.outbox.c.id == rows[first.ref])).one()
    assert err == "RuntimeError: boom" and attempts == 1
    # Retried by the sweep until MAX_ATTEMPTS, then left for an operator.
    svc.clock.advance(seconds=60)
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        outbox.sweep(svc, None)
    with svc.uow() as uow:
        assert uow.session.scalar(select(orm.outbox.c.attempts)
                                  .where(orm.outbox.c.id == rows[first.ref])) == outbox.MAX_ATTEMPTS
    monkeypatch.setattr(outbox.sms, "messages_for_event", real)
    assert outbox.sweep(svc, None) == 0


def test_the_relay_loop_handles_and_sweeps_until_stopped(svc, handler_actor):
    call_service.log_call(svc, handler_actor, call_payload())
    svc.redis().delete(OUTBOX_LIST)  # as if the relay crashed after popping, before handling
    svc.clock.advance(seconds=60)
    cycles = []
    outbox.run_relay(svc, sweep_every=0, stop=lambda: cycles.append(1) or len(cycles) > 1)
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
    # The date of birth as a date: "1931" alone turns up in a random hex id now and then.
    for secret in ("Zebedee", "Quixotically", "9990000026", "1931-07", "LE15", "Wilhelmina", "7911123456",
                   "Distinctive"):
        assert secret not in dumped
    assert call.ref in dumped


def test_texts_that_could_not_be_queued_are_queued_on_the_next_cycle():
    calls, down = [], [True]

    def enqueue(ids):
        if down[0]:
            raise ConnectionError("Redis is down")
        calls.append(list(ids))

    backlog = outbox.Backlog(enqueue)
    try:
        backlog(["a", "b"])
    except ConnectionError:
        pass
    assert backlog.ids == ["a", "b"] and calls == []
    down[0] = False
    backlog.flush()
    assert calls == [["a", "b"]] and backlog.ids == []
    backlog(["c"])
    assert calls == [["a", "b"], ["c"]]


def test_texts_are_gathered_while_a_send_job_waits_and_go_together_when_it_has_started():
    calls, busy = [], [True]
    backlog = outbox.Backlog(lambda ids: calls.append(list(ids)), busy=lambda: busy[0], hold=60.0, full=3)
    backlog(["a"])
    backlog(["b"])
    assert calls == [] and backlog.ids == ["a", "b"]  # a job waits: these would only queue behind it
    busy[0] = False
    backlog.flush()
    assert calls == [["a", "b"]] and backlog.ids == []  # one job for both
    backlog(["c"])
    assert calls == [["a", "b"], ["c"]]  # an idle queue: at once
    busy[0] = True
    backlog(["d", "e"])
    backlog(["f"])
    assert calls[-1] == ["d", "e", "f"]  # a full batch gains nothing by waiting


def test_held_texts_go_after_the_longest_hold_even_with_the_queue_busy():
    calls = []
    backlog = outbox.Backlog(lambda ids: calls.append(list(ids)), busy=lambda: True, hold=0.0)
    backlog(["a"])
    assert calls == [["a"]]


def test_held_texts_go_when_the_relay_stops():
    calls = []
    backlog = outbox.Backlog(lambda ids: calls.append(list(ids)), busy=lambda: True, hold=60.0)
    backlog(["a"])
    assert calls == []
    backlog.flush(now=True)
    assert calls == [["a"]] and backlog.ids == []


def test_a_batchs_referrals_record_their_recipient_choices_together(svc):
    from ipoa.service import sms as sms_service

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    refs = referred_to_dn(svc, 3)
    sent = SendQueue()
    assert outbox.relay_once(svc, sent, block_seconds=0) == 12
    assert len(sent.ids) == 3
    for ref in refs:
        (choice,) = sms_service.recipient_choices(svc, ref)
        assert choice.step == "on_duty"
    assert [r for r in outbox_rows(svc) if r.processed_at is None] == []


def test_a_batch_logs_one_line_at_info_counting_its_texts_by_topic(svc, handler_actor, caplog):
    # A line a text cost the relay about a tenth of its CPU at load (docs/performance.md, SMS): at info
    # one line a batch, each event's own line at debug. Codes and counts only, never a name or number.
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    referred_to_dn(svc, 2)
    caplog.set_level("INFO", logger="ipoa.service.outbox")
    sent = SendQueue()
    assert outbox.relay_once(svc, sent, block_seconds=0) == 8
    lines = [r.getMessage() for r in caplog.records if r.name == "ipoa.service.outbox"]
    assert lines == ["outbox batch: 8 event(s) handled, 2 text(s) (referral.sent 2)"]
    assert len(sent.ids) == 2
    caplog.clear()
    caplog.set_level("DEBUG", logger="ipoa.service.outbox")
    call_service.log_call(svc, handler_actor, call_payload(need="community_nursing"), allow_duplicate=True)
    assert outbox.relay_once(svc, sent, block_seconds=0) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "ipoa.service.outbox"] == [
        "outbox batch: 1 event(s) handled, no text"]
    assert "Nia" not in caplog.text and "900201" not in caplog.text


def test_a_batchs_texts_are_written_in_one_statement_with_every_field(svc, monkeypatch):
    # The relay's texts go in by one Core executemany, not the ORM's flush (adapters/sms_store.add_all;
    # docs/performance.md, SMS): each row must hold everything the text held.
    from sqlalchemy import event

    from ipoa.adapters.sms_store import SmsStore

    nia = add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    add_on_duty(svc, name="Tom", service="DN", mobile="07700 900202")
    referred_to_dn(svc, 2)
    made = []
    real_add_all = SmsStore.add_all

    def add_all(self, messages):
        made.extend(messages)
        return real_add_all(self, messages)

    monkeypatch.setattr(SmsStore, "add_all", add_all)
    inserts = []

    def count(_conn, _cursor, statement, _params, _context, many):
        if statement.lstrip().upper().startswith("INSERT INTO SMS_MESSAGES"):
            inserts.append(many)

    event.listen(svc.db, "before_cursor_execute", count)
    try:
        sent = SendQueue()
        assert outbox.relay_once(svc, sent, block_seconds=0) == 8
    finally:
        event.remove(svc.db, "before_cursor_execute", count)
    assert inserts == [True]  # one executemany for the batch's four texts
    assert len(made) == 4 and sorted(sent.ids) == sorted(m.id for m in made)
    columns = [c.name for c in orm.sms_messages.columns]
    with svc.uow() as uow:
        rows = {r.id: r._mapping for r in uow.session.execute(select(orm.sms_messages))}
    for text in made:
        row = rows[text.id]
        for name in columns:
            assert row[name] == getattr(text, name, None), name
    assert {(r["to"], r["status"], r["attempts"]) for r in rows.values()} == {
        ("+447700900201", "pending", 0), ("+447700900202", "pending", 0)}
    assert all(r["next_attempt_at"] is not None for r in rows.values())  # the hand-over's lease
    assert {r["professional_id"] for r in rows.values()} >= {nia}
