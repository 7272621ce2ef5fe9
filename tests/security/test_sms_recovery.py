"""Texts recover in seconds (the hostile tester: after a worker was SIGKILLed and restarted, RQ's scheduler
lock held by the dead worker stopped scheduled retries for up to 10 minutes; a text answered 429 went
out after 127 s, and texts queued at the moment of the crash after 126-135 s, when the relay's 120 s
sweep found them).

Now no retry depends on RQ's scheduler or on any lock a dead process may hold: each text's
next_attempt_at says when the relay (looking every second) hands it over again as a plain job: a back-off
after a 429 or a time-out, a worker that died mid-send (no outcome within SEND_LEASE_SECONDS: the next job
asks Twilio before sending again), a job lost with its worker (not claimed within HANDOVER_LEASE_SECONDS).
Measured end to end on the real processes below; the figures are in docs/security.md."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from ipoa.adapters.orm import sms_messages
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.adapters.sms_gateway import Submitted, TransientSmsError
from ipoa.domain.sms.delivery import (
    HANDOVER_LEASE_SECONDS,
    MAX_SEND_ATTEMPTS,
    RETRY_BACKOFF_SECONDS,
    SEND_LEASE_SECONDS,
    handover_lease,
    retry_delay,
)
from ipoa.service import outbox, sms
from tests import processes
from tests.helpers.rota import add_on_duty
from tests.helpers.sms import ScriptedGateway, handle_events, referred_call
from tests.twilio_emulator import TwilioEmulator

SID, TOKEN, FROM = "AC" + "7" * 32, "recovery-auth-token", "+447700900999"
NIA, NED = "+447700900201", "+447700900202"


def rows(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages).order_by(sms_messages.c.created_at, sms_messages.c.to)).all()


@pytest.fixture
def one_text(svc, handler_actor):
    referred_call(svc, handler_actor, service="CRT")  # nobody on duty: one text, to the duty lead
    handle_events(svc)
    (row,) = rows(svc)
    return row.id


def queue(svc):
    return Queue(QUEUE_NAME, connection=svc.redis())


# -- the rules, in-process (test clock) ---------------------------------------------------------------

def test_the_back_off_and_the_give_up():
    assert [retry_delay(n) for n in range(1, 8)] == [*RETRY_BACKOFF_SECONDS, 60]
    assert retry_delay(MAX_SEND_ATTEMPTS - 1) == 60 and retry_delay(MAX_SEND_ATTEMPTS) is None
    assert handover_lease(timedelta(seconds=3)) == timedelta(seconds=HANDOVER_LEASE_SECONDS)
    assert handover_lease(timedelta(seconds=50)) == timedelta(seconds=50)  # the gaps double
    assert handover_lease(timedelta(hours=2)) == timedelta(seconds=300)


def test_a_429_waits_out_its_back_off_then_the_relay_hands_it_over_and_it_goes_once(svc, monkeypatch, one_text):
    gw = ScriptedGateway([TransientSmsError("429 20429", code=20429, maybe_sent=False), Submitted("SM1", "queued")])
    monkeypatch.setattr(svc, "sms_gateway", gw)
    assert sms.send(svc, one_text) == "retrying"
    (row,) = rows(svc)
    # Refused by Twilio, so certainly not sent: pending again (no need to ask before the next attempt).
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == svc.clock.now() + timedelta(seconds=2)
    assert "retrying (attempt 1)" in row.error_message
    assert sms.send(svc, one_text) == "pending"  # an old job arriving meanwhile: nothing
    assert outbox.sweep_texts(svc, queue(svc)) == 0
    svc.clock.advance(seconds=2)
    assert outbox.sweep_texts(svc, queue(svc)) == 1  # at its time, a plain job
    (job,) = queue(svc).jobs
    assert job.func_name == "workers.jobs.send_sms" and job.args[0] == one_text
    assert ScheduledJobRegistry(queue=queue(svc)).count == 0
    assert sms.send(svc, *job.args) == "queued"
    (row,) = rows(svc)
    assert (row.status, row.provider_sid, row.next_attempt_at, row.error_message) == ("queued", "SM1", None, None)
    assert len(gw.sent) == 2 and outbox.sweep_texts(svc, queue(svc)) == 0


def test_no_job_touches_a_text_another_worker_is_sending(svc, monkeypatch, one_text):
    gw = ScriptedGateway([])
    monkeypatch.setattr(svc, "sms_gateway", gw)
    claimed_at = svc.clock.now()
    with svc.uow() as uow:  # a worker's claim, then the worker is killed: submitting, with its lease
        uow.session.execute(update(sms_messages).where(sms_messages.c.id == one_text).values(
            status="submitting", attempts=1, submitted_at=claimed_at,
            next_attempt_at=claimed_at + timedelta(seconds=SEND_LEASE_SECONDS)))
        uow.commit()
    svc.clock.advance(seconds=SEND_LEASE_SECONDS - 1)
    assert sms.send(svc, one_text) == "submitting" and gw.sent == []  # perhaps still sending: hands off
    assert outbox.sweep_texts(svc, queue(svc)) == 0
    svc.clock.advance(seconds=1)
    ((sid, ticket),) = sms.due_for_handover(svc)  # the lease is over: its worker is gone
    gw.already = Submitted("SM-already", "queued")  # Twilio had it
    assert sms.send(svc, sid, ticket) == "queued" and gw.sent == []  # asked first, not sent again
    assert rows(svc)[0].provider_sid == "SM-already"


def test_a_dead_workers_text_not_at_twilio_is_sent_once(svc, monkeypatch, one_text):
    gw = ScriptedGateway([Submitted("SM2", "queued")])
    monkeypatch.setattr(svc, "sms_gateway", gw)
    with svc.uow() as uow:
        uow.session.execute(update(sms_messages).where(sms_messages.c.id == one_text).values(
            status="submitting", attempts=1, submitted_at=svc.clock.now(),
            next_attempt_at=svc.clock.now() + timedelta(seconds=SEND_LEASE_SECONDS)))
        uow.commit()
    svc.clock.advance(seconds=SEND_LEASE_SECONDS)
    ((sid, ticket),) = sms.due_for_handover(svc)
    assert sms.send(svc, sid, ticket) == "queued" and sms.send(svc, sid, ticket) == "queued"
    assert len(gw.sent) == 1


def test_a_lost_job_is_handed_over_again_and_less_often_the_longer_it_waits(svc, one_text):
    (row,) = rows(svc)
    assert row.next_attempt_at == row.created_at + timedelta(seconds=HANDOVER_LEASE_SECONDS)
    svc.clock.advance(seconds=HANDOVER_LEASE_SECONDS - 1)
    assert sms.due_for_handover(svc) == []
    gaps, last = [], svc.clock.now()
    for _ in range(5):  # nobody runs the jobs (the worker is down)
        while not sms.due_for_handover(svc):
            svc.clock.advance(seconds=1)
        gaps.append(round((svc.clock.now() - last).total_seconds()))
        last = svc.clock.now()
    assert gaps == [1, 20, 40, 80, 160]
    # A late first job still sends it (it has never been tried): the queue was merely long.
    assert sms.send(svc, one_text) == "sent"


def test_texts_handed_over_again_by_two_relays_at_once_get_one_job(svc, one_text):
    svc.clock.advance(seconds=HANDOVER_LEASE_SECONDS)
    first, second = sms.due_for_handover(svc), sms.due_for_handover(svc)
    assert len(first) == 1 and second == []


def test_a_hand_over_that_cannot_reach_redis_is_tried_again_at_once(svc, one_text):
    svc.clock.advance(seconds=HANDOVER_LEASE_SECONDS)

    def redis_down(claimed):
        raise ConnectionError("Redis is down")

    with pytest.raises(ConnectionError):
        sms.due_for_handover(svc, redis_down)
    assert [sid for sid, _ in sms.due_for_handover(svc)] == [one_text]  # still due: not a lease later


def test_a_text_is_given_up_after_the_last_attempt_and_listed(svc, monkeypatch, one_text):
    gw = ScriptedGateway([TransientSmsError("503 20503", code=20503)] * MAX_SEND_ATTEMPTS)
    monkeypatch.setattr(svc, "sms_gateway", gw)
    outcomes, ticket = [], None
    for _ in range(MAX_SEND_ATTEMPTS):
        outcomes.append(sms.send(svc, one_text, ticket))
        svc.clock.advance(seconds=60)
        handed = sms.due_for_handover(svc)  # as the relay does, each time its back-off is over
        ticket = handed[0][1] if handed else None
    assert outcomes == ["retrying"] * (MAX_SEND_ATTEMPTS - 1) + ["failed"]
    assert len(gw.sent) == MAX_SEND_ATTEMPTS  # a 503 may have been taken: asked each time, then sent
    (row,) = rows(svc)
    assert row.status == "failed" and row.next_attempt_at is None and row.attempts == MAX_SEND_ATTEMPTS
    assert row.error_message.startswith(
        f"gave up after {MAX_SEND_ATTEMPTS} attempts (the last may have reached Twilio)")


# -- the real processes: SIGKILL mid-batch with a 429 pending ------------------------------------------

def _by_to_and_body(messages):
    out: dict[tuple[str, str], list] = {}
    for m in messages:
        out.setdefault((m.to, m.body), []).append(m)
    return out


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_batch_recovers_within_30_seconds_and_sends_each_text_once(svc, handler_actor, capsys):
    """30 referrals to DN with Nia and Ned on duty: 60 texts, handed over as three batch jobs of 20. The
    first send to Nia is answered 429; the first to Ned is taken by Twilio but never answered (the worker
    hangs in the request) and the worker is SIGKILLed there: that batch's other 18 texts die with it, 40
    wait in RQ. The worker comes back 3 seconds later. Every text must reach Twilio exactly once; the 429'd
    one within 30 s of its back-off ending (and of the worker being back), everything else within 30 s of
    the restart."""
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Ned", service="DN", mobile=NED)
    with TwilioEmulator(account_sid=SID, auth_token=TOKEN) as emu:  # real time, as the processes'
        emu.script(NIA, [("error", 429, 20429, "Too Many Requests")])
        emu.script(NED, [("delay", 60)])  # stored at once, answered never (the worker is killed first)
        env = {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_FROM": FROM, "TWILIO_API_BASE_URL": emu.base_url,
               # 60 texts within 30 s: a sender faster than the default long code's 1 a second
               "SMS_RATE_PER_SECOND": "100"}
        refs = [referred_call(svc, handler_actor).ref for _ in range(30)]
        worker = processes.start("workers.worker", svc, **env)
        relay = processes.start("workers.relay", svc, **env)
        try:
            processes.wait_until(lambda: len(emu.messages) >= 1 and any(a.outcome == "429" for a in emu.attempts),
                                 60, "the 429 and the hanging send")
            time.sleep(0.3)
            processes.kill(worker)
            killed = time.monotonic()
            with_twilio_at_kill = len(emu.messages)
            stranded = [r for r in rows(svc) if r.status in ("pending", "submitting")]
            time.sleep(3)
            restarted = time.monotonic()
            worker = processes.start("workers.worker", svc, **env)
            recorded: dict[str, float] = {}

            def all_done():
                now = time.monotonic()
                for r in rows(svc):
                    if r.status not in ("pending", "submitting"):
                        recorded.setdefault(r.id, now)
                return len(recorded) == 60

            processes.wait_until(all_done, 90, "every text with Twilio")
            time.sleep(2)  # a duplicate, if any, would arrive now
        finally:
            processes.kill(worker, relay)
        messages, attempts = emu.messages, emu.attempts

    texts = rows(svc)
    assert len(texts) == 60 and {t.status for t in texts} == {"queued"}
    sent = _by_to_and_body(messages)
    assert sorted(sent) == sorted((t.to, t.body) for t in texts)
    assert all(len(v) == 1 for v in sent.values()), "a text reached Twilio twice"
    assert {t.provider_sid for t in texts} == {m.sid for m in messages}
    assert ScheduledJobRegistry(queue=queue(svc)).count == 0

    ned_first = next(m for m in messages if m.to == NED)  # the hanging one: at Twilio before the kill
    hung = next(t for t in texts if (t.to, t.body) == (ned_first.to, ned_first.body))
    refused = next(a for a in attempts if a.outcome == "429")
    first_nia = next(t for t in texts if t.to == NIA and t.attempts == 2)  # the 429'd one
    nia_sent = sent[(first_nia.to, first_nia.body)][0].received_at
    back_off_over = refused.at + RETRY_BACKOFF_SECONDS[0]
    late = {
        "429'd text after its back-off ended": nia_sent - back_off_over,
        "429'd text after the restart": nia_sent - restarted,
        "hung text recovered (found at Twilio, not resent) after the restart": recorded[hung.id] - restarted,
        "last text stranded by the crash after the restart": max(
            sent[(t.to, t.body)][0].received_at for t in stranded if t.id != hung.id) - restarted,
    }
    with capsys.disabled():
        print(f"\nSIGKILL recovery: {len(stranded)} texts unsent at the kill ({with_twilio_at_kill} at Twilio), "
              f"worker back {restarted - killed:.1f}s after the kill")
        for what, seconds in late.items():
            print(f"  {what}: {seconds:.1f}s")
    assert hung.attempts == 1 and hung.provider_sid == ned_first.sid  # asked, found, not sent again
    # Its back-off ended while the worker was down: it goes within 30 s of whichever came last.
    assert nia_sent - max(back_off_over, restarted) <= 30
    assert late["hung text recovered (found at Twilio, not resent) after the restart"] <= 30
    assert late["last text stranded by the crash after the restart"] <= 30
    assert refs
