"""The senders' token buckets on the real Redis (adapters/rate_limit.py), shared by several workers, and
the send path's use of them (service/sms.send): a sender's rate is never exceeded, and a text whose
sender is booked is put back, not lost nor sent twice."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ipoa.adapters.orm import sms_messages
from ipoa.adapters.rate_limit import KEY_PREFIX, SenderBuckets
from ipoa.adapters.sms_gateway import Submitted
from ipoa.domain.sms.rate import SenderRate, SenderRates, reserve
from ipoa.service import sms
from tests.helpers.rota import add_on_duty
from tests.helpers.sms import handle_events, referred_call

SENDER = "+447700900999"


def in_threads(worker, shares: list) -> None:
    """worker(share) in a thread of its own for each share, all at once; back when all are done."""
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def assert_within_rate(gateway, rate: SenderRate) -> None:
    """The bucket's promise over the texts' send times: at most burst + rate x T in any T seconds, with 50 ms
    for the threads' own scheduling between a turn and the send."""
    went = sorted(t for t, _ in gateway.sent)
    for i in range(len(went)):
        for j in range(i + 1, len(went)):
            assert j - i + 1 <= rate.burst + rate.per_second * (went[j] - went[i] + 0.05), (i, j, went)


def slow_gateway(monkeypatch, seconds: float, only_send: int | None = None) -> Recording:
    """A recording gateway on a fake job clock (service/sms._elapsed): each send, or only the send numbered
    only_send (from 0), moves the clock on by `seconds`."""
    elapsed = [0.0]
    monkeypatch.setattr(sms, "_elapsed", lambda: elapsed[0])

    class Slow(Recording):
        def send(self, to, body, status_callback=None):
            if only_send is None or len(self.sent) == only_send:
                elapsed[0] += seconds
            return super().send(to, body, status_callback)

    return Slow()


def buckets(svc, rate: SenderRate, max_wait: float = 60.0) -> SenderBuckets:
    # a connection of its own, as another worker process has
    return SenderBuckets(redis.Redis.from_url(svc.redis_url) if svc.redis_url.startswith("redis://")
                         else svc.redis(), SenderRates(rate, {}, max_wait))


def test_the_script_keeps_the_same_arithmetic_as_the_domain(svc, clock):
    rate = SenderRate(2, 3)
    shared = buckets(svc, rate, max_wait=1.0)
    tat = None
    for now in [1000.0, 1000.0, 1000.0, 1000.0, 1000.2, 1000.2, 1000.2, 1001.0, 1009.0]:
        expected = reserve(tat, now, rate, 1.0)
        got = shared.reserve(SENDER, now=now)
        assert got.granted == expected.granted
        assert abs(got.wait - expected.wait) < 1e-3
        if expected.granted:
            assert got.tat is not None and expected.tat is not None and abs(got.tat - expected.tat) < 1e-3
            tat = expected.tat
    # one key per sender: another number has its own bucket
    assert shared.reserve("+447700900111", now=1000.2).wait == 0


def test_the_script_takes_turns_together_with_the_same_arithmetic_as_the_domain(svc):
    rate = SenderRate(40, 5)
    shared = buckets(svc, rate, max_wait=1.0)
    tat = None
    for now, count in [(1000.0, 20), (1000.0, 20), (1000.01, 3), (1000.3, 2), (1000.3, 20), (1001.0, 20),
                       (1009.0, 1)]:
        expected = reserve(tat, now, rate, 1.0, count, 0.05)
        got = shared.reserve(SENDER, now=now, count=count, within=0.05)
        assert (got.granted, got.count) == (expected.granted, expected.count)
        assert abs(got.wait - expected.wait) < 1e-3
        assert got.tat is not None and expected.tat is not None and abs(got.tat - expected.tat) < 1e-3
        tat = expected.tat
    assert reserve(None, 1000.0, rate, 1.0, 20, 0.05).count == 4  # the case above did take turns ahead


def test_workers_asking_at_once_each_get_their_own_turn(svc):
    rate = SenderRate(5, 2)
    got: list[float] = []
    lock = threading.Lock()

    def worker():
        mine = buckets(svc, rate)
        for _ in range(6):
            turn = mine.reserve(SENDER, now=5000.0)  # all at the same instant: only the order differs
            assert turn.granted
            with lock:
                got.append(turn.wait)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # 18 turns, none shared: the first two at once (the burst), then one every 0.2 s
    assert sorted(round(w, 3) for w in got) == [0.0, 0.0] + [round(0.2 * k, 3) for k in range(1, 17)]


class Recording:
    """A gateway with a sender that records when each send reached it."""

    sender = SENDER

    def __init__(self):
        self.sent: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def send(self, to, body, status_callback=None):
        with self._lock:
            self.sent.append((time.monotonic(), to))
            return Submitted(f"SM{len(self.sent)}", "queued")

    def find_submitted(self, to, body, since):
        return None


def pending_texts(svc, handler_actor, professionals: int) -> list[str]:
    for i in range(professionals):
        add_on_duty(svc, name=f"Nurse {i}", service="DN", mobile=f"077009002{i:02d}")
    referred_call(svc, handler_actor)
    handle_events(svc)
    with svc.uow() as uow:
        return list(uow.session.scalars(select(sms_messages.c.id).order_by(sms_messages.c.to)))


def recording_sender(svc, monkeypatch, rate: SenderRate) -> Recording:
    """The services' gateway a Recording, and their one sender limited to `rate` (a turn waited for up to 5 s)."""
    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {"rates": SenderRates(rate, {}, max_wait=5.0)})
    return gateway


def rows(svc):
    with svc.uow() as uow:
        return {r.id: r for r in uow.session.execute(select(sms_messages)).all()}


def test_three_workers_sending_never_exceed_the_senders_rate(svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 9)
    rate = SenderRate(5, 1)
    gateway = recording_sender(svc, monkeypatch, rate)
    outcomes: list[str] = []

    def worker(mine):
        outcomes.extend(sms.send(svc, sid) for sid in mine)

    in_threads(worker, [ids[k::3] for k in range(3)])
    assert sorted(outcomes) == ["queued"] * 9
    assert sorted(to for _, to in gateway.sent) == sorted(r.to for r in rows(svc).values())  # each once
    assert_within_rate(gateway, rate)


def test_three_workers_sending_batches_take_turns_ahead_and_never_exceed_the_senders_rate(
        svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 24)
    rate = SenderRate(20, 4)
    gateway = recording_sender(svc, monkeypatch, rate)
    asked: list[int] = []
    real = SenderBuckets.reserve_with

    def counted(self, sender, rate, now=None, max_wait=None, count=1, within=0.0):
        turn = real(self, sender, rate, now, max_wait, count, within)
        asked.append(turn.count)
        return turn

    monkeypatch.setattr(SenderBuckets, "reserve_with", counted)
    outcomes: dict[str, str] = {}

    def worker(mine):
        outcomes.update(sms.send_many(svc, mine))

    in_threads(worker, [ids[k::3] for k in range(3)])
    assert sorted(outcomes.values()) == ["queued"] * 24
    assert sorted(to for _, to in gateway.sent) == sorted(r.to for r in rows(svc).values())  # each once
    assert max(asked) > 1  # turns taken together (the first call: the burst, four), not one call a text
    assert_within_rate(gateway, rate)


def test_a_batch_asks_for_its_turns_together_and_gives_up_those_it_is_too_late_for(
        svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 6)
    # the third send takes longer than a turn taken ahead is good for
    gateway = slow_gateway(monkeypatch, sms.TURNS_WITHIN_SECONDS + 0.01, only_send=2)
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {"rates": SenderRates(SenderRate(1000, 100), {}, max_wait=5.0)})
    asked: list[tuple[int, int]] = []
    real = SenderBuckets.reserve_with

    def counted(self, sender, rate, now=None, max_wait=None, count=1, within=0.0):
        turn = real(self, sender, rate, now, max_wait, count, within)
        asked.append((count, turn.count))
        return turn

    monkeypatch.setattr(SenderBuckets, "reserve_with", counted)
    assert sms.send_many(svc, ids) == dict.fromkeys(ids, "queued")
    # six turns in one call; the fourth text came too late for its turn, so the last three asked again
    assert asked == [(6, 6), (3, 3)]
    assert len(gateway.sent) == 6


def test_a_text_whose_sender_is_booked_is_put_back_and_later_sent_once(svc, handler_actor, monkeypatch):
    first, second = pending_texts(svc, handler_actor, 2)
    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {"rates": SenderRates(SenderRate(1, 1), {}, max_wait=0.0)})
    assert sms.send(svc, first) == "queued"
    assert sms.send(svc, second) == "deferred"  # booked for about a second: not waited for
    row = rows(svc)[second]
    assert (row.status, row.attempts, row.provider_sid) == ("pending", 0, None)
    assert svc.clock.now() < row.next_attempt_at <= svc.clock.now() + timedelta(seconds=1)
    assert len(gateway.sent) == 1
    assert sms.due_for_handover(svc) == []  # not due yet
    svc.clock.advance(seconds=1)
    svc.redis().delete(KEY_PREFIX + SENDER)  # the sender's second has passed
    ((sid, ticket),) = sms.due_for_handover(svc)
    assert sid == second
    assert sms.send(svc, second, ticket) == "queued"
    assert sms.send(svc, second, ticket) == "queued"  # a repeated job sends nothing more
    assert len(gateway.sent) == 2 and rows(svc)[second].attempts == 1


def test_without_configured_rates_or_a_sender_nothing_is_throttled(svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 3)
    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {})
    assert [sms.send(svc, sid) for sid in ids] == ["queued"] * 3
    assert svc.redis().keys(KEY_PREFIX + "*") == []


def test_a_batch_is_claimed_in_one_transaction_and_its_outcomes_recorded_together(svc, handler_actor,
                                                                                    monkeypatch):
    from sqlalchemy import event

    from ipoa.adapters.sms_gateway import PermanentSmsError

    ids = pending_texts(svc, handler_actor, 4)
    outcomes = [Submitted("SM-a", "queued"), PermanentSmsError(21610, "unsubscribed"),
                Submitted("SM-c", "queued"), Submitted("SM-d", "queued")]

    class Gateway(Recording):
        def send(self, to, body, status_callback=None):
            super().send(to, body, status_callback)
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

    monkeypatch.setattr(svc, "sms_gateway", Gateway())
    commits: list[int] = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(svc.db, "commit", listener)
    try:
        got = sms.send_many(svc, ids)
    finally:
        event.remove(svc.db, "commit", listener)
    assert got == {ids[0]: "queued", ids[1]: "failed", ids[2]: "queued", ids[3]: "queued"}
    stored = rows(svc)
    assert [(stored[i].status, stored[i].provider_sid) for i in ids] == [
        ("queued", "SM-a"), ("failed", None), ("queued", "SM-c"), ("queued", "SM-d")]
    # one claim for the four, the failure's own record, and the three outcomes recorded together: not
    # a claim and a record per text
    assert len(commits) == 3
    assert sms.send_many(svc, ids) == got  # a repeated job sends nothing more


def test_a_batch_for_a_busy_sender_waits_its_share_then_puts_the_rest_back(svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 5)
    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {"rates": SenderRates(SenderRate(1, 1), {}, max_wait=1.5)})
    got = sms.send_many(svc, ids)
    # the first at once, the second a second later; the third would take the job past its 1.5 s
    assert [got[i] for i in ids] == ["queued", "queued", "deferred", "deferred", "deferred"]
    assert len(gateway.sent) == 2
    stored = rows(svc)
    assert [(stored[i].status, stored[i].attempts) for i in ids[2:]] == [("pending", 0)] * 3
    assert all(stored[i].next_attempt_at > svc.clock.now() for i in ids[2:])


def test_a_batch_sends_no_text_its_claims_lease_may_not_cover_and_a_later_job_sends_it_once(
        svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 3)
    # the first send took more than the claim allows
    gateway = slow_gateway(monkeypatch, sms.SEND_WITHIN_SECONDS + 0.5)
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {})
    got = sms.send_many(svc, ids)
    assert [got[i] for i in ids] == ["queued", "deferred", "deferred"]
    assert len(gateway.sent) == 1
    stored = rows(svc)
    # put back unsent, the attempt not counted, due at once: the relay hands them over again
    assert [(stored[i].status, stored[i].attempts, stored[i].provider_sid) for i in ids[1:]] == [
        ("pending", 0, None)] * 2
    svc.clock.advance(seconds=1)
    handed = sms.due_for_handover(svc)
    assert sorted(sid for sid, _ in handed) == sorted(ids[1:])
    for sid, ticket in handed:  # each its own job, whose claim is fresh
        assert sms.send_many(svc, [sid], ticket) == {sid: "queued"}
    assert sms.send_many(svc, ids) == dict.fromkeys(ids, "queued")  # a repeated job sends nothing more
    assert sorted(to for _, to in gateway.sent) == sorted(r.to for r in rows(svc).values())  # each once
    assert {rows(svc)[i].status for i in ids} == {"queued"}


def test_a_batch_claims_its_texts_a_few_at_a_time_as_it_reaches_them(svc, handler_actor, monkeypatch):
    monkeypatch.setattr(sms, "FIRST_CLAIM", 2)
    monkeypatch.setattr(sms, "CLAIM_EVERY", 2)
    ids = pending_texts(svc, handler_actor, 5)
    seen: list[list[str]] = []

    class Looking(Recording):
        def send(self, to, body, status_callback=None):
            stored = rows(svc)
            seen.append([stored[i].status for i in ids])
            return super().send(to, body, status_callback)

    monkeypatch.setattr(svc, "sms_gateway", Looking())
    monkeypatch.setattr(svc, "twilio", {})
    assert sms.send_many(svc, ids) == dict.fromkeys(ids, "queued")
    # the first two claimed at the start, the others not yet; the third and fourth when the job reaches them
    assert seen[0] == ["submitting", "submitting", "pending", "pending", "pending"]
    assert seen[2][2:] == ["submitting", "submitting", "pending"]
    assert seen[4][4] == "submitting"
    assert {r.status for r in rows(svc).values()} == {"queued"}


def test_a_later_chunks_lease_starts_at_its_own_claim(svc, handler_actor, monkeypatch):
    monkeypatch.setattr(sms, "FIRST_CLAIM", 2)
    monkeypatch.setattr(sms, "CLAIM_EVERY", 2)
    ids = pending_texts(svc, handler_actor, 4)
    # the first send takes more than a claim allows: the second text, claimed with it, is put back; the
    # third and fourth, claimed after it, go
    gateway = slow_gateway(monkeypatch, sms.SEND_WITHIN_SECONDS + 0.5, only_send=0)
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {})
    got = sms.send_many(svc, ids)
    assert [got[i] for i in ids] == ["queued", "deferred", "queued", "queued"]
    assert len(gateway.sent) == 3


def small_claims(monkeypatch, hand_back_after: float) -> None:
    monkeypatch.setattr(sms, "FIRST_CLAIM", 2)
    monkeypatch.setattr(sms, "CLAIM_EVERY", 2)
    monkeypatch.setattr(sms, "HAND_BACK_AFTER_SECONDS", hand_back_after)


def test_slow_sends_hand_the_texts_not_yet_claimed_back_for_other_workers(svc, handler_actor, monkeypatch):
    small_claims(monkeypatch, 1.0)
    ids = pending_texts(svc, handler_actor, 5)
    gateway = slow_gateway(monkeypatch, 0.6)  # Twilio's answer time, on the job's clock
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {})
    handed: list[list[str]] = []
    got = sms.send_many(svc, ids, hand_back=handed.append)
    # the first claim's two took 1.2 s: the other three go back to the queue unclaimed, at once
    assert handed == [ids[2:]]
    assert [got[i] for i in ids] == ["queued", "queued", "requeued", "requeued", "requeued"]
    assert len(gateway.sent) == 2
    stored = rows(svc)
    assert [(stored[i].status, stored[i].attempts) for i in ids[2:]] == [("pending", 0)] * 3


def test_fast_sends_keep_the_whole_job_and_waits_for_turns_do_not_count_as_slow(svc, handler_actor, monkeypatch):
    small_claims(monkeypatch, 1.0)
    ids = pending_texts(svc, handler_actor, 5)
    monkeypatch.setattr(svc, "sms_gateway", slow_gateway(monkeypatch, 0.2))  # 1 s for all five
    monkeypatch.setattr(svc, "twilio", {})
    handed: list[list[str]] = []
    assert sms.send_many(svc, ids, hand_back=handed.append) == dict.fromkeys(ids, "queued")
    assert handed == []


def test_a_busy_senders_waits_do_not_hand_texts_back(svc, handler_actor, monkeypatch):
    small_claims(monkeypatch, 0.5)
    ids = pending_texts(svc, handler_actor, 5)
    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {"rates": SenderRates(SenderRate(1, 1), {}, max_wait=1.5)})
    handed: list[list[str]] = []
    got = sms.send_many(svc, ids, hand_back=handed.append)
    # a second's wait for the second text's turn, as without hand_back: the rest put back, not handed on
    assert [got[i] for i in ids] == ["queued", "queued", "deferred", "deferred", "deferred"]
    assert handed == [] and len(gateway.sent) == 2


def test_a_batch_job_hands_its_slow_texts_back_as_smaller_jobs_each_sent_once(svc, handler_actor, monkeypatch):
    from rq import Queue, SimpleWorker

    from ipoa.adapters.rq_queue import QUEUE_NAME
    from workers import jobs

    small_claims(monkeypatch, 1.0)
    ids = pending_texts(svc, handler_actor, 5)
    slow = slow_gateway(monkeypatch, 0.6)
    monkeypatch.setattr(svc, "sms_gateway", slow)
    monkeypatch.setattr(svc, "twilio", {})
    jobs.use(svc)
    queue = Queue(QUEUE_NAME, connection=svc.redis())
    queue.enqueue("os.getpid")  # a job queued after the batch's
    jobs.send_sms_batch(ids)
    # jobs of CLAIM_EVERY, in their order, before the job that was waiting
    assert [queue.fetch_job(j).args[:1] for j in queue.job_ids] == [(ids[2:4],), (ids[4:],), ()]

    class Fast(Recording):  # its own message ids
        def send(self, to, body, status_callback=None):
            return Submitted(super().send(to, body, status_callback).provider_sid + "-fast", "queued")

    fast = Fast()
    monkeypatch.setattr(svc, "sms_gateway", fast)
    monkeypatch.setattr(sms, "_elapsed", lambda: 0.0)
    SimpleWorker([queue], connection=svc.redis()).work(burst=True)
    # the three handed back sent by the jobs they went back as: each text once
    assert len(slow.sent) == 2 and len(fast.sent) == 3
    assert sorted(to for _, to in slow.sent + fast.sent) == sorted(r.to for r in rows(svc).values())
    assert {r.status for r in rows(svc).values()} == {"queued"}


def test_a_batch_text_that_moved_on_before_its_outcome_was_recorded_keeps_the_later_status(
        svc, handler_actor, monkeypatch):
    from sqlalchemy import update

    ids = pending_texts(svc, handler_actor, 2)

    class Overtaken(Recording):
        def send(self, to, body, status_callback=None):
            result = super().send(to, body, status_callback)
            if len(self.sent) == 2:  # as if the first text's delivery was recorded before its own outcome
                with svc.uow() as uow:
                    uow.session.execute(update(sms_messages).where(sms_messages.c.id == ids[0])
                                        .values(status="delivered", provider_sid="SM1"))
                    uow.commit()
            return result

    monkeypatch.setattr(svc, "sms_gateway", Overtaken())
    monkeypatch.setattr(svc, "twilio", {})
    got = sms.send_many(svc, ids)
    assert got == {ids[0]: "delivered", ids[1]: "queued"}
    stored = rows(svc)
    assert [(stored[i].status, stored[i].provider_sid) for i in ids] == [("delivered", "SM1"), ("queued", "SM2")]


def test_a_batch_sends_on_while_the_outcomes_before_are_recorded(svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 4)
    monkeypatch.setattr(sms, "RECORD_EVERY", 2)
    last_sent = threading.Event()
    real = sms._record_many
    held_until_the_last_send: list[bool] = []

    def slow_record(svc_, held):  # PostgreSQL slow to answer: held up until the batch's last send, at most 10 s
        held_until_the_last_send.append(last_sent.wait(10))
        return real(svc_, held)

    class Gateway(Recording):
        def send(self, to, body, status_callback=None):
            result = super().send(to, body, status_callback)
            if len(self.sent) == len(ids):
                last_sent.set()
            return result

    monkeypatch.setattr(sms, "_record_many", slow_record)
    monkeypatch.setattr(svc, "sms_gateway", Gateway())
    monkeypatch.setattr(svc, "twilio", {})
    assert sms.send_many(svc, ids) == dict.fromkeys(ids, "queued")
    # both records (two texts each) waited for the last send: the sends never waited for a record
    assert held_until_the_last_send == [True, True]
    stored = rows(svc)  # and every outcome was recorded by the time the job ended
    assert sorted((stored[i].status, stored[i].provider_sid) for i in ids) == [
        ("queued", f"SM{k}") for k in range(1, 5)]


def test_a_record_that_fails_fails_the_job_and_no_text_the_gateway_took_is_sent_again(
        svc, handler_actor, monkeypatch):
    ids = pending_texts(svc, handler_actor, 3)
    monkeypatch.setattr(sms, "RECORD_EVERY", 1)
    real = sms._record_many

    def failing_record(svc_, held):
        raise OperationalError("UPDATE sms_messages", {}, Exception("the database went away"))

    gateway = Recording()
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    monkeypatch.setattr(svc, "twilio", {})
    monkeypatch.setattr(sms, "_record_many", failing_record)
    with pytest.raises(OperationalError):
        sms.send_many(svc, ids)
    took = {to for _, to in gateway.sent}
    assert took  # the first at least went before the failure was known
    stored = rows(svc)
    # what the gateway took is left `submitting` (never `pending`): the next attempt asks before sending
    assert {stored[i].status for i in ids if stored[i].to in took} == {"submitting"}
    monkeypatch.setattr(sms, "_record_many", real)

    class Asked(Recording):
        def find_submitted(self, to, body, since):
            return Submitted(f"SM-{to}", "queued") if to in took else None

    again = Asked()
    monkeypatch.setattr(svc, "sms_gateway", again)
    svc.clock.advance(seconds=sms.SEND_LEASE_SECONDS + 1)  # the claim's lease over: handed over again
    for sid, ticket in sms.due_for_handover(svc):
        sms.send_many(svc, [sid], ticket)
    assert {to for _, to in again.sent} == {stored[i].to for i in ids} - took  # only the untouched ones
    assert {r.status for r in rows(svc).values()} == {"queued"}
