"""SMS benchmark: committed outbox event -> SMS row -> send job -> Twilio (the emulator), against RQ
running no-op jobs with the same worker class, in one run.

    .venv/bin/python bench/sms.py [--messages N] [--latency-samples M]

Nothing is sent anywhere but 127.0.0.1: the Twilio API is tests/twilio_emulator.py, served in this
process on a free loopback port, and the worker's twilio client is aimed at it (TWILIO_API_BASE_URL).
Its sockets get TCP_NODELAY here (without it each back-to-back send waits ~40 ms for a delayed ACK: an
artefact of the emulator, see main(); --emulator-nagle reproduces it).

What it does, bounded by --max-seconds:

1. Set-up. Takes the benchmarks' lock (the one bench/intake.py takes, so two benchmarks never share
   the CPUs), empties Redis db 14 (the benchmark's own), drops and recreates the PostgreSQL database
   `ipoa_sms_bench` (never `test` or `ipoa_bench`), runs `flask --app ipoa init` and
   `flask --app ipoa professionals add` and `rota import` (one on-duty DN professional, so each referral is
   one text).
2. Throughput. Commits N referrals in-process through the service layer (log a call, start triage,
   refer to DN: three transactions, four outbox events) with no relay or worker running, so the relay's
   list holds every committed id. Then starts one worker (`python -m workers.worker`, an RQ
   SimpleWorker) and, once it listens, the relay (`python -m workers.relay`), which handles the events
   (recording the texts they cause) and queues the send jobs (a job per text, or per batch of up to 20
   texts handed over together); times until the emulator holds N texts.
3. Baseline, in the same run: N jobs, each a no-op (`bench.sms.noop`), processed by
   `rq worker -w rq.worker.SimpleWorker --with-scheduler --burst` on a queue of its own, once before and
   once after the SMS phase (the baseline is their mean). Ratio: texts/s over no-op jobs/s. For
   comparison only, --forking-jobs no-op jobs (os.getpid: already imported, so only the fork is
   measured) on RQ's default forking Worker.
   Rates are given two ways: "window" (for the pipeline: the first event the relay handled -> the last
   text received; for the baseline: first job started -> last job ended, from RQ's job timestamps:
   start-up excluded) and "wall" (process launched -> done, start-up included). The ratio uses the
   window rates.
4. Latency with an idle worker: with the relay and the worker running and idle, M times: log a call and
   start triage, wait until the pipeline has handled those events, wait --spacing, then refer to DN and
   time from the refer's commit returning to the emulator's receipt of that referral's text (both
   time.monotonic() in this process). Prints p50 / p99 and the stages from RQ's job timestamps.
5. Prints a table and the verdicts: texts/s >= 0.5 x no-op jobs/s; p50 < 250 ms. The verdict is
   reported; only --check turns it into an exit status.

The relay, the worker and the emulator are always stopped; the database is dropped and Redis db 14
emptied afterwards (--keep keeps both). On Linux it also reports CPU milliseconds per text spent in the
worker, the relay, PostgreSQL, Redis and this process (the emulator), and what else the machine did.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if not __package__:  # run as `python bench/sms.py`: the repository (bench.common, ipoa, tests), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# the standard library only, like this module's own imports (the RQ worker imports bench.sms.noop)
from bench.common import (  # noqa: E402
    BIN,
    BenchError,
    CpuMeter,
    Process,
    Sandbox,
    add_sandbox_options,
    call_body,
    clean_env,
    flask,
    percentile,
    release,
    run_lock,
    wait_for_worker,
)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_sms_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "postgres", "template0", "template1"}
FORBIDDEN_REDIS_DBS = {0, 15}
SANDBOX = Sandbox("ipoa_sms_bench", FORBIDDEN_DATABASES, 14, FORBIDDEN_REDIS_DBS)
NOOP_QUEUE = "bench-noop"
NOOP_PATH = "bench.sms.noop"
SID, TOKEN, FROM = "AC" + "5" * 32, "bench-auth-token", "+447700900999"
MOBILE, MOBILE_E164 = "07700900201", "+447700900201"
RATE_GOAL, P50_GOAL_MS = 0.5, 250.0


def noop() -> None:
    """The baseline's job: imported by the RQ worker as bench.sms.noop (keep this module's top level
    free of anything but the standard library)."""


# ------------------------------------------------------------------------------------------------ load

def referral_body(n: int) -> dict:
    """The test suite's intake body (tests/conftest.py call_payload), an invented person with an NHS
    number from the never-issued 999 range; the same person each time (allow_duplicate)."""
    return call_body("community_nursing", f"Bench referral {n}: needs a district nurse visit today.")


class App:
    """The service layer in this process, on the benchmark's database and Redis."""

    def __init__(self, env: dict[str, str]):
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMS_BACKEND",
                                               "PUBLIC_BASE_URL")})
        os.environ["SMS_BACKEND"] = "console"  # this process never sends: the worker does
        from ipoa import create_app
        from ipoa.service import calls

        self.app = create_app()
        self.svc = self.app.extensions["ipoa"]
        self.calls = calls
        self.actor = calls.Actor(username="bench.handler", role="handler", centre="CNH")
        self.n = 0

    def log_and_triage(self):
        self.n += 1
        call = self.calls.log_call(self.svc, self.actor, referral_body(self.n), allow_duplicate=True)
        self.calls.fire_call_trigger(self.svc, self.actor, call.ref, {"trigger": "start_triage",
                                                                        "expected_version": 1})
        return call.ref

    def refer(self, ref: str):
        return self.calls.fire_call_trigger(self.svc, self.actor, ref, {
            "trigger": "refer", "expected_version": 2, "data": {"service": "DN"}})

    def counts(self) -> dict[str, int]:
        from sqlalchemy import text

        with self.svc.db.connect() as conn:
            out = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                   for t in ("calls", "referrals", "outbox", "sms_messages")}
            out["outbox_unprocessed"] = conn.execute(
                text("SELECT count(*) FROM outbox WHERE processed_at IS NULL")).scalar_one()
            out["sms_not_queued"] = conn.execute(
                text("SELECT count(*) FROM sms_messages WHERE status <> 'queued'")).scalar_one()
        return out

    def ids(self) -> tuple[dict[str, str], list[str]]:
        """Outbox ids with their topics; text ids."""
        from sqlalchemy import text

        with self.svc.db.connect() as conn:
            return (dict(conn.execute(text("SELECT id, topic FROM outbox")).all()),
                    list(conn.execute(text("SELECT id FROM sms_messages")).scalars()))

    def sent_event_and_text(self, ref: str) -> tuple[str | None, str | None]:
        from sqlalchemy import text

        with self.svc.db.connect() as conn:
            row = conn.execute(text(
                "SELECT o.id, s.id FROM outbox o LEFT JOIN sms_messages s ON s.outbox_id = o.id "
                "WHERE o.topic = 'referral.sent' AND s.call_ref = :ref"), {"ref": ref}).first()
        return (row[0], row[1]) if row else (None, None)

    def first_event_handled(self) -> datetime:
        from sqlalchemy import text

        with self.svc.db.connect() as conn:
            return conn.execute(text("SELECT min(processed_at) FROM outbox")).scalar_one()

    def idle(self) -> bool:
        """Every committed event handled and every text with the gateway, nothing waiting in RQ."""
        from sqlalchemy import text

        with self.svc.db.connect() as conn:
            busy = conn.execute(text(
                "SELECT (SELECT count(*) FROM outbox WHERE processed_at IS NULL)"
                " + (SELECT count(*) FROM sms_messages WHERE status IN ('pending', 'submitting'))")).scalar_one()
        r = self.svc.redis()
        return busy == 0 and r.llen("ipoa:outbox:committed") == 0 and r.llen("rq:queue:ipoa") == 0

    def close(self) -> None:
        self.svc.close()


@dataclass
class JobTimes:
    count: int
    first_start: datetime | None
    last_end: datetime | None
    durations: list[float] = field(default_factory=list)  # seconds, started -> ended
    waits: list[float] = field(default_factory=list)      # seconds, enqueued -> started
    failed: int = 0
    workers: set = field(default_factory=set)             # names of the workers that ran them
    ids: list = field(default_factory=list)


def job_times(conn, job_ids: list[str]) -> JobTimes:
    from rq.job import Job

    jobs = []
    for i in range(0, len(job_ids), 500):
        jobs += Job.fetch_many(job_ids[i:i + 500], connection=conn)
    jobs = [j for j in jobs if j is not None]
    done = [j for j in jobs if j.started_at and j.ended_at]
    failed = sum(1 for j in jobs if j.get_status(refresh=False) == "failed")
    return JobTimes(len(jobs), min((j.started_at for j in done), default=None),
                    max((j.ended_at for j in done), default=None),
                    [(j.ended_at - j.started_at).total_seconds() for j in done],
                    [(j.started_at - j.enqueued_at).total_seconds() for j in done if j.enqueued_at],
                    failed, {j.worker_name for j in done}, [j.id for j in jobs])


def send_job_ids(conn) -> list[str]:
    """Every send job the pipeline ran (single texts and batches), from RQ's registries."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    queue = Queue("ipoa", connection=conn)
    return FinishedJobRegistry(queue=queue).get_job_ids() + FailedJobRegistry(queue=queue).get_job_ids()


def utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


@dataclass
class NoopRun:
    jobs: int
    window_s: float
    wall_s: float
    job_ms_median: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.jobs / self.window_s

    @property
    def wall_rate(self) -> float:
        return self.jobs / self.wall_s


def run_noop(redis_url: str, env: dict[str, str], count: int, log_dir: Path, deadline: float,
             label: str, worker_class: str = "rq.worker.SimpleWorker", func: str = NOOP_PATH) -> NoopRun:
    import redis
    from rq import Queue

    conn = redis.Redis.from_url(redis_url)
    queue = Queue(NOOP_QUEUE, connection=conn)
    ids = []
    with conn.pipeline() as pipe:
        for _ in range(count):
            ids.append(queue.enqueue(func, result_ttl=3600, failure_ttl=3600, pipeline=pipe).id)
        pipe.execute()
    rq_bin = BIN / "rq"
    cmd = ([str(rq_bin)] if rq_bin.exists() else [sys.executable, "-m", "rq.cli"]) + [
        "worker", "-w", worker_class, "--with-scheduler", "--burst", "-u", redis_url, NOOP_QUEUE]
    import resource

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # children reaped so far (this worker, at the end)
        return ru.ru_utime + ru.ru_stime

    meter = CpuMeter({})
    cpu0 = children_cpu()
    before = meter.snapshot()
    worker = Process(f"noop-worker-{label}", cmd, env, log_dir, exit_zero_ok=True)
    try:
        rc = worker.wait(deadline - time.monotonic())
        wall = time.monotonic() - worker.launched
        after = meter.snapshot()
        after["worker"] = children_cpu() - cpu0
        after["other"] = after.get("other", 0.0) - after["worker"]  # it had exited: /proc no longer showed it
        before["worker"] = 0.0
    finally:
        worker.stop()
    if rc != 0:
        raise BenchError(f"the no-op worker exited with {rc}:\n{worker.log_tail()}")
    t = job_times(conn, ids)
    if t.count != count or len(t.durations) != count or t.failed or len(t.workers) != 1:
        raise BenchError(f"no-op run: {len(t.durations)} of {count} jobs finished, {t.failed} failed:\n"
                         f"{worker.log_tail()}\nworkers: {sorted(t.workers)}")
    window = (t.last_end - t.first_start).total_seconds()
    conn.delete(*[f"rq:job:{i}" for i in ids], f"rq:queue:{NOOP_QUEUE}")
    return NoopRun(count, window, wall, statistics.median(t.durations) * 1000, CpuMeter.delta(before, after))


# ------------------------------------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=500, help="referrals (texts) in the throughput phase "
                   "(default: %(default)s)")
    p.add_argument("--latency-samples", type=int, default=50, help="referrals timed one at a time with an "
                   "idle worker (default: %(default)s)")
    p.add_argument("--spacing", type=float, default=0.1, help="seconds of idleness before each timed "
                   "referral (default: %(default)s)")
    add_sandbox_options(p, DATABASE_URL, REDIS_URL, max_seconds=900)
    p.add_argument("--forking-jobs", type=int, default=500, help="no-op jobs for RQ's forking Worker, "
                   "for comparison only; 0 skips it (default: %(default)s)")
    p.add_argument("--emulator-nagle", action="store_true", help="leave Nagle's algorithm on the emulator's "
                   "sockets (adds ~40 ms per send under load: see the comment in main)")
    p.add_argument("--keep", action="store_true", help="keep the database and Redis contents afterwards")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal is not met")
    args = p.parse_args(argv)
    if args.messages < 1 or args.latency_samples < 1:
        p.error("--messages and --latency-samples must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    SANDBOX.check(args.database_url, args.redis_url)

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-sms-bench-"))
    lock = emulator = app = relay = worker = None
    created_db = touched_redis = False
    try:
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds  # from when the machine is ours
        from tests.twilio_emulator import TwilioEmulator, _Handler

        SANDBOX.flush_redis(args.redis_url, say=True)
        touched_redis = True
        SANDBOX.recreate_database(args.database_url)
        created_db = True

        # The emulator answers with two writes (headers, then body). With Nagle's algorithm on its
        # sockets, the body waits for the client's delayed ACK of the headers: about 40 ms per request
        # once requests come back to back (measured: 44 ms median per send, against 3 ms with
        # TCP_NODELAY). That is the emulator's, not the app's nor Twilio's, so by default its sockets
        # get TCP_NODELAY (set on the handler class, in this process only; --emulator-nagle keeps it).
        _Handler.disable_nagle_algorithm = not args.emulator_nagle
        emulator = TwilioEmulator(account_sid=SID, auth_token=TOKEN).start()
        env = clean_env({"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                         "SECRET_KEY": secrets.token_hex(32), "SMS_BACKEND": "twilio",
                         "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": FROM,
                         "TWILIO_API_BASE_URL": emulator.base_url,
                         # status callbacks are never asked of the emulator here; a closed loopback port
                         "PUBLIC_BASE_URL": "http://127.0.0.1:1"})
        flask(env, "init")
        flask(env, "professionals", "add", "Bench Nurse", "--service", "DN", "--mobile", MOBILE)
        # On duty by the rota, all of today and tomorrow (London dates), as a rostering tool's CSV.
        from datetime import timedelta

        from ipoa.domain.calendar import LONDON

        today = datetime.now(UTC).astimezone(LONDON).date()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as rota:
            rota.write("service,date,start,end,professional,role\n" + "".join(
                f"DN,{day},00:00,24:00,{MOBILE},{role}\n" for day in (today, today + timedelta(days=1))
                for role in ("member", "duty_lead")))
        flask(env, "rota", "import", rota.name)
        os.unlink(rota.name)
        print(f"database {args.database_url}\nredis    {args.redis_url}\nemulator {emulator.base_url}  "
              f"(one on-duty DN professional, {MOBILE_E164}: one text per referral; "
              f"TCP_NODELAY {'off' if args.emulator_nagle else 'on'})\n"
              f"cpus     {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the start")

        app = App(env)
        N = args.messages
        t0 = time.monotonic()
        for _ in range(N):
            app.refer(app.log_and_triage())
            if time.monotonic() > deadline:
                raise BenchError("run time limit reached while committing the referrals")
        counts = app.counts()
        events = counts["outbox"]
        print(f"committed {N} referrals ({events} outbox events, {events / N:.1f} per referral) in "
              f"{time.monotonic() - t0:.1f}s; no worker running")

        # -- the baseline, before
        # as many no-op jobs as texts: the rate to compare is texts/s against jobs/s
        noop_before = run_noop(args.redis_url, env, N, tmp, deadline, "before")
        print(f"no-op baseline (before): {noop_before.jobs} jobs, {noop_before.rate:.1f} jobs/s "
              f"(window {noop_before.window_s:.2f}s; wall {noop_before.wall_s:.2f}s with start-up)")

        # -- throughput
        # The worker first, and the relay once the worker listens: the window below starts at the first
        # event the relay handles, so neither process's start-up is in it, and the relay's work is.
        worker = Process("worker", [sys.executable, "-m", "workers.worker"], env, tmp, exit_zero_ok=True)
        wait_for_worker(app.svc.redis(), worker, deadline)
        relay = Process("relay", [sys.executable, "-m", "workers.relay"], env, tmp, exit_zero_ok=True)
        meter = CpuMeter({"worker": worker.pid, "relay": relay.pid})
        cpu_samples = [(datetime.now(UTC), meter.snapshot())]  # every 0.5 s: start-up is left out below
        launched = relay.launched
        while len(emulator.messages) < N:
            relay.check()
            worker.check()
            if time.monotonic() > deadline:
                raise BenchError(f"run time limit reached: {len(emulator.messages)} of {N} texts received\n"
                                 f"worker log:\n{worker.log_tail()}")
            try:
                emulator.wait_for(N, timeout=0.5)
            except AssertionError:  # not yet: check the processes and the time limit
                pass
            cpu_samples.append((datetime.now(UTC), meter.snapshot()))
        cpu_samples.append((datetime.now(UTC), meter.snapshot()))
        received = emulator.messages
        last_receipt = max(m.received_at for m in received)
        first_receipt = min(m.received_at for m in received)
        last_receipt_wall = max(m.received_wall for m in received)
        # let the last send jobs record their outcome before reading RQ's timestamps
        wait_until = time.monotonic() + 30
        while time.monotonic() < wait_until and not app.idle():
            time.sleep(0.05)
        counts = app.counts()
        from ipoa.adapters.rq_queue import SMS_BATCH_SIZE

        conn = app.svc.redis()
        tx = job_times(conn, send_job_ids(conn))
        if len({m.to for m in received}) != 1 or len(received) != N or counts["sms_messages"] != N:
            raise BenchError(f"expected {N} texts to {MOBILE_E164}; the emulator has {len(received)}, "
                             f"the database {counts['sms_messages']}")
        if len(tx.workers) != 1:
            raise BenchError(f"jobs were run by {len(tx.workers)} workers, not one: is another "
                             f"worker using {args.redis_url}? {sorted(tx.workers)}")
        if counts["outbox_unprocessed"] or tx.failed:
            raise BenchError(f"unfinished work: {counts}; failed send jobs: {tx.failed}")
        first_handled = app.first_event_handled()
        # CPU from the last sample before the first event handled (start-up left out) to the end
        cpu_from = max((x for x in cpu_samples if x[0] <= utc(first_handled)), key=lambda x: x[0],
                       default=cpu_samples[0])
        cpu_from_wall = cpu_from[0]
        cpu = CpuMeter.delta(cpu_from[1], cpu_samples[-1][1])
        cpu_seconds = (cpu_samples[-1][0] - cpu_from_wall).total_seconds()
        window = (utc(last_receipt_wall) - utc(first_handled)).total_seconds()
        # re-sends the relay's sweep made (job ids sms-<id>-r<time>): texts merely waiting in a long queue
        # look stuck to it after 120 s
        resends = sum(1 for j in tx.ids if "-r" in j)
        swept = [line.split(" relay swept ", 1)[1] for line in relay.log_tail(10_000).splitlines()
                 if " relay swept " in line]
        jobs_run = tx.count
        boot = (utc(first_handled) - relay.launched_wall).total_seconds()
        wall = last_receipt - launched
        sms_rate, jobs_rate = N / window, jobs_run / window

        # -- the baseline, after
        noop_after = run_noop(args.redis_url, env, N, tmp, deadline, "after")
        print(f"no-op baseline (after):  {noop_after.jobs} jobs, {noop_after.rate:.1f} jobs/s "
              f"(window {noop_after.window_s:.2f}s; wall {noop_after.wall_s:.2f}s with start-up)")
        noop_rate = statistics.mean([noop_before.rate, noop_after.rate])
        forking = None
        if args.forking_jobs:
            # os.getpid, not bench.sms.noop: a forking worker imports the job's module again in every
            # work horse (the parent never imports it), which would cost it more than the fork
            forking = run_noop(args.redis_url, env, args.forking_jobs, tmp, deadline, "forking",
                               worker_class="rq.worker.Worker", func="os.getpid")
            print(f"no-op (os.getpid) on RQ's forking Worker, for comparison: {forking.jobs} jobs, "
                  f"{forking.rate:.1f} jobs/s")
        noop_wall_rate = statistics.mean([noop_before.wall_rate, noop_after.wall_rate])

        # -- latency with an idle worker
        M = args.latency_samples
        samples: list[tuple[float, datetime, str, datetime]] = []  # (seconds, commit, ref, receipt)
        emulator.reset()
        for i in range(M):
            ref = app.log_and_triage()
            wait_until = time.monotonic() + 30
            while not app.idle():
                if time.monotonic() > min(wait_until, deadline):
                    raise BenchError("the pipeline did not go idle after a call was logged")
                time.sleep(0.01)
            time.sleep(args.spacing)
            before = len(emulator.messages)
            app.refer(ref)
            t_commit = time.monotonic()
            commit_wall = datetime.now(UTC)
            try:
                emulator.wait_for(before + 1, timeout=min(30.0, max(0.1, deadline - time.monotonic())))
            except AssertionError:
                raise BenchError(f"sample {i + 1}: no text within 30s\n{worker.log_tail()}") from None
            msg = next(m for m in emulator.messages if ref in m.body)
            samples.append((msg.received_at - t_commit, commit_wall, ref, msg.received_wall))
        lat = [s[0] for s in samples]
        # stages, from RQ's timestamps (wall clock, same machine)
        stages: dict[str, list[float]] = {k: [] for k in (
            "commit -> send job enqueued (relay)", "send job waiting", "send job start -> Twilio receipt",
            "send job running")}
        wait_until = time.monotonic() + 10
        while time.monotonic() < wait_until and not app.idle():
            time.sleep(0.05)
        from rq.job import Job

        for _, commit_wall, ref, recv_wall in samples:
            eid, sid = app.sent_event_and_text(ref)
            if not eid or not sid:
                continue
            sj = Job.fetch(f"sms-{sid}", connection=conn)
            stages["commit -> send job enqueued (relay)"].append((utc(sj.enqueued_at) - commit_wall).total_seconds())
            stages["send job waiting"].append((sj.started_at - sj.enqueued_at).total_seconds())
            stages["send job start -> Twilio receipt"].append((utc(recv_wall) - utc(sj.started_at)).total_seconds())
            stages["send job running"].append((sj.ended_at - sj.started_at).total_seconds())

        # -- report
        ratio = sms_rate / noop_rate
        p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
        print()
        print(f"{'':<34} {'count':>6} {'per s':>8} {'window s':>9} {'wall s':>8} {'wall per s':>10}")
        print(f"{'no-op jobs, before':<34} {noop_before.jobs:>6} {noop_before.rate:>8.1f} "
              f"{noop_before.window_s:>9.2f} {noop_before.wall_s:>8.2f} {noop_before.wall_rate:>10.1f}")
        print(f"{'no-op jobs, after':<34} {noop_after.jobs:>6} {noop_after.rate:>8.1f} "
              f"{noop_after.window_s:>9.2f} {noop_after.wall_s:>8.2f} {noop_after.wall_rate:>10.1f}")
        if forking:
            print(f"{'no-op jobs, forking Worker (*)':<34} {forking.jobs:>6} {forking.rate:>8.1f} "
                  f"{forking.window_s:>9.2f} {forking.wall_s:>8.2f} {forking.wall_rate:>10.1f}")
        print(f"{'SMS pipeline: texts received':<34} {N:>6} {sms_rate:>8.1f} {window:>9.2f} {wall:>8.2f} "
              f"{N / wall:>10.1f}")
        print(f"{'SMS pipeline: all jobs':<34} {jobs_run:>6} {jobs_rate:>8.1f} {window:>9.2f} {wall:>8.2f} "
              f"{jobs_run / wall:>10.1f}")
        if forking:
            print("  (*) for comparison only: RQ's default Worker forks a work horse per job")
        print(f"  send jobs {tx.count} (median {statistics.median(tx.durations) * 1000:.1f} ms each, up to "
              f"{SMS_BATCH_SIZE} texts per job); "
              f"no-op job median {statistics.median([noop_before.job_ms_median, noop_after.job_ms_median]):.2f} ms")
        print(f"  relay start-up (launch -> first event handled) {boot:.2f}s; first text received "
              f"{first_receipt - launched:.2f}s after the relay's launch; {events} events handled by the relay "
              f"({events / N:.1f} per text) in the same window")
        print(f"  send jobs' own run time: {sum(tx.durations):.2f}s of the {window:.2f}s window "
              f"({sum(tx.durations) / window:.0%}); the rest is RQ's own work per job "
              f"(dequeue, registries, heartbeat, result) and any wait for work")
        print(f"  the relay's sweep: {len(swept)} sweep(s) that found work"
              + (f" ({'; '.join(swept[:3])}{' ...' if len(swept) > 3 else ''})" if swept else "")
              + f"; extra send jobs it queued: {resends}")
        if cpu:
            parts = [k for k in cpu if k != "other"]
            busy = sum(v for k, v in cpu.items())
            print(f"  CPU over {cpu_seconds:.1f}s from the first job: {busy:.1f}s busy of "
                  f"{cpu_seconds * (os.cpu_count() or 1):.1f}s on {os.cpu_count()} cpus")
            print("  CPU ms per text during the SMS phase: "
                  + ", ".join(f"{k} {cpu[k] / N * 1000:.2f}" for k in parts)
                  + (f"; other work on the machine {cpu['other'] / N * 1000:.2f}" if "other" in cpu else ""))
            nb = noop_before.cpu
            if nb:
                print("  CPU ms per no-op job (before): "
                      + ", ".join(f"{k} {nb[k] / noop_before.jobs * 1000:.2f}" for k in nb if k != "other")
                      + (f"; other {nb['other'] / noop_before.jobs * 1000:.2f}" if "other" in nb else ""))
        print()
        print(f"ratio texts/s / no-op jobs/s:          {ratio:.2f}   goal >= {RATE_GOAL}: "
              f"{'met' if ratio >= RATE_GOAL else 'NOT met'}")
        print(f"  ({jobs_run} send jobs for {N} texts: {N / jobs_run:.1f} texts per job)")
        print(f"(with start-up, wall: texts/s {N / wall:.1f} / no-op {noop_wall_rate:.1f} = "
              f"{N / wall / noop_wall_rate:.2f})")
        print()
        print(f"latency commit -> Twilio receipt, idle worker, {len(lat)} samples: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, min {min(lat) * 1000:.1f}, max {max(lat) * 1000:.1f}   goal p50 < "
              f"{P50_GOAL_MS:.0f} ms: {'met' if p50 < P50_GOAL_MS else 'NOT met'}")
        print("  stages (median / p99 ms, RQ timestamps):")
        for k, v in stages.items():
            if v:
                print(f"    {k:<38} {percentile(v, 50) * 1000:7.1f} / {percentile(v, 99) * 1000:7.1f}")
        for p in (relay, worker):
            p.check()
        print(f"\n{time.monotonic() - started:.0f}s in all")
        met = ratio >= RATE_GOAL and p50 < P50_GOAL_MS
        return 1 if args.check and not met else 0
    except BenchError as exc:
        print(f"\nbench/sms.py: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        for p in (worker, relay):
            if p is not None:
                p.stop()
        if emulator is not None:
            emulator.stop()
        if app is not None:
            app.close()
        if not args.keep:
            SANDBOX.clean_up(args.database_url if created_db else None, args.redis_url if touched_redis else None)
        release(lock, tmp)


if __name__ == "__main__":
    sys.exit(main())
