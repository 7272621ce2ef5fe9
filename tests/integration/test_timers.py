"""Durable SLA timers on the real database and Redis: set and stopped with the state changes that start
and stop their clocks, in the same transaction; fired once when due; stale ones ignored; escalations
texted to the duty lead and the centre's supervisor; nothing lost or doubled when the scheduler, the
worker or Redis is killed or flushed."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ipoa.adapters.orm import audit_events, calls, outbox, referrals, sms_messages, timers, users
from ipoa.adapters.rq_queue import QUEUE_NAME, TIMERS_QUEUE_NAME
from ipoa.service import calls as call_service
from ipoa.service import outbox as outbox_service
from ipoa.service import timers as timer_service
from tests import processes
from tests.conftest import call_payload, make_user
from tests.helpers.rota import add_on_duty

SUPERVISOR_MOBILE = "+447700900301"


def timer_rows(svc, ref=None):
    q = select(timers).order_by(timers.c.created_at, timers.c.kind)
    if ref:
        q = q.where(timers.c.call_ref == ref)
    with svc.uow() as uow:
        return uow.session.execute(q).all()


def running(svc, ref):
    return [(t.kind, t.referral_id is not None) for t in timer_rows(svc, ref) if t.fired_at is None]


def log(svc, actor, **overrides):
    return call_service.log_call(svc, actor, call_payload(**overrides), allow_duplicate=True)


def fire(svc, actor, ref, trigger, version, **extra):
    return call_service.fire_call_trigger(svc, actor, ref, {"trigger": trigger, "expected_version": version,
                                                            **extra})


def test_logging_starts_the_triage_clock_and_routing_stops_it(svc, handler_actor):
    call = log(svc, handler_actor)  # urgent: 15 minutes
    (t,) = timer_rows(svc, call.ref)
    assert (t.kind, t.due_at, t.set_at_version) == ("triage", svc.clock.now() + timedelta(minutes=15), 1)
    assert t.rule == "urgent: 15 min"
    fire(svc, handler_actor, call.ref, "start_triage", 1)
    assert running(svc, call.ref) == [("triage", False)]  # still the same clock
    fire(svc, handler_actor, call.ref, "refer", 2, data={"service": "CRT"})
    rows = timer_rows(svc, call.ref)
    triage = next(r for r in rows if r.kind == "triage")
    assert (triage.outcome, triage.fired_at) == ("stopped", svc.clock.now())
    assert running(svc, call.ref) == [("acceptance", True)]  # urgent: 30 minutes
    (acc,) = [r for r in rows if r.kind == "acceptance"]
    assert acc.due_at == svc.clock.now() + timedelta(minutes=30)


def test_acceptance_then_response_clock_on_the_services_calendar(svc, handler_actor):
    call = log(svc, handler_actor, need="community_nursing", urgency="routine")
    fire(svc, handler_actor, call.ref, "start_triage", 1)
    call = fire(svc, handler_actor, call.ref, "refer", 2, data={"service": "DN"})
    referral = call.referrals[0]
    prof = call_service.Actor(username="nurse", role="professional", centre=None)
    call_service.fire_referral_trigger(svc, prof, call.ref, referral.id, {"trigger": "accept",
                                                                          "expected_version": 1},
                                       as_service="DN")
    assert running(svc, call.ref) == [("response", True)]
    (resp,) = [r for r in timer_rows(svc, call.ref) if r.kind == "response"]
    assert resp.due_at == svc.clock.now() + timedelta(hours=48)  # DN routine: 48 h


def test_a_transfer_restarts_triage_on_the_new_centres_clock(svc, handler_actor):
    call = log(svc, handler_actor)
    svc.clock.advance(seconds=600)
    fire(svc, handler_actor, call.ref, "transfer", 1, data={"centre": "CHS"}, reason="Community nursing need")
    rows = timer_rows(svc, call.ref)
    assert [(r.kind, r.outcome) for r in rows] == [("triage", "stopped"), ("triage", None)]
    assert rows[1].due_at == svc.clock.now() + timedelta(minutes=15)


def test_a_due_timer_breaches_once_audits_and_escalates_by_text(svc, handler_actor):
    make_user(svc, "sup.cnh", "supervisor", "CNH")
    make_user(svc, "sup.other", "supervisor", "ASC")  # another centre's: not told
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.centre.is_not(None), users.c.role == "supervisor")
                            .values(mobile=SUPERVISOR_MOBILE))
        uow.session.execute(update(users).where(users.c.username == "sup.other").values(mobile="+447700900399"))
        uow.commit()
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = log(svc, handler_actor, need="community_nursing")
    fire(svc, handler_actor, call.ref, "start_triage", 1)
    call = fire(svc, handler_actor, call.ref, "refer", 2, data={"service": "DN"})
    (acc,) = [r for r in timer_rows(svc, call.ref) if r.fired_at is None]
    assert timer_service.fire(svc, acc.id) == "not due"
    svc.clock.advance(seconds=30 * 60)
    assert timer_service.fire(svc, acc.id) == "breached"
    assert timer_service.fire(svc, acc.id) == "done"  # a job handed over twice escalates once
    with svc.uow() as uow:
        s = uow.session
        assert s.execute(select(referrals.c.breach, referrals.c.breached_at)).one() == ("acceptance",
                                                                                        svc.clock.now())
        assert s.scalar(select(calls.c.version)) == 3  # a breach is not the handler's conflict
        audit = s.execute(select(audit_events).where(audit_events.c.trigger == "sla_breach")).one()
        assert (audit.actor, audit.entity, audit.from_state, audit.to_state) == ("system:sla", "referral",
                                                                                 "sent", "sent")
        assert "acceptance clock ran out (urgent: 30 min)" in audit.reason
        (event,) = s.execute(select(outbox.c.id).where(outbox.c.topic == "sla.breached")).scalars().all()
    assert outbox_service.process(svc, event)
    with svc.uow() as uow:
        texts = uow.session.execute(select(sms_messages.c.to, sms_messages.c.recipient_kind, sms_messages.c.body)
                                    .where(sms_messages.c.template == "escalation")).all()
    duty_lead = svc.directory.services["DN"].duty_lead
    assert sorted((t.to, t.recipient_kind) for t in texts) == sorted([(duty_lead, "duty_lead"),
                                                                      (SUPERVISOR_MOBILE, "supervisor")])
    body = texts[0].body
    assert call.ref in body and "not accepted" in body and "DN" in body
    for secret in ("Edith", "Testperson", "9990000026", "1938", "LE11", "07911"):
        assert secret not in body


def test_a_triage_breach_texts_the_centres_supervisor(svc, handler_actor):
    make_user(svc, "sup.cnh", "supervisor", "CNH")
    with svc.uow() as uow:
        uow.session.execute(update(users).values(mobile=SUPERVISOR_MOBILE))
        uow.commit()
    call = log(svc, handler_actor)
    (t,) = timer_rows(svc, call.ref)
    svc.clock.advance(seconds=15 * 60)
    assert timer_service.fire(svc, t.id) == "breached"
    with svc.uow() as uow:
        assert uow.session.execute(select(calls.c.breach)).scalar_one() == "triage"
        (event,) = uow.session.scalars(select(outbox.c.id).where(outbox.c.topic == "sla.breached")).all()
    outbox_service.process(svc, event)
    with svc.uow() as uow:
        (text,) = uow.session.execute(select(sms_messages)).all()
    assert (text.to, text.template) == (SUPERVISOR_MOBILE, "escalation_call")
    assert call.ref in text.body and "not triaged" in text.body and "CNH" in text.body


def test_a_stale_timer_is_ignored(svc, handler_actor):
    call = log(svc, handler_actor)
    (t,) = timer_rows(svc, call.ref)
    # As if the stop had been lost: the call moved on, the timer did not hear of it.
    with svc.uow() as uow:
        uow.session.execute(update(calls).values(state="resolved"))
        uow.commit()
    svc.clock.advance(seconds=3600)
    assert timer_service.fire(svc, t.id) == "stale"
    with svc.uow() as uow:
        assert uow.session.scalar(select(calls.c.breach)) is None
        assert uow.session.scalar(select(func.count()).select_from(outbox)
                                  .where(outbox.c.topic == "sla.breached")) == 0
    # A stopped clock's timer is done before it is due.
    call2 = log(svc, handler_actor)
    fire(svc, handler_actor, call2.ref, "divert_999", 1, reason="Chest pain")
    (t2,) = timer_rows(svc, call2.ref)
    assert timer_service.fire(svc, t2.id) == "done"


def test_a_new_callback_promise_replaces_the_old_ones_timer(svc, handler_actor):
    call = log(svc, handler_actor)
    at = svc.clock.now() + timedelta(hours=1)
    fire(svc, handler_actor, call.ref, "promise_callback", 1, data={"callback_at": at.isoformat()})
    (cb,) = [r for r in timer_rows(svc, call.ref) if r.kind == "callback"]
    assert cb.due_at == at + timedelta(minutes=15)  # escalates 15 minutes after the promised time
    assert running(svc, call.ref) == [("callback", False)]  # triage stopped while the caller waits
    fire(svc, handler_actor, call.ref, "call_back", 2)
    assert running(svc, call.ref) == [("triage", False)]
    svc.clock.advance(seconds=2 * 3600)
    assert timer_service.fire(svc, cb.id) == "done"


def test_the_scheduler_hands_each_due_timer_over_once_until_it_is_lost(svc, handler_actor):
    first, second = log(svc, handler_actor), log(svc, handler_actor, urgency="routine")
    handed: list[list[str]] = []
    assert timer_service.hand_over_due(svc, handed.append) == 0
    svc.clock.advance(seconds=15 * 60)
    assert timer_service.hand_over_due(svc, handed.append) == 1  # the urgent one only
    assert timer_service.hand_over_due(svc, handed.append) == 0  # its job is on its way
    svc.clock.advance(seconds=int(timer_service.REQUEUE_AFTER.total_seconds()))
    # Not fired in time (Redis flushed, worker killed): handed over again; firing is still once.
    assert timer_service.hand_over_due(svc, handed.append) == 1
    assert handed[0] == handed[1] == [timer_rows(svc, first.ref)[0].id]
    assert timer_service.fire_many(svc, handed[0]) == {handed[0][0]: "breached"}
    assert timer_service.fire_many(svc, handed[1]) == {handed[0][0]: "done"}
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(audit_events)
                                  .where(audit_events.c.trigger == "sla_breach")) == 1
    assert timer_service.next_due(svc) == timer_rows(svc, second.ref)[0].due_at


def _breaches(svc) -> tuple[int, int, int]:
    with svc.uow() as uow:
        s = uow.session
        return (s.scalar(select(func.count()).select_from(timers).where(timers.c.fired_at.is_not(None))),
                s.scalar(select(func.count()).select_from(audit_events).where(audit_events.c.trigger == "sla_breach")),
                s.scalar(select(func.count(func.distinct(outbox.c.payload["timer_id"].as_string())))
                         .where(outbox.c.topic == "sla.breached")))


@pytest.mark.timeout(120)
def test_killed_processes_and_a_flushed_redis_lose_and_double_nothing(svc, handler_actor):
    # Logged at the test clock's time (days ago in real time): every triage timer is already due for the
    # real processes below.
    n = 40
    for _ in range(n):
        log(svc, handler_actor)
    scheduler = processes.start("workers.scheduler", svc)
    worker = None
    try:
        # The scheduler hands the timers over; no worker yet: the jobs wait in Redis, which is flushed.
        processes.wait_until(lambda: svc.redis().llen(f"rq:queue:{TIMERS_QUEUE_NAME}") > 0, 30,
                             "the scheduler's first hand-over")
        processes.kill(scheduler)
        svc.redis().flushdb()
        scheduler = processes.start("workers.scheduler", svc)
        worker = processes.start("workers.worker", svc)
        processes.wait_until(lambda: _breaches(svc)[0] >= 1, 60, "the first breach")
        processes.kill(worker)  # mid-batch, perhaps mid-transaction
        processes.kill(scheduler)
        worker, scheduler = processes.start("workers.worker", svc), processes.start("workers.scheduler", svc)
        processes.wait_until(lambda: _breaches(svc)[0] == n, 90, "every timer fired")
        time.sleep(0.5)  # any duplicate job still running would show now
    finally:
        for p in (scheduler, worker):
            if p is not None:
                processes.kill(p)
    fired, audited, escalated = _breaches(svc)
    assert (fired, audited, escalated) == (n, n, n)
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(outbox)
                                  .where(outbox.c.topic == "sla.breached")) == n
        assert uow.session.scalar(select(func.count()).select_from(calls).where(calls.c.breach == "triage")) == n


@pytest.mark.timeout(120)
def test_a_text_never_waits_behind_a_timer_job_sleeping_until_its_instant(svc, handler_actor):
    """The Procfile's `worker` and `timers`: a timer job handed over ahead sleeps in the timers' worker
    until its instant, and a text queued meanwhile is sent by the texts' worker at once."""
    from datetime import UTC, datetime

    from rq import Queue
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    from ipoa.adapters.rq_queue import enqueue_sms, enqueue_timers_ahead
    from tests.helpers.sms import handle_events, referred_call

    add_on_duty(svc, name="Nia", service="DN", mobile="07700900111")
    referred_call(svc, handler_actor)
    handle_events(svc)
    with svc.uow() as uow:
        (text_id,) = uow.session.scalars(select(sms_messages.c.id))
    timers_worker = processes.start("workers.worker", svc, args=["--queues", TIMERS_QUEUE_NAME])
    texts_worker = processes.start("workers.worker", svc, args=["--queues", QUEUE_NAME])
    try:
        redis = svc.redis()
        processes.wait_until(lambda: len(redis.smembers("rq:workers")) == 2, 60, "both workers")
        due = datetime.now(UTC) + timedelta(seconds=20)  # a timer nobody has: the job only sleeps till then
        timers_queue = Queue(TIMERS_QUEUE_NAME, connection=redis)
        started = StartedJobRegistry(queue=timers_queue)
        enqueue_timers_ahead(timers_queue, [("no-such-timer", due)])
        processes.wait_until(lambda: started.count == 1, 30, "the timers' worker to take the timer job")
        (timer_job_id,) = started.get_job_ids()
        # A second waits for the timers' worker: the texts' worker, idle, must leave it
        enqueue_timers_ahead(timers_queue, [("no-such-timer-either", due)])
        time.sleep(1.0)
        assert (started.count, timers_queue.count) == (1, 1)
        enqueue_sms(Queue(QUEUE_NAME, connection=redis), [text_id])

        def sent() -> bool:
            with svc.uow() as uow:
                status = uow.session.scalar(select(sms_messages.c.status).where(sms_messages.c.id == text_id))
            return status not in ("pending", "submitting")

        processes.wait_until(sent, 15, "the text to be sent")
        assert datetime.now(UTC) < due  # the text did not wait for the timer's instant
        assert Job.fetch(timer_job_id, connection=redis).get_status() == "started"  # still asleep
        assert (started.count, timers_queue.count) == (1, 1)
    finally:
        processes.kill(timers_worker, texts_worker)
