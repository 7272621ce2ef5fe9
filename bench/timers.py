"""SLA timer benchmark: N timers falling due in the same minute; lateness from each timer's due time to
its escalation committed, against the lateness the scheduler's own tick gives, in one run.

    .venv/bin/python bench/timers.py [--timers N] [--spread 60] [--tick SECONDS]

Nothing leaves 127.0.0.1 (SMS_BACKEND=console; the relay is not started, so no text is made).

What it does, bounded by --max-seconds:

1. Set-up. Takes the benchmarks' lock (the one bench/intake.py and bench/sms.py take, so two benchmarks
   never share the CPUs), empties Redis db 12 (this benchmark's own), drops and recreates the
   PostgreSQL database `ipoa_timers_bench` (never `test`, `ipoa_bench` or `ipoa_sms_bench`), runs
   `flask --app ipoa init`.
2. Seeding. Logs one urgent call through the service layer (state `logged`, its triage clock running)
   and copies that row N times with one INSERT ... SELECT (new refs): N real calls in `logged`, where
   the triage clock runs, so firing each timer breaches its call. The template's own timer (due in
   15 min) is deleted.
3. Starts the scheduler (`python -m workers.scheduler`, tick SCHEDULER_TICK_SECONDS: 1 s unless --tick)
   and one worker (`python -m workers.worker`, RQ SimpleWorker) in sessions of their own; once the
   worker listens and the scheduler has logged its start, inserts N triage timers (one INSERT ...
   SELECT, set_at_version 1) for those calls with due_at evenly spaced over --spread seconds (default
   60) starting --lead seconds later (default 20): both processes are idle when the first falls due.
4. Waits until every timer has fired. Meanwhile a thread in this process counts the fired timers
   (SELECT count(*) ... WHERE fired_at IS NOT NULL, a fresh snapshot each time) every --poll seconds.
5. Figures, per timer:
     tick         enqueued_at - due_at: the scheduler's tick handing it over. The baseline: the lateness
                  the tick's granularity alone gives (uniform due times, 1 s tick: ~0.5 s mean, ~1 s max).
     txn start    fired_at - due_at: when the firing transaction began (fired_at, the audit event's `at`
                  and the outbox event's created_at are all the clock read at its start).
     committed    commit - due_at: the lateness the goal is about. The commit time is measured, not
                  taken from a column: with one worker the firings commit one after another in fired_at
                  order, so the k-th timer by fired_at committed no later than the first poll that
                  counted k fired timers (and after the poll before it). This is an upper bound, late by
                  at most one poll interval plus the query's own time (~--poll); txn start is a lower
                  bound. The verdict uses the upper bound.
   Prints p50 / p99 / max of each, their differences, the stages (queue wait enqueued -> txn start, the
   firing transaction txn start -> committed), the throughput (timers committed per second from the
   first due time to the last commit, and the worker's rate from its first to its last firing) against
   the offered rate (N / spread), the RQ jobs run, the scheduler's hand-overs, and the verdict
   p99 committed lateness < 2 s. Only --check turns the verdict into an exit status.

Checks: every timer fired once with outcome `breached`; N calls marked breached; N `sla_breach` audit
events and N `sla.breached` outbox events; every fire job run by the one worker. The scheduler and the
worker are always stopped; the database is dropped and Redis db 12 emptied afterwards (--keep keeps
both). On Linux it also reports CPU milliseconds per timer spent in the worker, the scheduler,
PostgreSQL, Redis and this process (the poller), and what else the machine did.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if not __package__:  # run as `python bench/timers.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    Process,
    Sandbox,
    add_sandbox_options,
    call_body,
    clean_env,
    flask,
    percentile,
    plain_url,
    release,
    run_lock,
    wait_for_worker,
)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_timers_bench"
REDIS_URL = "redis://127.0.0.1:6379/12"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "ipoa_sms_bench", "postgres", "template0", "template1"}
FORBIDDEN_REDIS_DBS = {0, 14, 15}  # 0: development; 14: bench/sms.py; 15: bench/intake.py and the tests
SANDBOX = Sandbox("ipoa_timers_bench", FORBIDDEN_DATABASES, 12, FORBIDDEN_REDIS_DBS)
# besides clean_env's own: the scheduler's and the timers' settings
ENV_DROP = {"SLA_POLICY_FILE", "SCHEDULER_TICK_SECONDS", "TIMER_REQUEUE_SECONDS", "LOG_LEVEL"}
P99_GOAL_S = 2.0


# ------------------------------------------------------------------------------------------------ seed

# The test suite's intake body (tests/conftest.py call_payload): an invented person with an NHS number
# from the never-issued 999 range.
TEMPLATE_BODY = call_body("community_nursing", "Bench call: SLA timer benchmark.")


def app_in_process(env: dict[str, str]):
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMS_BACKEND")})
    from ipoa import create_app

    app = create_app()
    return app, app.extensions["ipoa"]


def seed_calls(svc, n: int) -> tuple[str, str]:
    """N calls in `logged`, copies of one logged through the service layer; returns (the template's
    ref, its triage timer's rule)."""
    from sqlalchemy import text

    from ipoa.service import calls

    actor = calls.Actor(username="bench.handler", role="handler", centre="CNH")
    call = calls.log_call(svc, actor, TEMPLATE_BODY, allow_duplicate=True)
    with svc.db.begin() as conn:
        state, version = conn.execute(text("SELECT state, version FROM calls WHERE ref = :r"),
                                      {"r": call.ref}).one()
        rule = conn.execute(text("SELECT rule FROM timers WHERE call_ref = :r AND kind = 'triage'"),
                            {"r": call.ref}).scalar_one()
        if state != "logged" or version != 1:
            raise BenchError(f"the template call is {state} v{version}, not logged v1")
        cols = [r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
            "AND column_name NOT IN ('id', 'ref') ORDER BY ordinal_position"))]
        col_list = ", ".join(f'"{c}"' for c in cols)
        conn.execute(text(
            f"INSERT INTO calls (ref, {col_list}) SELECT 'TB' || lpad(g::text, 8, '0'), {col_list} "
            "FROM calls, generate_series(1, :n) AS g WHERE calls.ref = :r"), {"n": n, "r": call.ref})
        conn.execute(text("DELETE FROM timers"))
    with svc.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE calls"))
    return call.ref, rule


def seed_timers(svc, n: int, first_due: datetime, spread: float, rule: str) -> None:
    """N triage timers, one per seeded call, due evenly over `spread` seconds from first_due."""
    from sqlalchemy import text

    with svc.db.begin() as conn:
        conn.execute(text(
            "INSERT INTO timers (id, kind, call_ref, referral_id, due_at, set_at_version, rule, created_at) "
            "SELECT md5(g::text || ':' || random()::text), 'triage', 'TB' || lpad(g::text, 8, '0'), NULL, "
            "       CAST(:first AS timestamptz) + (g - 1) * (CAST(:step AS float8) * interval '1 second'), "
            "       1, :rule, now() "
            "FROM generate_series(1, :n) AS g"),
            {"n": n, "first": first_due, "step": spread / n, "rule": rule})
    with svc.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE timers"))


# ---------------------------------------------------------------------------------------------- poller

class FiredCounter(threading.Thread):
    """Counts the fired timers every `interval` seconds on a connection of its own (autocommit: a fresh
    snapshot per query). Each sample is (wall time the query was sent, wall time its answer came,
    count)."""

    def __init__(self, url: str, interval: float, until: int):
        super().__init__(daemon=True, name="fired-counter")
        self.url, self.interval, self.until = url, interval, until
        self.samples: list[tuple[datetime, datetime, int]] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                cur = conn.cursor()
                q = "SELECT count(*) FROM timers WHERE fired_at IS NOT NULL"
                cur.execute(q)  # prepared by psycopg after a few runs; warm it up
                while not self.stop_event.is_set():
                    sent = datetime.now(UTC)
                    cur.execute(q)
                    count = cur.fetchone()[0]
                    self.samples.append((sent, datetime.now(UTC), count))
                    if count >= self.until:
                        return
                    self.stop_event.wait(self.interval)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    @property
    def count(self) -> int:
        return self.samples[-1][2] if self.samples else 0


def commit_bounds(samples: list[tuple[datetime, datetime, int]], n: int) -> list[tuple[datetime, datetime]]:
    """For ranks 1..n: (after, by): the rank-k firing committed after `after` (the last poll sent that
    counted fewer than k) and no later than `by` (the answer of the first poll that counted k)."""
    out: list[tuple[datetime, datetime]] = []
    prev_sent = samples[0][0]  # (the first poll is sent before the first due time: it counts none)
    for sent, answered, count in samples:
        while len(out) < min(count, n):  # the ranks this poll is the first to count
            out.append((prev_sent, answered))
        prev_sent = sent
    if len(out) < n:
        raise BenchError(f"the poller counted {len(out)} of {n} fired timers")
    return out


# ------------------------------------------------------------------------------------------------ misc

@dataclass
class Dist:
    name: str
    values: list[float]

    def row(self) -> str:
        v = self.values
        return (f"{self.name:<44} {percentile(v, 50):8.3f} {percentile(v, 99):8.3f} {max(v):8.3f} "
                f"{statistics.mean(v):8.3f} {min(v):8.3f}")


def wait_for_log(proc: Process, needle: str, deadline: float) -> None:
    while needle not in proc.log_text():
        proc.check()
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.name} did not log {needle!r}:\n{proc.log_tail()}")
        time.sleep(0.05)


def fire_jobs(conn) -> tuple[int, int, set, list[float]]:
    """(finished, failed, worker names, durations in s) of the RQ jobs on the app's queue."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    from ipoa.adapters.rq_queue import QUEUE_NAME

    queue = Queue(QUEUE_NAME, connection=conn)
    done_ids = FinishedJobRegistry(queue=queue).get_job_ids()
    failed = len(FailedJobRegistry(queue=queue).get_job_ids())
    jobs = []
    for i in range(0, len(done_ids), 500):
        jobs += [j for j in Job.fetch_many(done_ids[i:i + 500], connection=conn) if j is not None]
    jobs = [j for j in jobs if j.func_name == "workers.jobs.fire_timers"]
    return (len(jobs), failed, {j.worker_name for j in jobs},
            [(j.ended_at - j.started_at).total_seconds() for j in jobs if j.started_at and j.ended_at])


# ------------------------------------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timers", type=int, default=10_000, help="timers falling due (default: %(default)s)")
    p.add_argument("--spread", type=float, default=60.0, help="seconds over which they fall due, evenly "
                   "(default: %(default)s)")
    p.add_argument("--lead", type=float, default=20.0, help="seconds from the timers' insert to the first "
                   "due time, with the scheduler and the worker idle (default: %(default)s)")
    p.add_argument("--tick", type=float, default=None, help="SCHEDULER_TICK_SECONDS for the scheduler "
                   "(default: unset, the scheduler's own default of 1 s)")
    p.add_argument("--poll", type=float, default=0.02, help="seconds between counts of the fired timers: "
                   "the commit times' resolution (default: %(default)s)")
    add_sandbox_options(p, DATABASE_URL, REDIS_URL, max_seconds=600)
    p.add_argument("--keep", action="store_true", help="keep the database and Redis contents afterwards")
    p.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    args = p.parse_args(argv)
    if args.timers < 1 or args.spread <= 0 or args.lead < 0 or args.poll <= 0:
        p.error("--timers, --spread and --poll must be positive, --lead not negative")
    if args.tick is not None and args.tick <= 0:
        p.error("--tick must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        SANDBOX.check(args.database_url, args.redis_url)
    except BenchError as exc:
        print(f"bench/timers.py: {exc}", file=sys.stderr)
        return 2

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-timers-bench-"))
    lock = svc = scheduler = worker = counter = None
    created_db = touched_redis = False
    N = args.timers
    try:
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds  # from when the machine is ours
        SANDBOX.flush_redis(args.redis_url, say=True)
        touched_redis = True
        SANDBOX.recreate_database(args.database_url)
        created_db = True
        extra = {"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                 "SECRET_KEY": secrets.token_hex(32), "SMS_BACKEND": "console"}
        if args.tick is not None:
            extra["SCHEDULER_TICK_SECONDS"] = repr(args.tick)
        env = clean_env(extra, also_drop=ENV_DROP)
        flask(env, "init")
        tick = args.tick if args.tick is not None else 1.0

        _, svc = app_in_process(env)
        t0 = time.monotonic()
        template, rule = seed_calls(svc, N)
        print(f"database {args.database_url}\nredis    {args.redis_url}\n"
              f"cpus     {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the start\n"
              f"seeded   {N} calls in `logged` (copies of {template}, urgent) in {time.monotonic() - t0:.1f}s")

        worker = Process("worker", [sys.executable, "-m", "workers.worker"], env, tmp)
        scheduler = Process("scheduler", [sys.executable, "-m", "workers.scheduler"], env, tmp)
        wait_for_worker(svc.redis(), worker, deadline)
        wait_for_log(scheduler, "timer scheduler started", deadline)
        said = re.search(r"timer scheduler started \(tick ([0-9.]+)s\)", scheduler.log_text())
        tick = float(said.group(1)) if said else tick  # the tick it says it runs at
        time.sleep(1.0)  # a tick or so of idleness before the timers exist
        meter = CpuMeter({"worker": worker.pid, "scheduler": scheduler.pid})

        first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
        t0 = time.monotonic()
        seed_timers(svc, N, first_due, args.spread, rule)
        last_due = first_due + timedelta(seconds=args.spread * (N - 1) / N)
        how = "--tick" if args.tick is not None else "its default"
        print(f"timers   {N} triage timers inserted in {time.monotonic() - t0:.2f}s, due evenly from "
              f"{first_due:%H:%M:%S}.{first_due.microsecond // 1000:03d} to {last_due:%H:%M:%S}."
              f"{last_due.microsecond // 1000:03d} UTC ({N / args.spread:.1f} per second)\n"
              f"         scheduler tick {tick:g}s (as its log says; {how}), one worker (SimpleWorker); "
              f"polling the fired count every {args.poll * 1000:.0f} ms")
        while datetime.now(UTC) < first_due - timedelta(seconds=1):
            scheduler.check()
            worker.check()
            time.sleep(0.1)
        counter = FiredCounter(plain_url(args.database_url), args.poll, N)
        cpu_before = meter.snapshot()
        cpu_t0 = time.monotonic()
        counter.start()
        shown = time.monotonic()
        while counter.is_alive():
            counter.join(timeout=0.5)
            scheduler.check()
            worker.check()
            if time.monotonic() > deadline:
                raise BenchError(f"run time limit reached: {counter.count} of {N} timers fired\n"
                                 f"worker log:\n{worker.log_tail(10)}")
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                print(f"  {datetime.now(UTC):%H:%M:%S} {counter.count} of {N} fired", flush=True)
        cpu_after = meter.snapshot()
        cpu_seconds = time.monotonic() - cpu_t0
        if counter.error is not None:
            raise BenchError(f"the poller failed: {counter.error!r}")
        if counter.count < N:
            raise BenchError(f"the poller stopped at {counter.count} of {N}")

        # -- read back and check
        from sqlalchemy import text

        time.sleep(0.5)  # the last job records its end in RQ
        with svc.db.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, due_at, enqueued_at, fired_at, outcome FROM timers ORDER BY fired_at, id")).all()
            breached_calls = conn.execute(text("SELECT count(*) FROM calls WHERE breach = 'triage'")).scalar_one()
            audits = conn.execute(text("SELECT count(*) FROM audit_events WHERE trigger = 'sla_breach'")).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM outbox WHERE topic = 'sla.breached'")).scalar_one()
            versions = conn.execute(text(
                "SELECT count(*) FROM calls WHERE ref LIKE 'TB%' AND version <> 1")).scalar_one()
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
        if len(rows) != N or outcomes != {"breached": N}:
            raise BenchError(f"expected {N} timers breached; got {len(rows)} with outcomes {outcomes}")
        if (breached_calls, audits, events) != (N, N, N) or versions:
            raise BenchError(f"expected {N} breached calls, audit events and outbox events, no version bump; "
                             f"got {breached_calls}, {audits}, {events}; {versions} call version(s) changed")
        jobs, failed, workers, durations = fire_jobs(svc.redis())
        if failed or len(workers) != 1:
            raise BenchError(f"{failed} failed job(s); jobs run by {sorted(workers)} (one worker expected)")
        handovers = [int(line.split("handed over ", 1)[1].split()[0]) for line in scheduler.log_text().splitlines()
                     if "scheduler handed over" in line]

        # -- lateness
        bounds = commit_bounds(counter.samples, N)
        tick_late, start_late, commit_late, commit_low = [], [], [], []
        queue_wait, firing = [], []
        for row, (after, by) in zip(rows, bounds):
            tick_late.append((row.enqueued_at - row.due_at).total_seconds())
            start_late.append((row.fired_at - row.due_at).total_seconds())
            commit_late.append((by - row.due_at).total_seconds())
            commit_low.append((max(after, row.fired_at) - row.due_at).total_seconds())
            queue_wait.append((row.fired_at - row.enqueued_at).total_seconds())
            firing.append((by - row.fired_at).total_seconds())
        first_commit = bounds[0][1]
        last_commit = bounds[-1][1]
        first_fired = rows[0].fired_at
        rate_window = (last_commit - first_due).total_seconds()
        worker_window = (last_commit - first_fired).total_seconds()
        gaps = [(b[1] - b[0]).total_seconds() for b in bounds]
        polls = len(counter.samples)
        poll_gaps = [(counter.samples[i + 1][1] - counter.samples[i][1]).total_seconds()
                     for i in range(polls - 1)]

        # -- report
        print()
        print(f"lateness, seconds, {N} timers{'':<18} {'p50':>8} {'p99':>8} {'max':>8} {'mean':>8} {'min':>8}")
        for d in (Dist("tick: enqueued_at - due_at (baseline)", tick_late),
                  Dist("txn start: fired_at - due_at", start_late),
                  Dist("committed: commit - due_at (upper bound)", commit_late),
                  Dist("committed, lower bound", commit_low)):
            print(d.row())
        print("  stages:")
        for d in (Dist("  queue wait: enqueued_at -> fired_at", queue_wait),
                  Dist("  firing: fired_at -> committed (upper bound)", firing)):
            print(d.row())
        p50c, p99c = percentile(commit_late, 50), percentile(commit_late, 99)
        p50t, p99t = percentile(tick_late, 50), percentile(tick_late, 99)
        print(f"  committed over tick: p50 {p50c - p50t:+.3f}s ({p50c / p50t:.2f}x), "
              f"p99 {p99c - p99t:+.3f}s ({p99c / p99t:.2f}x)")
        print(f"  commit times: {polls} polls of the fired count, median {statistics.median(poll_gaps) * 1000:.1f} ms "
              f"apart (max {max(poll_gaps) * 1000:.1f}); each commit placed within a median "
              f"{statistics.median(gaps) * 1000:.1f} ms (max {max(gaps) * 1000:.1f})")
        print()
        print(f"throughput: offered {N / args.spread:.1f} timers/s over {args.spread:g}s; committed "
              f"{N / rate_window:.1f}/s from the first due time to the last commit ({rate_window:.2f}s); "
              f"the worker {N / worker_window:.1f}/s from its first firing to its last commit "
              f"({worker_window:.2f}s); first commit {(first_commit - first_due).total_seconds():.3f}s "
              f"after the first due time, last {(last_commit - last_due).total_seconds():.3f}s after the last")
        print(f"  RQ: {jobs} fire_timers job(s) by one worker (median {statistics.median(durations) * 1000:.0f} ms, "
              f"{sum(durations):.1f}s in all, {N / jobs:.1f} timers per job: the worker's capacity, were its "
              f"queue never empty, ~{N / sum(durations):.0f} timers/s); the scheduler handed over "
              f"{sum(handovers)} timer(s) in {len(handovers)} tick(s)"
              + (f" ({sum(handovers) - N} re-handed over after TIMER_REQUEUE_SECONDS)" if sum(handovers) > N else ""))
        if cpu_after:
            cpu = CpuMeter.delta(cpu_before, cpu_after)
            busy = sum(cpu.values())
            print(f"  CPU over {cpu_seconds:.1f}s from 1s before the first due time: {busy:.1f}s busy of "
                  f"{cpu_seconds * (os.cpu_count() or 1):.1f}s on {os.cpu_count()} cpus; ms per timer: "
                  + ", ".join(f"{k} {cpu[k] / N * 1000:.2f}" for k in cpu if k != "other")
                  + (f"; other work on the machine {cpu['other'] / N * 1000:.2f}" if "other" in cpu else ""))
        print()
        met = p99c < P99_GOAL_S
        print(f"p99 lateness due -> escalation committed: {p99c:.3f}s (p50 {p50c:.3f}s, max {max(commit_late):.3f}s); "
              f"the tick alone: p99 {p99t:.3f}s   goal p99 < {P99_GOAL_S:g}s: {'met' if met else 'NOT met'}")
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 1 if args.check and not met else 0
    except BenchError as exc:
        print(f"\nbench/timers.py: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if counter is not None:
            counter.stop_event.set()
            counter.join(timeout=5)
        for p in (scheduler, worker):
            if p is not None:
                p.stop()
        if svc is not None:
            svc.close()
        if args.keep:
            print(f"logs kept in {tmp}")
        else:
            SANDBOX.clean_up(args.database_url if created_db else None, args.redis_url if touched_redis else None)
        release(lock, None if args.keep else tmp)


if __name__ == "__main__":
    sys.exit(main())
