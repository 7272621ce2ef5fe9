"""Escalations are limited per referral and per recipient (the hostile tester: "14 escalation texts reached
one duty lead in 11 seconds"; "200 breaches falling due together sent 200 separate texts to one
supervisor").

The rules under test (docs/security.md, "Escalations"):
* a supervisor may escalate one referral by hand at most every ESCALATION_REPEAT_MINUTES (10); a refused
  one says when it may be repeated (422 on the API, a flash on the page);
* escalation texts to one number: the first goes at once; any more within ESCALATION_DIGEST_SECONDS (60)
  of the last text are held in one digest ("N more since HH:MM", a link to the list) that goes when that
  window ends; the next window runs from the digest. A lone breach is never delayed;
* each breach is counted exactly once, across re-delivered events, relays restarted between batches and
  relays running at once."""
from __future__ import annotations

import random
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ipoa.adapters.orm import outbox as outbox_table
from ipoa.adapters.orm import sms_messages, users
from ipoa.adapters.orm import timers as timers_table
from ipoa.adapters.rq_queue import OUTBOX_LIST
from ipoa.domain.sms.escalation import EscalationSettings
from ipoa.service import calls as call_service
from ipoa.service import outbox, sms
from ipoa.service import timers as timer_service
from tests import processes
from tests.conftest import call_payload, make_token, make_user
from tests.helpers.web import actor_for, logged, signed_in, text

SUPERVISOR = "+447700900301"
DIGEST = "escalation_digest"


class SendQueue:
    """What the relay would queue as send jobs."""

    def __init__(self):
        self.ids: list[str] = []

    def __call__(self, sms_ids):
        self.ids += sms_ids


def supervisor_with_mobile(svc, username="sup.cnh", centre="CNH", mobile=SUPERVISOR):
    user = make_user(svc, username, "supervisor", centre)
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.username == username).values(mobile=mobile))
        uow.commit()
    return user


def breach_calls(svc, n: int) -> list[str]:
    """n urgent calls logged now, their triage clocks (15 minutes) run out together and fired, as the
    scheduler and the worker would: n `sla.breached` events, committed and handed to the relay's list."""
    refs = [logged(svc) for _ in range(n)]
    svc.clock.advance(minutes=15)
    handed: list[list[str]] = []
    assert timer_service.hand_over_due(svc, handed.append) == n
    for batch in handed:
        timer_service.fire_many(svc, batch)
    return refs


def relay_until_idle(svc, send_queue, batch=200) -> int:
    """The relay's cycles: batches of up to 200 committed events, until the list is empty."""
    handled = 0
    while True:
        n = outbox.relay_once(svc, send_queue, block_seconds=0, batch=batch)
        if not n and not svc.redis().llen(OUTBOX_LIST):
            return handled
        handled += n


def texts_to(svc, number):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages).where(sms_messages.c.to == number)
                                   .order_by(sms_messages.c.created_at, sms_messages.c.template)).all()


def deliver(svc, ids):
    """Send jobs, run in-process on the console gateway."""
    return {sid: sms.send(svc, sid) for sid in ids}


@pytest.fixture
def digest_60s(svc, monkeypatch):
    monkeypatch.setattr(svc, "escalation_settings", EscalationSettings(), raising=False)  # the defaults
    return svc


# -- storms become a digest ---------------------------------------------------------------------------

def test_200_breaches_for_one_supervisor_are_one_text_at_once_and_one_digest(digest_60s):
    svc = digest_60s
    supervisor_with_mobile(svc)
    refs = breach_calls(svc, 200)
    first_at = svc.clock.now()
    queued = SendQueue()
    relay_until_idle(svc, queued)

    rows = texts_to(svc, SUPERVISOR)
    assert [r.template for r in rows] == ["escalation_call", DIGEST]
    at_once, digest = rows
    assert queued.ids == [at_once.id]  # the first breach goes at once: not delayed at all
    assert at_once.call_ref in refs and "not triaged" in at_once.body
    # The other 199 are one digest, held (pending, not queued) until the window ends.
    assert digest.status == "pending" and digest.next_attempt_at == first_at + timedelta(seconds=60)
    assert digest.body.startswith(f"ESCALATIONS: 199 more since {first_at:%H:%M}, grouped in one text.")
    assert "/r/" in digest.body and len(digest.body) <= 160
    for ref in refs:
        assert ref not in digest.body  # the list holds them; the text carries no reference

    deliver(svc, queued.ids)
    assert outbox.sweep_texts(svc, _queue(svc)) == 0  # the window has not ended: held
    svc.clock.advance(seconds=60)
    handed = sms.due_for_handover(svc)
    assert [sid for sid, _ in handed] == [digest.id]  # at its end, the relay hands the digest over
    assert sms.send(svc, digest.id, handed[0][1]) == "sent"
    assert [r.status for r in texts_to(svc, SUPERVISOR)] == ["sent", "sent"]
    assert sms.due_for_handover(svc) == []  # and nothing else, ever: 200 breaches, 2 texts


def _queue(svc):
    from rq import Queue

    from ipoa.adapters.rq_queue import QUEUE_NAME

    return Queue(QUEUE_NAME, connection=svc.redis())


def test_a_lone_breach_goes_at_once_and_the_rule_holds_over_time(digest_60s):
    svc = digest_60s
    supervisor_with_mobile(svc)
    start = svc.clock.now()
    t0 = start + timedelta(minutes=15)
    schedule = [0, 30, 45, 61, 181]  # seconds after t0 at which a triage clock runs out
    for s in schedule:  # each call logged 15 minutes (its urgent triage clock) before its breach
        svc.clock.set(start + timedelta(seconds=s))
        logged(svc)

    def breach_at(s):
        svc.clock.set(t0 + timedelta(seconds=s))
        handed = []
        assert timer_service.hand_over_due(svc, handed.append) == 1
        timer_service.fire_many(svc, handed[0])
        queued = SendQueue()
        relay_until_idle(svc, queued)
        deliver(svc, queued.ids)
        return queued.ids

    def digest_goes_at(s):
        svc.clock.set(t0 + timedelta(seconds=s - 1))
        assert sms.due_for_handover(svc) == []  # held until its window ends ...
        svc.clock.set(t0 + timedelta(seconds=s))
        ((sid, ticket),) = sms.due_for_handover(svc)  # ... then handed over at once
        assert sms.send(svc, sid, ticket) == "sent"

    assert len(breach_at(0)) == 1  # alone: at once, not delayed at all
    assert breach_at(30) == []  # 30 s later: held for the digest due at 60 s
    assert breach_at(45) == []  # joins it
    (digest,) = [r for r in texts_to(svc, SUPERVISOR) if r.template == DIGEST]
    assert digest.next_attempt_at == t0 + timedelta(seconds=60) and "2 more since" in digest.body
    digest_goes_at(60)
    assert breach_at(61) == []  # within a window of the digest (it went at 60 s): the next one, due at 120 s
    (second,) = [r for r in texts_to(svc, SUPERVISOR) if r.template == DIGEST and r.status == "pending"]
    assert second.next_attempt_at == t0 + timedelta(seconds=120) and "1 more since" in second.body
    digest_goes_at(120)
    assert len(breach_at(181)) == 1  # quiet for a whole window since: at once again
    assert [r.template for r in texts_to(svc, SUPERVISOR)] == [
        "escalation_call", DIGEST, DIGEST, "escalation_call"]


def test_a_digest_already_being_sent_is_not_changed_the_next_breach_starts_another(digest_60s):
    svc = digest_60s
    supervisor_with_mobile(svc)
    for _ in range(3):
        logged(svc)  # 10:00: due 10:15
    svc.clock.advance(seconds=90)
    logged(svc)  # 10:01:30: due 10:16:30
    svc.clock.set(svc.clock.now() + timedelta(minutes=13, seconds=30))  # 10:15
    handed = []
    timer_service.hand_over_due(svc, handed.append)
    timer_service.fire_many(svc, handed[0])
    queued = SendQueue()
    relay_until_idle(svc, queued)
    deliver(svc, queued.ids)
    (digest,) = [r for r in texts_to(svc, SUPERVISOR) if r.template == DIGEST]
    assert digest.body.startswith("ESCALATIONS: 2 more since 10:15,")
    svc.clock.advance(seconds=60)  # 10:16: the digest is handed over and a worker claims it
    ((sid, ticket),) = sms.due_for_handover(svc)
    with svc.uow() as uow:  # (the send's first statement, by hand)
        uow.session.execute(update(sms_messages).where(sms_messages.c.id == sid).values(status="submitting"))
        uow.commit()
    svc.clock.advance(seconds=30)  # 10:16:30: the fourth breach, within the next window
    handed = []
    timer_service.hand_over_due(svc, handed.append)
    timer_service.fire_many(svc, handed[0])
    relay_until_idle(svc, SendQueue())
    rows = [r for r in texts_to(svc, SUPERVISOR) if r.template == DIGEST]
    assert [r.body.split(",")[0] for r in rows] == ["ESCALATIONS: 2 more since 10:15",  # as claimed
                                                    "ESCALATIONS: 1 more since 10:16"]
    assert rows[1].next_attempt_at == digest.next_attempt_at + timedelta(seconds=60)


def test_each_breach_is_counted_once_across_relay_restarts_and_redelivery(digest_60s):
    svc = digest_60s
    supervisor_with_mobile(svc)
    breach_calls(svc, 120)
    with svc.uow() as uow:
        ids = list(uow.session.scalars(select(outbox_table.c.id).order_by(outbox_table.c.created_at)))
    svc.redis().delete(OUTBOX_LIST)
    queued = SendQueue()
    # A relay handling 17 at a time, "restarted" between batches, every batch delivered twice, and the
    # whole list once more at the end (a sweep after a crash).
    for i in range(0, len(ids), 17):
        outbox.handle(svc, ids[i:i + 17], queued)
        outbox.handle(svc, ids[i:i + 17], queued)
    assert outbox.handle(svc, ids, queued) == 0
    rows = texts_to(svc, SUPERVISOR)
    assert [r.template for r in rows] == ["escalation_call", DIGEST]
    assert "119 more" in rows[1].body and queued.ids == [rows[0].id]


def test_concurrent_relays_count_each_breach_once(digest_60s):
    svc = digest_60s
    supervisor_with_mobile(svc)
    # Another number, so that batches lock two windows in either order.
    supervisor_with_mobile(svc, "sup.cnh2", mobile="+447700900302")
    breach_calls(svc, 80)
    with svc.uow() as uow:
        ids = list(uow.session.scalars(select(outbox_table.c.id).where(outbox_table.c.topic == "sla.breached")))
    svc.redis().delete(OUTBOX_LIST)
    queued, errors = SendQueue(), []

    def relay(seed):
        mine = ids[:]
        random.Random(seed).shuffle(mine)
        try:
            for i in range(0, len(mine), 10):
                outbox.handle(svc, mine[i:i + 10], queued)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=relay, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(outbox_table)
                                  .where(outbox_table.c.processed_at.is_(None),
                                         outbox_table.c.topic == "sla.breached")) == 0
    for number in (SUPERVISOR, "+447700900302"):
        rows = texts_to(svc, number)
        assert [r.template for r in rows] == ["escalation_call", DIGEST], number
        assert "79 more" in rows[1].body
    assert len(queued.ids) == 2


def test_a_storm_of_manual_escalations_to_one_duty_lead_is_digested_too(digest_60s):
    svc = digest_60s
    sup = call_service.Actor(username="supervisor", role="supervisor", centre="CNH")
    refs = []
    for _ in range(14):
        ref = logged(svc)
        call = call_service.get_call(svc, ref)[0]
        call_service.fire_call_trigger(svc, actor_for(), ref, {"trigger": "start_triage",
                                                               "expected_version": call.version})
        call = call_service.fire_call_trigger(svc, actor_for(), ref, {
            "trigger": "refer", "expected_version": call.version + 1, "data": {"service": "CRT"},
            "reason": "Known to this service"})
        refs.append((ref, call.referrals[0].id))
    relay_until_idle(svc, SendQueue())  # the referral texts (to CRT's duty lead: nobody on duty)
    duty_lead = svc.directory.services["CRT"].duty_lead
    before = len(texts_to(svc, duty_lead))
    for ref, rid in refs:  # 14 escalations in a few seconds, each of another referral
        call_service.escalate_referral(svc, sup, ref, rid, "Chasing")
        svc.clock.advance(seconds=0.7)
    queued = SendQueue()
    relay_until_idle(svc, queued)
    new = texts_to(svc, duty_lead)[before:]
    assert [r.template for r in new] == ["escalation", DIGEST]
    assert "13 more" in new[1].body and len(queued.ids) == 1


# -- manual escalations: one per referral per 10 minutes ---------------------------------------------

@pytest.fixture
def crt_referral(svc):
    ref = logged(svc)
    call = call_service.get_call(svc, ref)[0]
    call_service.fire_call_trigger(svc, actor_for(), ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, actor_for(), ref, {
        "trigger": "refer", "expected_version": 2, "data": {"service": "CRT"}, "reason": "Known to this service"})
    assert call.version >= 2
    return ref, call.referrals[0].id


def _escalations(svc):
    with svc.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(outbox_table)
                                  .where(outbox_table.c.topic == "referral.escalated"))


def test_the_api_refuses_a_second_escalation_within_10_minutes_and_says_when(client, svc, users, crt_referral,
                                                                              digest_60s):
    ref, rid = crt_referral
    url = f"/api/v1/calls/{ref}/referrals/{rid}/escalate"
    sup = {"Authorization": f"Bearer {make_token(svc, users['supervisor'])}"}
    assert client.post(url, json={"reason": "Chasing a visit"}, headers=sup).status_code == 200
    svc.clock.advance(minutes=3)
    again = client.post(url, json={"reason": "Still nothing"}, headers=sup)
    assert again.status_code == 429
    assert again.headers["Retry-After"] == str(7 * 60)
    assert again.get_json()["error"]["code"] == "too_soon"
    message = again.get_json()["error"]["fields"]["escalation"]
    assert "escalated at 10:00" in message and "again from 10:10 (in 7 minutes)" in message
    assert _escalations(svc) == 1  # no event, no text
    svc.clock.advance(minutes=7)
    assert client.post(url, json={"reason": "Still nothing"}, headers=sup).status_code == 200
    assert _escalations(svc) == 2


def test_the_page_flashes_when_the_escalation_may_be_repeated(client, svc, users, crt_referral, digest_60s):
    ref, rid = crt_referral
    token = signed_in(client, "supervisor")
    action = f"/supervisor/calls/{ref}/referrals/{rid}/escalate"
    form = {"csrf_token": token, "list_service": "CRT", "list_measure": "sent"}
    assert client.post(action, data={**form, "reason": "Chasing"}).status_code == 302
    svc.clock.advance(seconds=11)
    refused = client.post(action, data={**form, "reason": "Chasing again"})
    page = text(client.get(refused.headers["Location"]))
    assert "not escalated" in page and "It may be escalated again from 10:10 (in 10 minutes)" in page
    assert _escalations(svc) == 1


def test_the_repeat_interval_is_configurable(svc, crt_referral, monkeypatch):
    monkeypatch.setattr(svc, "escalation_settings",
                        EscalationSettings.from_environment({"ESCALATION_REPEAT_MINUTES": "2"}), raising=False)
    ref, rid = crt_referral
    sup = call_service.Actor(username="supervisor", role="supervisor", centre="CNH")
    call_service.escalate_referral(svc, sup, ref, rid, "Chasing")
    svc.clock.advance(seconds=119)
    with pytest.raises(call_service.EscalationTooSoon) as refused:
        call_service.escalate_referral(svc, sup, ref, rid, "Chasing")
    assert refused.value.retry_after_seconds == 1
    svc.clock.advance(seconds=1)
    call_service.escalate_referral(svc, sup, ref, rid, "Chasing")
    assert _escalations(svc) == 2
    with pytest.raises(ValueError, match="ESCALATION_DIGEST_SECONDS"):
        EscalationSettings.from_environment({"ESCALATION_DIGEST_SECONDS": "soon"})


def test_supervisors_pressing_at_once_escalate_once(svc, crt_referral, digest_60s):
    ref, rid = crt_referral
    outcomes, start = [], threading.Barrier(6)

    def press(i):
        sup = call_service.Actor(username=f"sup{i}", role="supervisor", centre="CNH")
        start.wait()
        try:
            call_service.escalate_referral(svc, sup, ref, rid, "Chasing")
            outcomes.append("escalated")
        except call_service.EscalationTooSoon:
            outcomes.append("refused")

    threads = [threading.Thread(target=press, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["escalated"] + ["refused"] * 5
    assert _escalations(svc) == 1


def test_an_automatic_breach_is_texted_once_even_if_fired_and_relayed_twice(svc, digest_60s):
    supervisor_with_mobile(svc)
    (ref,) = breach_calls(svc, 1)
    with svc.uow() as uow:
        (timer_id,) = uow.session.scalars(select(timers_table.c.id)).all()
    assert timer_service.fire(svc, timer_id) == "done"  # handed over twice: fired once
    queued = SendQueue()
    relay_until_idle(svc, queued)
    with svc.uow() as uow:
        (event,) = uow.session.scalars(select(outbox_table.c.id).where(outbox_table.c.topic == "sla.breached"))
    outbox.handle(svc, [event, event], queued)
    assert [r.template for r in texts_to(svc, SUPERVISOR)] == ["escalation_call"] and len(queued.ids) == 1


# -- the digest's link ----------------------------------------------------------------------------------

def test_the_digest_link_leads_a_supervisor_to_the_list_of_breaches(app, svc, users, digest_60s):
    supervisor_with_mobile(svc)
    refs = breach_calls(svc, 5)
    relay_until_idle(svc, SendQueue())
    (digest,) = [r for r in texts_to(svc, SUPERVISOR) if r.template == DIGEST]
    path = "/r/" + digest.body.rsplit("/r/", 1)[1]
    client = app.test_client()
    signed_in(client, "supervisor")
    resp = client.get(path)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(
        "/supervisor/calls?centre=CNH&measure=breached")
    listed = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert set(refs) <= set(re.findall(r'href="/calls/([0-9A-Z]{4}-[0-9A-Z]{4})"', listed))
    handler = app.test_client()
    signed_in(handler, "handler")
    assert handler.get(path).status_code == 403


# -- the real processes ---------------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_the_real_scheduler_worker_and_relay_turn_a_storm_into_two_texts(svc, handler_actor):
    """200 triage clocks already due (logged at the test clock's time, days ago in real time): the real
    scheduler hands them over in jobs of 50, the worker fires them, the relay records the escalations as
    they commit (several batches). A 10-second digest window keeps the test short."""
    supervisor_with_mobile(svc)
    n = 200
    for _ in range(n):
        call_service.log_call(svc, handler_actor, call_payload(), allow_duplicate=True)
    env = {"ESCALATION_DIGEST_SECONDS": "10"}
    procs = [processes.start(m, svc, **env) for m in ("workers.relay", "workers.worker", "workers.scheduler")]
    try:
        def breached():
            with svc.uow() as uow:
                return uow.session.scalar(select(func.count()).select_from(outbox_table).where(
                    outbox_table.c.topic == "sla.breached", outbox_table.c.processed_at.is_not(None)))
        processes.wait_until(lambda: breached() == n, 90, "every breach relayed")
        processes.wait_until(lambda: {r.status for r in texts_to(svc, SUPERVISOR)} == {"sent"}
                             and len(texts_to(svc, SUPERVISOR)) >= 2, 30, "the texts sent")
        time.sleep(11)  # a further digest, if the rule were broken, would show now
    finally:
        processes.kill(*procs)
    rows = texts_to(svc, SUPERVISOR)
    assert [r.template for r in rows] == ["escalation_call", DIGEST], [r.body for r in rows]
    assert f"{n - 1} more" in rows[1].body
    assert (rows[1].sent_at - rows[0].sent_at).total_seconds() == pytest.approx(10, abs=3)
