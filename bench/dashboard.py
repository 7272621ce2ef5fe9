"""Supervisor dashboard benchmark: the queue figures (`GET /api/v1/queues`) and the live dashboard
fragment over a year's worth of calls, against a plain indexed count through the same app, in one run.

    .venv/bin/python bench/dashboard.py [--closed 1000000] [--open 5000] [--requests 200] [--explain]

What it does, bounded by --max-seconds:

1. Set-up. Takes the benchmarks' lock (the one bench/intake.py, bench/sms.py and bench/timers.py take),
   empties Redis db 11 (its own), drops and recreates the PostgreSQL database `ipoa_dash_bench` (never
   `test`, `ipoa_bench`, `ipoa_sms_bench` or `ipoa_timers_bench`), runs `flask --app ipoa init`, creates
   a supervisor at CNH (`flask --app ipoa users create ... --role supervisor`) and an API token for it.
2. Seeding, in PostgreSQL itself (INSERT ... SELECT FROM generate_series, a fixed random seed):
   --closed calls in final states (closed 90 %, cancelled 10 %) logged over the past year with closed_at
   up to two days later, 40 % of them referred (their referrals completed / declined / withdrawn),
   5 % with a breach and its timer; --open calls logged in the last 8 hours (logged 30 %, in triage 25 %,
   referred 35 %, awaiting callback 5 %, tier 3 review 5 %), each referred one with a referral (sent 45 %,
   accepted 40 %, in progress 15 %), running timers for the clocks that run in those states and ~8 %
   breached (call or referral, with the breached timer). Spread over the 7 centres, the 12 needs, the
   4 urgencies and the 13 services. Then VACUUM ANALYZE.
3. Starts gunicorn (`ipoa:create_app()`, IPOA_BENCH_ENDPOINTS=1) on a free loopback port, signs the
   supervisor in (POST /login with the form's CSRF token) for the HTML endpoints, and times, one request
   at a time (a supervisor's browser polling, not a load test), --requests requests per endpoint per
   round, rounds interleaved in alternating order after a warm-up:
     baseline   GET /api/v1/bench/count   (Bearer; SELECT count(*) FROM calls WHERE state = 'logged')
     queues     GET /api/v1/queues        (Bearer)
     fragment   GET /supervisor/dashboard/fragment (session); if the app has no such endpoint yet,
                GET /supervisor instead, and the table says so
     supervisor GET /supervisor           (session; for reference)
4. Prints median / p90 / p99 per endpoint, each endpoint's median over the baseline's, and the verdict:
   median < 100 ms for queues and the fragment (only --check turns it into an exit status). --explain
   prints EXPLAIN (ANALYZE, BUFFERS) of the queries behind /api/v1/queues.

gunicorn is always stopped; the database is dropped and Redis db 11 emptied afterwards (--keep keeps
them: then `psql ipoa_dash_bench` to look around).
"""
from __future__ import annotations

import argparse
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python bench/dashboard.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchError, Gunicorn, Sandbox, clean_env, flask, percentile, plain_url, release, run_lock  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_dash_bench"
REDIS_URL = "redis://127.0.0.1:6379/11"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "ipoa_sms_bench", "ipoa_timers_bench", "postgres",
                       "template0", "template1"}
# 0: development; 12: bench/timers.py; 14: bench/sms.py; 15: bench/intake.py and the tests
FORBIDDEN_REDIS_DBS = {0, 12, 14, 15}
SANDBOX = Sandbox("ipoa_dash_bench", FORBIDDEN_DATABASES, 11, FORBIDDEN_REDIS_DBS)
USERNAME, CENTRE = "bench.supervisor", "CNH"
GOAL_MS = 100.0
FRAGMENT, SUPERVISOR = "/supervisor/dashboard/fragment", "/supervisor"

CENTRES = ["CNH", "FCP", "ASC", "EDT", "CHS", "MHA", "HFD"]
SERVICES = ["CRT", "OOHV", "CRS", "DN", "ILT", "SCA", "EDT", "SG", "REA", "MHCR", "LB", "FCPW"]
NEEDS = ["information_advice", "mental_health", "urgent_community_health", "community_nursing",
         "social_care_crisis", "safeguarding_concern", "social_care_assessment", "hospital_discharge",
         "long_term_condition", "housing", "wellbeing_prevention", "other"]


# ------------------------------------------------------------------------------------------- seeding

def _arr(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _pick(values: list[str], expr: str) -> str:
    """SQL: one of values, uniformly, by a random() draw."""
    return f"({_arr(values)})[1 + floor({expr} * {len(values)})::int]"


URGENCY = ("CASE WHEN r < 0.04 THEN 'emergency' WHEN r < 0.34 THEN 'urgent' "
           "WHEN r < 0.64 THEN 'same_day' ELSE 'routine' END")


def _calls_insert(first: int, count: int, open_calls: bool) -> str:
    """INSERT ... SELECT over generate_series: ids first .. first+count-1 (ref B<id>)."""
    if open_calls:
        state = ("CASE WHEN s < 0.30 THEN 'logged' WHEN s < 0.55 THEN 'in_triage' WHEN s < 0.90 THEN 'referred' "
                 "WHEN s < 0.95 THEN 'awaiting_callback' ELSE 'in_tier3_review' END")
        logged = "now() - (random() * interval '8 hours')"
        closed = "NULL::timestamptz"
        breach = "CASE WHEN b < 0.08 AND s < 0.55 THEN 'triage' END"
    else:
        state = "CASE WHEN s < 0.90 THEN 'closed' ELSE 'cancelled' END"
        logged = "now() - interval '8 hours' - (random() * interval '365 days')"
        closed = "logged_at + (random() * interval '2 days')"
        breach = "CASE WHEN b < 0.05 THEN (ARRAY['triage', 'callback'])[1 + floor(random() * 2)::int] END"
    return f"""
INSERT INTO calls (id, ref, centre, origin_centre, caller_type, caller_name, caller_phone, nhs_number,
  given_name, family_name, date_of_birth, postcode, locality, out_of_area, need, urgency, summary,
  updates_to, state, workflow, workflow_version, version, logged_at, logged_by, queued_at, updated_at,
  closed_at, breach, breached_at, callback_due, centre_path)
SELECT g, 'B' || lpad(g::text, 8, '0'), centre, centre, caller_type, 'Bench Caller', '07700900000',
  lpad((9990000000 + g % 10000000)::text, 10, '0'), 'Bench', 'Person ' || g,
  date '1930-01-01' + (g % 25000), 'LE11 3AB', NULL, false, need, urgency,
  'Seeded by bench/dashboard.py', NULL, state, 'call', 1, 3, logged_at, 'bench.handler', logged_at,
  coalesce(closed_at, logged_at), closed_at, breach,
  CASE WHEN breach IS NOT NULL THEN logged_at + interval '30 minutes' END,
  CASE WHEN state = 'awaiting_callback' THEN logged_at + (random() * interval '10 hours') END,
  centre  -- centre_path: never transferred
FROM (
  SELECT g, centre, caller_type, need, urgency, state, logged_at, {closed} AS closed_at, {breach} AS breach
  FROM (
    SELECT g, {_pick(CENTRES, 'random()')} AS centre,
      {_pick(['self', 'carer', 'professional', 'family'], 'random()')} AS caller_type,
      {_pick(NEEDS, 'random()')} AS need, {URGENCY} AS urgency, {state} AS state, {logged} AS logged_at, s, b
    FROM (SELECT g, random() AS r, random() AS s, random() AS b
          FROM generate_series({first}, {first + count - 1}) AS g) AS draws
  ) AS picked
) AS rows
"""


def closed_calls(conn, first: int, count: int) -> None:
    """Calls first .. first+count-1 in final states (see the module's docstring), with their finished
    referrals and breach timers; conn: a psycopg connection in autocommit. bench/growth.py grows its
    history with this too."""
    last = first + count - 1
    conn.execute(_calls_insert(first, count, open_calls=False))
    # 40 % were referred; their referrals are finished.
    conn.execute(f"""
INSERT INTO referrals (id, call_id, service, state, workflow, workflow_version, version, sent_at, sent_by,
  updated_at, closed_at, outcome_reason, breach, breached_at)
SELECT md5('r' || c.id), c.id, {_pick(SERVICES, 'random()')},
  CASE WHEN s < 0.80 THEN 'completed' WHEN s < 0.95 THEN 'declined' ELSE 'withdrawn' END,
  'referral', 1, 3, c.logged_at + interval '20 minutes', 'bench.handler', c.closed_at, c.closed_at,
  NULL, NULL, NULL
FROM (SELECT id, logged_at, closed_at, random() AS s, random() AS p FROM calls
      WHERE id BETWEEN {first} AND {last}) AS c
WHERE c.p < 0.40""")
    # Breached and stopped clocks.
    conn.execute(TIMER_INSERT + f"""
SELECT md5('t' || id), breach, ref, NULL, breached_at, 1, 'bench', logged_at, breached_at, breached_at,
  'breached', closed_at
FROM calls WHERE id BETWEEN {first} AND {last} AND breach IS NOT NULL""")


def open_calls(conn, first: int, count: int) -> None:
    """Calls first .. first+count-1 open (see the module's docstring), with their open referrals and
    running (or breached) timers; conn: a psycopg connection in autocommit."""
    last = first + count - 1
    conn.execute(_calls_insert(first, count, open_calls=True))
    # Open referred calls: one open referral each, some breached.
    conn.execute(f"""
INSERT INTO referrals (id, call_id, service, state, workflow, workflow_version, version, sent_at, sent_by,
  updated_at, closed_at, outcome_reason, breach, breached_at)
SELECT md5('r' || id), id, service, state, 'referral', 1, 2, sent_at, 'bench.handler', sent_at, NULL, NULL,
  breach, CASE WHEN breach IS NOT NULL THEN sent_at + interval '1 hour' END
FROM (
  SELECT id, {_pick(SERVICES, 'random()')} AS service, logged_at + interval '10 minutes' AS sent_at,
    CASE WHEN s < 0.45 THEN 'sent' WHEN s < 0.85 THEN 'accepted' ELSE 'in_progress' END AS state,
    CASE WHEN b < 0.08 AND s < 0.45 THEN 'acceptance' WHEN b < 0.08 AND s < 0.85 THEN 'response' END AS breach
  FROM (SELECT id, logged_at, random() AS s, random() AS b FROM calls
        WHERE id BETWEEN {first} AND {last} AND state = 'referred') AS c
) AS r""")
    # Running clocks of open calls (triage: logged / in triage) and open referrals (acceptance: sent;
    # response: accepted); the breached ones fired.
    conn.execute(TIMER_INSERT + f"""
SELECT md5('t' || id), 'triage', ref, NULL, coalesce(breached_at, logged_at + interval '2 hours'), 1,
  'bench', logged_at, breached_at, breached_at, CASE WHEN breach IS NOT NULL THEN 'breached' END, NULL
FROM calls WHERE id BETWEEN {first} AND {last} AND state IN ('logged', 'in_triage')""")
    conn.execute(TIMER_INSERT + f"""
SELECT md5('t' || r.id), CASE WHEN r.state = 'sent' THEN 'acceptance' ELSE 'response' END, c.ref, r.id,
  coalesce(r.breached_at, r.sent_at + interval '4 hours'), 1, 'bench', r.sent_at, r.breached_at,
  r.breached_at, CASE WHEN r.breach IS NOT NULL THEN 'breached' END, NULL
FROM referrals r JOIN calls c ON c.id = r.call_id
WHERE c.id BETWEEN {first} AND {last} AND r.state IN ('sent', 'accepted')""")


TIMER_INSERT = ("INSERT INTO timers (id, kind, call_ref, referral_id, due_at, set_at_version, rule, "
               "created_at, enqueued_at, fired_at, outcome, stopped_at) ")


def seed(database_url: str, closed: int, open_: int) -> dict[str, float]:
    import psycopg

    took: dict[str, float] = {}
    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute("SET synchronous_commit = off")
        t = time.monotonic()
        if closed:
            closed_calls(conn, 1, closed)
        took["closed calls"] = time.monotonic() - t
        t = time.monotonic()
        if open_:
            open_calls(conn, closed + 1, open_)
        conn.execute("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))")
        took["open calls"] = time.monotonic() - t

        t = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.monotonic() - t
    return took


def table_summary(database_url: str) -> str:
    import psycopg

    with psycopg.connect(plain_url(database_url)) as conn:
        def one(sql: str) -> int:
            return conn.execute(sql).fetchone()[0]

        closed = "('closed', 'cancelled')"
        ref_open = "('sent', 'accepted', 'in_progress')"
        return (f"calls {one('SELECT count(*) FROM calls'):,} "
                f"(open {one(f'SELECT count(*) FROM calls WHERE state NOT IN {closed}'):,}, breached open "
                f"{one(f'SELECT count(*) FROM calls WHERE breach IS NOT NULL AND state NOT IN {closed}'):,}); "
                f"referrals {one('SELECT count(*) FROM referrals'):,} "
                f"(open {one(f'SELECT count(*) FROM referrals WHERE state IN {ref_open}'):,}); "
                f"timers {one('SELECT count(*) FROM timers'):,}; "
                f"database {one('SELECT pg_database_size(current_database())') / 2**20:,.0f} MiB")


def explain(database_url: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements behind /api/v1/queues (queries.counts_by), compiled
    by the app's own code so they are the statements it runs."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.dialects import postgresql

    from ipoa.adapters import queries
    from ipoa.adapters.orm import calls, referrals

    captured: list[str] = []

    class Capture:
        def execute(self, stmt):
            captured.append(str(stmt.compile(dialect=postgresql.dialect(),
                                             compile_kwargs={"literal_binds": True})))

            class Empty:
                def all(self):
                    return []
            return Empty()

    from datetime import UTC, datetime
    call_open = {"logged", "in_triage", "in_tier3_review", "awaiting_callback", "transferred", "referred",
                 "resolved", "diverted_999"}
    queries.counts_by(Capture(), calls, calls.c.centre, calls.c.queued_at, call_open, set(), datetime.now(UTC))
    queries.counts_by(Capture(), referrals, referrals.c.service, referrals.c.sent_at,
                      {"sent", "accepted", "in_progress"}, set(), datetime.now(UTC))
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    out = []
    try:
        with engine.connect() as conn:
            for sql in captured:
                plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).scalars().all()
                out.append(sql + "\n" + "\n".join("    " + line for line in plan))
    finally:
        engine.dispose()
    return "\n\n".join(out)


# ------------------------------------------------------------------------------------------- timing

def sign_in(session, base_url: str, password: str) -> None:
    html = session.get(base_url + "/login", timeout=30).text
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise BenchError("no CSRF token on /login")
    resp = session.post(base_url + "/login", data={"username": USERNAME, "password": password,
                                                   "csrf_token": match.group(1)},
                        allow_redirects=False, timeout=30)
    if resp.status_code not in (302, 303):
        raise BenchError(f"sign-in failed: {resp.status_code}")


def time_requests(session, url: str, n: int, deadline: float) -> list[float]:
    out = []
    for _ in range(n):
        if time.monotonic() > deadline:
            raise BenchError("--max-seconds reached while timing")
        t = time.perf_counter()
        resp = session.get(url, timeout=60)
        body = resp.content
        elapsed = time.perf_counter() - t
        if resp.status_code != 200 or not body:
            raise BenchError(f"GET {url}: {resp.status_code} {resp.text[:300]}")
        out.append(elapsed * 1000)
    return out


# --------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DATABASE_URL, help="dropped and recreated (default: %(default)s)")
    p.add_argument("--redis-url", default=REDIS_URL, help="emptied (default: %(default)s)")
    p.add_argument("--closed", type=int, default=1_000_000, help="closed calls (default: %(default)s)")
    p.add_argument("--open", type=int, default=5_000, help="open calls (default: %(default)s)")
    p.add_argument("--requests", type=int, default=200, help="requests per endpoint per round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=20, help="untimed requests per endpoint (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=900, help="give up after (default: %(default)s)")
    p.add_argument("--lock-wait", type=float, default=600, help="wait for the lock up to (default: %(default)s)")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the queues queries")
    p.add_argument("--keep", action="store_true", help="keep the database and Redis db afterwards")
    p.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import requests

    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.max_seconds
    SANDBOX.check(args.database_url, args.redis_url)
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-dash-bench-"))
    password = secrets.token_hex(12)
    env = clean_env({"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                     "IPOA_BENCH_ENDPOINTS": "1", "SECRET_KEY": secrets.token_hex(32),
                     "SMS_BACKEND": "console",
                     # The bench's supervisor signs in with a password alone (no authenticator app).
                     "MFA_REQUIRED_ROLES": ""})
    server: Gunicorn | None = None
    lock = None
    created_db = flushed_redis = False
    try:
        lock = run_lock(args.lock_wait)
        print(f"database {args.database_url}\nredis    {args.redis_url}")
        SANDBOX.flush_redis(args.redis_url)
        flushed_redis = True
        SANDBOX.recreate_database(args.database_url)
        created_db = True
        flask(env, "init")
        flask(env, "users", "create", USERNAME, "--role", "supervisor", "--centre", CENTRE,
              "--password-stdin", input=password + "\n")
        token = flask(env, "users", "token", USERNAME).strip().splitlines()[-1].strip()

        t = time.monotonic()
        took = seed(args.database_url, args.closed, args.open)
        print(f"seeded in {time.monotonic() - t:.1f}s ("
              + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()) + ")")
        print(table_summary(args.database_url))

        server = Gunicorn(env, args.workers, args.threads, tmp)
        server.wait_ready()
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        web = requests.Session()
        sign_in(web, server.url, password)

        has_fragment = web.get(server.url + FRAGMENT, timeout=60).status_code == 200
        endpoints = [
            ("baseline", api, "/api/v1/bench/count?state=logged"),
            ("queues", api, "/api/v1/queues"),
            ("fragment", web, FRAGMENT if has_fragment else SUPERVISOR),
            ("supervisor", web, SUPERVISOR),
        ]
        print(f"gunicorn -w {args.workers} --threads {args.threads} on {server.url}; one request at a "
              f"time, {args.requests} per endpoint per round, {args.rounds} rounds, {args.warmup} warm-up")
        if not has_fragment:
            print(f"NOTE: {FRAGMENT} is not there (yet): the 'fragment' row times {SUPERVISOR} instead")
        for _, session, path in endpoints:
            time_requests(session, server.url + path, args.warmup, deadline)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in endpoints}
        for r in range(args.rounds):
            order = endpoints if r % 2 == 0 else list(reversed(endpoints))
            for name, session, path in order:
                got = time_requests(session, server.url + path, args.requests, deadline)
                samples[name] += got
                print(f"  round {r + 1} {name:<10} median {statistics.median(got):7.1f} ms")
        api.close()
        web.close()
        server.stop()
        log_tail = server.log_tail()
        server = None

        base = statistics.median(samples["baseline"])
        print()
        print(f"{'endpoint':<11} {'path':<34} {'n':>5} {'median':>8} {'p90':>8} {'p99':>8} {'x base':>7}")
        medians = {}
        for name, _, path in endpoints:
            s = sorted(samples[name])
            medians[name] = statistics.median(s)
            p90, p99 = percentile(s, 90, interpolate=True), percentile(s, 99, interpolate=True)
            print(f"{name:<11} {path:<34} {len(s):>5} {medians[name]:>8.1f} {p90:>8.1f} "
                  f"{p99:>8.1f} {medians[name] / base:>7.1f}")
        met = medians["queues"] < GOAL_MS and medians["fragment"] < GOAL_MS
        label = "fragment" if has_fragment else "fragment (timed as /supervisor)"
        print(f"\ngoal: median < {GOAL_MS:.0f} ms for queues ({medians['queues']:.1f}) and {label} "
              f"({medians['fragment']:.1f}): {'met' if met else 'NOT met'}")
        if args.explain:
            print("\nEXPLAIN (ANALYZE, BUFFERS) of /api/v1/queues' statements:\n")
            print(explain(args.database_url))
        if log_tail.strip():
            print(f"\ngunicorn log (tail):\n{log_tail}")
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 1 if args.check and not met else 0
    except BenchError as exc:
        print(f"\nbench/dashboard.py: FAILED: {exc}", file=sys.stderr)
        if server is not None:
            print(f"gunicorn log (tail):\n{server.log_tail()}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            SANDBOX.clean_up(args.database_url if created_db else None, args.redis_url if flushed_redis else None)
        release(lock, tmp)


if __name__ == "__main__":
    sys.exit(main())
