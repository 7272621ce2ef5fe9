"""SLA timers fired at their due instants (workers/scheduler.py, service/timers.hand_over_ahead and
fire_when_due): every read the scheduler hands over the timers falling due in the next half second with
their instants, marked handed over as of those instants; the worker fires each at its instant, never
before; a timer created after a read is caught by the next; of two schedulers one hands a timer over;
REQUEUE_AFTER counts from the due instant; a restarted scheduler or worker gets the overdue ones fired at
once. The test clock and a fake sleep stand in for time: no real waiting, no timed assertion."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from ipoa.adapters.orm import audit_events, timers
from ipoa.service import calls as call_service
from ipoa.service import timers as timer_service
from tests.conftest import call_payload
from workers import scheduler

WINDOW = timedelta(seconds=0.5)  # scheduler.PREFETCH_SECONDS
READ = 0.2  # scheduler.READ_SECONDS


def log(svc, actor):
    return call_service.log_call(svc, actor, call_payload(), allow_duplicate=True)


def triage_timer(svc, ref):
    with svc.uow() as uow:
        return uow.session.execute(select(timers).where(timers.c.call_ref == ref)).one()


def row(svc, tid):
    with svc.uow() as uow:
        return uow.session.execute(select(timers).where(timers.c.id == tid)).one()


def breaches(svc) -> int:
    with svc.uow() as uow:
        return len(uow.session.execute(select(audit_events.c.seq)
                                       .where(audit_events.c.trigger == "sla_breach")).all())


class Recorder:
    """The enqueue the scheduler is given: what it handed over, and the test clock's time when it did.
    With `worker`, each job is run at once as the worker would, its sleeps moving the test clock."""

    def __init__(self, svc, clock, worker: bool = False):
        self.svc, self.clock, self.worker = svc, clock, worker
        self.calls: list[tuple[object, list]] = []
        self.sleeps: list[float] = []

    def __call__(self, due):
        self.calls.append((self.clock.now(), list(due)))
        if self.worker:
            timer_service.fire_when_due(self.svc, due, self.sleep)

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.clock.advance(seconds=seconds)

    def at(self, tid):
        return [at for at, due in self.calls if tid in dict(due)]


def hand_over(svc, rec, window=WINDOW):
    return timer_service.hand_over_ahead(svc, rec, window)


def run_until(svc, clock, enqueue, until, **kw):
    """The scheduler's loop, its sleeps and its monotonic clock on the test clock, until `until`."""
    start = clock.now()
    scheduler.run(svc, stop=lambda: clock.now() >= until, enqueue=enqueue, sleep=lambda s: clock.advance(seconds=s),
                  monotonic=lambda: (clock.now() - start).total_seconds(), **kw)


def test_a_read_hands_over_the_next_half_second_with_its_instants(svc, clock, handler_actor):
    soon = triage_timer(svc, log(svc, handler_actor).ref)  # due in 15 minutes
    clock.advance(seconds=10)
    later = triage_timer(svc, log(svc, handler_actor).ref)  # 10 s after it
    rec = Recorder(svc, clock)
    clock.set(soon.due_at - timedelta(seconds=0.4))
    assert hand_over(svc, rec) == 1
    assert rec.calls == [(clock.now(), [(soon.id, soon.due_at)])]  # with its instant; the other is 10 s on
    # Marked handed over as of its instant, not of the read: REQUEUE_AFTER counts from there.
    assert row(svc, soon.id).enqueued_at == soon.due_at
    assert row(svc, later.id).enqueued_at is None
    assert hand_over(svc, rec) == 0  # its job is on its way


def test_the_worker_fires_each_timer_at_its_instant_never_before(svc, clock, handler_actor):
    rows = []
    for _ in range(5):
        rows.append(triage_timer(svc, log(svc, handler_actor).ref))
        clock.advance(seconds=0.37)  # due 370 ms apart: neither on a tick nor on a read
    rec = Recorder(svc, clock, worker=True)
    clock.set(rows[0].due_at - timedelta(seconds=5))
    run_until(svc, clock, rec, rows[-1].due_at + timedelta(seconds=1))
    assert sorted(tid for _, due in rec.calls for tid, _ in due) == sorted(r.id for r in rows)  # each once
    for r in rows:
        (handed,) = rec.at(r.id)
        assert handed < r.due_at  # ahead of its instant ...
        fired = row(svc, r.id)
        assert (fired.fired_at, fired.outcome) == (r.due_at, "breached")  # ... fired at it, on the test clock
    assert breaches(svc) == 5


def test_a_job_sleeps_until_the_instant_and_fires_what_is_due_together(svc, clock, handler_actor, monkeypatch):
    rows = [triage_timer(svc, log(svc, handler_actor).ref) for _ in range(3)]  # the same instant
    clock.advance(seconds=1)
    last = triage_timer(svc, log(svc, handler_actor).ref)
    batches = []
    fire_many = timer_service.fire_many
    monkeypatch.setattr(timer_service, "fire_many", lambda svc, ids: batches.append(sorted(ids)) or fire_many(svc, ids))
    rec = Recorder(svc, clock)
    clock.set(rows[0].due_at - timedelta(seconds=0.3))
    out = timer_service.fire_when_due(svc, [(r.id, r.due_at) for r in [*rows, last]], rec.sleep)
    assert rec.sleeps == [0.3, 1.0]  # until each instant, and no further
    assert batches == [sorted(r.id for r in rows), [last.id]]
    assert set(out.values()) == {"breached"}


def test_firings_start_a_grain_apart_so_timers_due_close_together_share_one(svc, clock, handler_actor,
                                                                            monkeypatch):
    rows = []
    for gap in (0.005, 0.005, 0.02, 0.0):  # due at +0, +5 ms, +10 ms, +30 ms
        rows.append(triage_timer(svc, log(svc, handler_actor).ref))
        clock.advance(seconds=gap)
    fired = []
    fire_many = timer_service.fire_many
    monkeypatch.setattr(timer_service, "fire_many",
                        lambda svc, ids: fired.append((clock.now(), sorted(ids))) or fire_many(svc, ids))
    rec = Recorder(svc, clock)
    t0 = rows[0].due_at
    clock.set(t0 - timedelta(seconds=0.3))
    timer_service.fire_when_due(svc, [(r.id, r.due_at) for r in rows], rec.sleep, grain=0.02)
    ms = timedelta(milliseconds=1)
    assert fired == [(t0, [rows[0].id]), (t0 + 20 * ms, sorted([rows[1].id, rows[2].id])),
                     (t0 + 40 * ms, [rows[3].id])]  # never before its instant; at most a grain after
    assert [row(svc, r.id).outcome for r in rows] == ["breached"] * 4


def test_a_worker_behind_fires_the_overdue_in_larger_transactions(svc, clock, handler_actor, monkeypatch):
    rows = []
    for _ in range(5):
        rows.append(triage_timer(svc, log(svc, handler_actor).ref))
        clock.advance(seconds=0.05)
    batches = []
    fire_many = timer_service.fire_many
    monkeypatch.setattr(timer_service, "fire_many", lambda svc, ids: batches.append(len(ids)) or fire_many(svc, ids))
    rec = Recorder(svc, clock)
    clock.set(rows[-1].due_at + timedelta(seconds=2))  # the job starts late: all are due
    timer_service.fire_when_due(svc, [(r.id, r.due_at) for r in rows], rec.sleep, batch=2)
    assert rec.sleeps == [] and batches == [2, 2, 1]


def test_a_timer_created_inside_the_window_after_a_read_is_still_fired_at_its_instant(svc, clock, handler_actor):
    first = triage_timer(svc, log(svc, handler_actor).ref)
    other = triage_timer(svc, log(svc, handler_actor).ref)
    with svc.uow() as uow:  # `other` is put back below, as if created after the first read
        uow.session.execute(timers.delete().where(timers.c.id == other.id))
        uow.commit()
    rec = Recorder(svc, clock, worker=True)
    clock.set(first.due_at - timedelta(seconds=2))
    started = clock.now()
    created = {"done": False}

    def stop():
        if not created["done"] and rec.calls:  # the read that handed `first` over is done
            new_due = clock.now() + timedelta(seconds=0.3)  # due before the next read but one
            with svc.uow() as uow:
                uow.session.execute(insert(timers).values({**other._mapping, "due_at": new_due}))
                uow.commit()
            created["done"] = new_due
        return clock.now() >= first.due_at + timedelta(seconds=2)

    scheduler.run(svc, stop=stop, enqueue=rec, sleep=lambda s: clock.advance(seconds=s),
                  monotonic=lambda: (clock.now() - started).total_seconds())
    new_due = created["done"]
    (handed,) = rec.at(other.id)
    assert handed <= new_due  # caught by the next read, ahead of its instant
    assert row(svc, other.id).fired_at == new_due
    assert row(svc, first.id).fired_at == first.due_at


def test_of_two_schedulers_one_hands_a_timer_over_and_it_escalates_once(svc, clock, handler_actor):
    rows = [triage_timer(svc, log(svc, handler_actor).ref) for _ in range(3)]
    a, b = Recorder(svc, clock), Recorder(svc, clock)
    clock.set(rows[0].due_at - timedelta(seconds=0.4))
    with svc.uow() as uow:  # the second has read them ...
        found = uow.timers.due_soon(clock.now() + WINDOW, clock.now() - timer_service.REQUEUE_AFTER, 100)
    assert len(found) == 3
    assert hand_over(svc, a) == 3  # ... when the first hands them over
    with svc.uow() as uow:  # its conditional update then takes none
        assert uow.timers.claim_hand_over([t for t, _ in found], clock.now(),
                                          clock.now() - timer_service.REQUEUE_AFTER) == []
        uow.commit()
    assert hand_over(svc, b) == 0 and b.calls == []
    # Were both to hold them (a requeue), firing claims: each escalates once.
    for due in (a.calls[0][1], [(r.id, r.due_at) for r in rows]):
        timer_service.fire_when_due(svc, due, a.sleep)
    assert breaches(svc) == 3


def test_a_stopped_clock_handed_over_ahead_does_not_fire(svc, clock, handler_actor):
    call = log(svc, handler_actor)
    t = triage_timer(svc, call.ref)
    rec = Recorder(svc, clock)
    clock.set(t.due_at - timedelta(seconds=0.4))
    assert hand_over(svc, rec) == 1
    call_service.fire_call_trigger(svc, handler_actor, call.ref,
                                   {"trigger": "divert_999", "expected_version": 1, "reason": "Chest pain"})
    assert timer_service.fire_when_due(svc, rec.calls[0][1], rec.sleep) == {t.id: "done"}
    assert breaches(svc) == 0


def test_requeue_counts_from_the_due_instant_not_from_the_early_hand_over(svc, clock, handler_actor):
    t = triage_timer(svc, log(svc, handler_actor).ref)
    rec = Recorder(svc, clock)
    clock.set(t.due_at - timedelta(seconds=0.4))  # handed over 0.4 s ahead
    assert hand_over(svc, rec) == 1
    # Its job is lost (Redis flushed): not handed over again until REQUEUE_AFTER after its instant.
    clock.set(t.due_at + timer_service.REQUEUE_AFTER - timedelta(milliseconds=1))
    assert hand_over(svc, rec) == 0
    clock.set(t.due_at + timer_service.REQUEUE_AFTER)
    assert hand_over(svc, rec) == 1
    assert row(svc, t.id).enqueued_at == clock.now()  # overdue: as of now, so not again at every read
    clock.advance(seconds=READ)
    assert hand_over(svc, rec) == 0
    assert rec.calls[1][1] == [(t.id, t.due_at)]
    ids = {tid for _, due in rec.calls for tid, _ in due}
    assert timer_service.fire_many(svc, [t.id, t.id]) == {t.id: "breached"} and ids == {t.id}


def test_a_restarted_scheduler_has_the_overdue_fired_at_its_first_read(svc, clock, handler_actor):
    rows = [triage_timer(svc, log(svc, handler_actor).ref) for _ in range(2)]
    clock.set(rows[0].due_at + timedelta(seconds=20))  # the scheduler was down when they fell due
    rec = Recorder(svc, clock, worker=True)
    run_until(svc, clock, rec, clock.now() + timedelta(seconds=0.1))  # one read
    assert [(at, sorted(due)) for at, due in rec.calls] == [(rows[0].due_at + timedelta(seconds=20),
                                                              sorted((r.id, r.due_at) for r in rows))]
    assert rec.sleeps == []  # overdue: fired at once
    assert breaches(svc) == 2


def test_a_starting_worker_has_the_lost_jobs_timers_handed_over_at_the_next_read(svc, clock, handler_actor):
    due_now = triage_timer(svc, log(svc, handler_actor).ref)
    clock.advance(seconds=0.3)
    ahead = triage_timer(svc, log(svc, handler_actor).ref)  # handed over, not due yet
    rec = Recorder(svc, clock)
    clock.set(due_now.due_at)
    assert hand_over(svc, rec) == 2  # the job dies with the worker running it
    clock.advance(seconds=0.1)
    assert timer_service.release_hand_overs(svc) == 2  # the new worker starts
    assert hand_over(svc, rec) == 2  # not REQUEUE_AFTER later
    assert rec.calls[1][1] == [(due_now.id, due_now.due_at), (ahead.id, ahead.due_at)]
    timer_service.fire_when_due(svc, rec.calls[1][1], rec.sleep)
    assert breaches(svc) == 2
    assert timer_service.release_hand_overs(svc) == 0  # fired: nothing to release


def test_the_loop_still_looks_at_the_shift_changes_the_nightly_verification_and_lost_calls(svc, clock,
                                                                                            handler_actor):
    looks = {"handovers": 0, "nightly": 0, "lost_calls": 0}

    class Look:
        def __init__(self, name):
            self.name = name

        def poll(self):
            looks[self.name] += 1

        def stop(self):
            pass

    t = triage_timer(svc, log(svc, handler_actor).ref)
    rec = Recorder(svc, clock)
    clock.set(t.due_at - timedelta(seconds=1))
    run_until(svc, clock, rec, t.due_at + timedelta(seconds=3), tick=1.0, nightly=Look("nightly"),
              handovers=Look("handovers"), lost_calls=Look("lost_calls"))
    assert rec.at(t.id) and rec.at(t.id)[0] < t.due_at
    assert looks["handovers"] == looks["nightly"] == looks["lost_calls"] == 4  # a tick a second for the 4 s


def test_the_scheduler_hands_timers_to_the_timers_queue_not_the_texts(svc, clock):
    from rq import Queue

    from ipoa.adapters.rq_queue import QUEUE_NAME, TIMERS_QUEUE_NAME
    from workers.scheduler import rq_enqueue

    rq_enqueue(svc)([("t1", clock.now() + timedelta(seconds=0.3))])
    assert Queue(TIMERS_QUEUE_NAME, connection=svc.redis()).count == 1
    assert Queue(QUEUE_NAME, connection=svc.redis()).count == 0


def test_overdue_timers_go_to_the_front_of_the_queue_soonest_first(svc, clock):
    from rq import Queue

    from ipoa.adapters.rq_queue import QUEUE_NAME, TIMER_JOB, enqueue_timers_ahead

    queue = Queue(QUEUE_NAME, connection=svc.redis())
    now = clock.now()
    enqueue_timers_ahead(queue, [("later", now + timedelta(seconds=0.4))], now)  # a job sleeping until then
    overdue = [(f"t{i:04d}", now - timedelta(seconds=300 - i)) for i in range(TIMER_JOB + 10)]
    enqueue_timers_ahead(queue, [*overdue, ("soon", now + timedelta(seconds=0.3))], now)  # a worker back
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    assert [j.args[0] for j in jobs] == [overdue[:TIMER_JOB], overdue[TIMER_JOB:],
                                         [("later", now + timedelta(seconds=0.4))],
                                         [("soon", now + timedelta(seconds=0.3))]]
