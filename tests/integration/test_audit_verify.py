"""`flask --app ipoa audit verify` (service/audit.py): the three chains built through real use cases
verify (exit 0); an event changed, deleted (in the middle or the last), inserted or reordered behind the
application's back is found (exit 1), on SQLite and on PostgreSQL. On PostgreSQL the tampering needs the
append-only triggers switched off (`SET session_replication_role = replica`, as a superuser: what someone
with the database owner's rights could do); without that, the database refuses UPDATE, DELETE and
TRUNCATE on the chained tables and any backwards move of a chain head. Every run is recorded in
audit_verifications, and the timer scheduler starts the nightly run (workers/scheduler.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from ipoa.adapters import orm
from ipoa.adapters.audit_store import TABLES, content
from ipoa.domain.audit_chain import canonical, link
from ipoa.domain.model import SecurityEvent
from ipoa.service import audit as audit_service
from ipoa.service import calls as call_service
from ipoa.service import records
from ipoa.service.calls import Actor
from tests.conftest import call_payload

HANDLER = Actor(username="handler", role="handler", centre="CNH")
HANDLER_ASC = Actor(username="handler.asc", role="handler", centre="ASC")
SUPERVISOR = Actor(username="supervisor", role="supervisor", centre="CNH")


# -- a trail built through the use cases ------------------------------------------------------------

def fire(svc, ref: str, trigger: str, **payload) -> None:
    call, _ = call_service.get_call(svc, ref)
    call_service.fire_call_trigger(svc, HANDLER, ref, {"trigger": trigger, "expected_version": call.version,
                                                        **payload})


@pytest.fixture
def trail(svc, users, clock):
    """Two calls logged, triaged and one referred; the records viewed (the page, the API, break-glass by
    another centre's handler); security events (the break-glass review, an operator's). At least three
    events in every chain."""
    refs = []
    for _ in range(2):
        refs.append(call_service.log_call(svc, HANDLER, call_payload(), allow_duplicate=True).ref)
        clock.advance(minutes=1)
    for ref in refs:
        fire(svc, ref, "start_triage")
        clock.advance(minutes=1)
    fire(svc, refs[0], "refer", data={"service": "CRT"}, reason="Known to this service")
    records.view_call(svc, HANDLER, refs[0], "GET /calls/<ref>")
    clock.advance(minutes=1)
    records.view_call(svc, SUPERVISOR, refs[0], "GET /api/v1/calls/<ref>")
    clock.advance(minutes=1)
    grant = records.break_glass(svc, HANDLER_ASC, refs[1], {"reason": "safeguarding_concern"},
                                "POST /calls/<ref>/break-glass")
    clock.advance(minutes=1)
    records.review_break_glass(svc, SUPERVISOR, grant.id, "Checked with the handler: justified.")
    for kind in ("user_created", "token_issued"):
        clock.advance(minutes=1)
        with svc.uow() as uow:
            uow.add_event(SecurityEvent(at=svc.clock.now(), kind=kind, actor="cli:operator", subject="nurse.jo"))
            uow.commit()
    counts = {chain: count(svc, chain) for chain in TABLES}
    assert all(n >= 3 for n in counts.values()), counts
    return refs


def count(svc, chain: str) -> int:
    with svc.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(TABLES[chain])).scalar_one()


def run(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args], catch_exceptions=False)


def runs(svc) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(orm.audit_verifications).order_by(orm.audit_verifications.c.id)).all()


def test_an_intact_trail_verifies_and_the_run_is_recorded(app, svc, trail):
    out = run(app)
    assert out.exit_code == 0, out.output
    for chain in ("audit", "access", "security"):
        assert f"{chain}: {count(svc, chain)} event(s) checked, OK" in out.output
    assert "audit trail intact" in out.output
    (row,) = runs(svc)
    assert row.ok is True and row.by.startswith("cli:") and row.problem is None
    assert row.events == sum(count(svc, c) for c in TABLES)
    assert row.finished_at is not None and row.started_at <= row.finished_at
    assert run(app, "--by", "scheduler").exit_code == 0
    assert runs(svc)[-1].by == "scheduler"


def test_an_empty_database_verifies(app, svc):
    out = run(app)
    assert out.exit_code == 0, out.output
    assert "audit: 0 event(s) checked, OK (head 0 " in out.output  # as the migration leaves it


# -- tampering ---------------------------------------------------------------------------------------

def tamper(svc, *statements) -> None:
    """Change the chained tables behind the application's back. On PostgreSQL the append-only triggers
    are switched off for this transaction: the suite connects as a superuser, as an attacker with the
    owner's rights could."""
    with svc.db.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for stmt in statements:
            conn.execute(stmt)


def row(svc, chain: str, seq: int):
    with svc.uow() as uow:
        return uow.session.execute(select(TABLES[chain]).where(TABLES[chain].c.seq == seq)).one()


def last_seq(svc, chain: str) -> int:
    with svc.uow() as uow:
        return uow.session.execute(select(func.max(TABLES[chain].c.seq))).scalar_one()


def broken(app, svc, chain: str, seq: int, words: str) -> None:
    """`audit verify` exits 1 and names the chain, the event and the problem; the run says so too."""
    out = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert out.exit_code == 1, out.output
    assert f"{chain}: BROKEN at event {seq}: " in out.output, out.output
    assert words in out.output, out.output
    others = [c for c in TABLES if c != chain]
    assert all(f"{c}: " in out.output and f"{c}: BROKEN" not in out.output for c in others)
    last = runs(svc)[-1]
    assert last.ok is False and last.problem.startswith(f"{chain} chain broken at event {seq}: ")


# A changed value per chain: what someone covering their tracks would change.
CHANGE = {"audit": {"actor": "nobody"}, "access": {"username": "nobody"}, "security": {"actor": "nobody"}}
CHAINS = ("audit", "access", "security")


@pytest.mark.parametrize("chain", CHAINS)
def test_an_updated_event_is_found(app, svc, trail, chain):
    table = TABLES[chain]
    at = row(svc, chain, 2).at + timedelta(hours=3)
    tamper(svc, update(table).where(table.c.seq == 2).values(**CHANGE[chain], at=at))
    broken(app, svc, chain, 2, "content or hash does not match")


@pytest.mark.parametrize("chain", CHAINS)
def test_an_updated_event_with_its_hash_recomputed_breaks_the_next_link(app, svc, trail, chain):
    table = TABLES[chain]
    before = row(svc, chain, 1)
    fields = {**content(chain, row(svc, chain, 2)), **CHANGE[chain]}
    forged = link(before.hash, 2, canonical(fields))
    tamper(svc, update(table).where(table.c.seq == 2).values(**CHANGE[chain], hash=forged))
    broken(app, svc, chain, 3, "content or hash does not match")


def test_a_deleted_audit_event_in_the_middle_is_found(app, svc, trail):
    with svc.uow() as uow:
        gone = sorted(uow.session.scalars(select(orm.audit_events.c.seq)
                                          .where(orm.audit_events.c.trigger == "start_triage")))
    assert len(gone) == 2
    tamper(svc, delete(orm.audit_events).where(orm.audit_events.c.trigger == "start_triage"))
    assert gone == [gone[0], gone[0] + 1]  # the two calls were triaged one after the other
    broken(app, svc, "audit", gone[0], f"events {gone[0]}-{gone[1]} are missing (deleted)")


@pytest.mark.parametrize("chain", ["access", "security"])
def test_a_deleted_event_in_the_middle_is_found(app, svc, trail, chain):
    tamper(svc, delete(TABLES[chain]).where(TABLES[chain].c.seq == 2))
    broken(app, svc, chain, 2, "event 2 is missing (deleted)")


@pytest.mark.parametrize("chain", CHAINS)
def test_a_deleted_last_event_is_found(app, svc, trail, chain):
    last = last_seq(svc, chain)
    tamper(svc, delete(TABLES[chain]).where(TABLES[chain].c.seq == last))
    broken(app, svc, chain, last, f"the head records {last} events but only {last - 1} remain")


@pytest.mark.parametrize("chain", CHAINS)
def test_last_events_deleted_with_the_head_moved_back_are_found_by_the_earlier_count(app, svc, trail, chain):
    """Truncation at the end, covered: the last two events deleted and the head moved back to the event
    before them. The chain agrees with itself, but holds fewer events than the last successful run counted
    (docs/audit-and-retention.md, "What the check detects")."""
    assert run(app).exit_code == 0
    last = last_seq(svc, chain)
    kept = row(svc, chain, last - 2)
    tamper(svc, delete(TABLES[chain]).where(TABLES[chain].c.seq > last - 2),
           update(orm.audit_chain_heads).where(orm.audit_chain_heads.c.chain == chain)
           .values(seq=kept.seq, hash=kept.hash))
    out = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert out.exit_code == 1, out.output
    assert "all chains: BROKEN: the chains hold" in out.output and "fewer than the" in out.output, out.output
    assert all(f"{c}: BROKEN" not in out.output for c in CHAINS)  # each chain agrees with itself
    last_run = runs(svc)[-1]
    assert last_run.ok is False and "events deleted at the end" in last_run.problem
    assert audit_service.status(svc).failed is not None  # on the supervisors' exceptions panel


@pytest.mark.parametrize("chain", CHAINS)
def test_an_inserted_event_with_a_plausible_seq_and_hash_is_found(app, svc, trail, chain):
    """A forged event after the last, numbered and hashed exactly as the application would: only the head,
    which the application moves in the same transaction, gives it away."""
    last = row(svc, chain, last_seq(svc, chain))
    fields = {**content(chain, last), **CHANGE[chain]}
    forged = {**fields, "seq": last.seq + 1, "hash": link(last.hash, last.seq + 1, canonical(fields))}
    tamper(svc, insert(TABLES[chain]).values(**forged))
    broken(app, svc, chain, last.seq + 1, "added outside the application (inserted)")


@pytest.mark.parametrize("chain", CHAINS)
def test_an_event_inserted_in_the_middle_is_found(app, svc, trail, chain):
    """Room made at seq 2 by renumbering the later events (numbers up by one, the head too), and a forged
    event hashed onto event 1: the event after it no longer links."""
    table, heads = TABLES[chain], orm.audit_chain_heads
    first = row(svc, chain, 1)
    fields = {**content(chain, row(svc, chain, 2)), **CHANGE[chain]}
    forged = {**fields, "seq": 2, "hash": link(first.hash, 2, canonical(fields))}
    tamper(svc,
           update(table).where(table.c.seq >= 2).values(seq=-table.c.seq),  # two steps: seq is the key
           update(table).where(table.c.seq < 0).values(seq=1 - table.c.seq),
           insert(table).values(**forged),
           update(heads).where(heads.c.chain == chain).values(seq=heads.c.seq + 1))
    broken(app, svc, chain, 3, "content or hash does not match")


@pytest.mark.parametrize("chain", CHAINS)
def test_two_events_with_their_seq_swapped_are_found(app, svc, trail, chain):
    table = TABLES[chain]
    tamper(svc,
           update(table).where(table.c.seq == 2).values(seq=-2),
           update(table).where(table.c.seq == 3).values(seq=2),
           update(table).where(table.c.seq == -2).values(seq=3))
    broken(app, svc, chain, 2, "content or hash does not match")


@pytest.mark.parametrize("chain", CHAINS)
def test_two_events_with_their_times_swapped_are_found(app, svc, trail, chain):
    table = TABLES[chain]
    a, b = row(svc, chain, 1).at, row(svc, chain, 3).at
    assert a != b
    tamper(svc, update(table).where(table.c.seq == 1).values(at=b),
           update(table).where(table.c.seq == 3).values(at=a))
    broken(app, svc, chain, 1, "content or hash does not match")


def test_a_missing_head_is_found_and_nothing_more_is_appended(app, svc, trail):
    tamper(svc, delete(orm.audit_chain_heads).where(orm.audit_chain_heads.c.chain == "security"))
    out = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert out.exit_code == 1 and "security: BROKEN at the head: the chain's head record is missing" in out.output


def test_each_broken_chain_is_reported(app, svc, trail):
    tamper(svc, update(orm.audit_events).where(orm.audit_events.c.seq == 1).values(actor="nobody"),
           delete(orm.security_events).where(orm.security_events.c.seq == 2))
    out = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert out.exit_code == 1
    assert "audit: BROKEN at event 1" in out.output and "security: BROKEN at event 2" in out.output
    assert "access: " in out.output and "access: BROKEN" not in out.output
    assert runs(svc)[-1].problem.count("\n") == 1


def test_events_appended_while_the_walk_runs_are_not_taken_for_inserted_ones(svc, trail, monkeypatch):
    """The walk holds no snapshot: events the application appends meanwhile (head moved with them) are
    left for the next run, not reported as added outside the application."""
    walk = audit_service._rows
    appended = []

    def busy(svc_, chain, upto, counter):
        if not appended:
            appended.append(call_service.log_call(svc, HANDLER, call_payload(), allow_duplicate=True).ref)
        yield from walk(svc_, chain, upto, counter)

    monkeypatch.setattr(audit_service, "_rows", busy)
    before = count(svc, "audit")
    result = audit_service.verify_all(svc, "test")
    assert result.ok, result.problem
    assert result.chains[0].events == before  # the new event waits for the next run
    assert audit_service.verify_all(svc, "test").chains[0].events == before + 1


def test_a_run_that_cannot_finish_is_recorded_as_such(app, svc, trail, monkeypatch):
    def down(*_):
        raise ConnectionError("database went away")

    monkeypatch.setattr(audit_service, "verify_chain", down)
    with pytest.raises(ConnectionError):
        audit_service.verify_all(svc, "scheduler")
    (r,) = runs(svc)
    assert r.finished_at is not None and r.ok is None
    assert r.problem == "The verification could not finish (ConnectionError)."
    # At the command line: exit status 2, not 1 (1 says the trail is broken).
    out = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert out.exit_code == 2 and "could not finish (ConnectionError); nothing was concluded" in out.output


@pytest.mark.parametrize("chain,column", [("access", "at"), ("audit", "data"), ("security", "at")])
def test_an_unreadable_value_is_a_break_at_its_event(app, svc, trail, chain, column):
    """A value changed into something the application cannot read back (text in a time column, broken
    JSON) stops nothing: the event is broken, and the trail is reported broken there (exit status 1), not
    as a run that could not finish. SQLite only: PostgreSQL's typed columns refuse such a value."""
    if svc.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's column types refuse a value that cannot be read back")
    tamper(svc, update(TABLES[chain]).where(TABLES[chain].c.seq == 2)
           .values({column: text("'garbage'")}))
    out = audit_service.verify_all(svc, "cli:test")
    assert not out.ok
    (bad,) = [c for c in out.chains if not c.ok]
    assert (bad.chain, bad.problem.seq) == (chain, 2) and "cannot be read" in bad.problem.problem
    broken(app, svc, chain, 2, "cannot be read")


# -- PostgreSQL: the database itself refuses ------------------------------------------------------

def _postgres(svc) -> None:
    if svc.db.dialect.name != "postgresql":
        pytest.skip("SQLite has no triggers refusing changes to the audit trail (migration 0007 adds them on "
                    "PostgreSQL only); run with TEST_DATABASE_URL=postgresql://...")


def refused(svc, statement) -> str:
    with pytest.raises(DBAPIError) as caught, svc.db.begin() as conn:
        conn.execute(statement)
    return str(caught.value.orig)


@pytest.mark.postgres_only
@pytest.mark.parametrize("chain", CHAINS)
def test_postgres_refuses_update_delete_and_truncate_of_events(svc, trail, chain):
    _postgres(svc)
    table = TABLES[chain]
    before = count(svc, chain)
    message = refused(svc, update(table).where(table.c.seq == 2).values(**CHANGE[chain]))
    assert f"UPDATE on {table.name} refused: the audit trail is append-only" in message
    message = refused(svc, delete(table).where(table.c.seq == 2))
    assert f"DELETE on {table.name} refused" in message
    message = refused(svc, text(f"TRUNCATE {table.name}"))
    assert f"TRUNCATE on {table.name} refused" in message
    assert count(svc, chain) == before
    assert audit_service.verify_all(svc, "test").ok


@pytest.mark.postgres_only
def test_postgres_refuses_to_move_a_chain_head_backwards_or_remove_it(svc, trail):
    _postgres(svc)
    heads = orm.audit_chain_heads
    for chain in CHAINS:
        message = refused(svc, update(heads).where(heads.c.chain == chain).values(seq=heads.c.seq - 1))
        assert "a chain head only moves forward" in message
    assert "a chain head only moves forward" in refused(svc, delete(heads).where(heads.c.chain == "audit"))
    assert "refused" in refused(svc, text("TRUNCATE audit_chain_heads"))
    assert audit_service.verify_all(svc, "test").ok


# -- the nightly run, started by the timer scheduler ----------------------------------------------

class FakeChild:
    def __init__(self):
        self.code = None

    def poll(self):
        return self.code


class Ticks:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_the_scheduler_starts_one_verification_a_night(svc, clock):
    from workers.scheduler import NightlyVerification

    ticks, started = Ticks(), []

    def spawn():
        started.append(FakeChild())
        return started[-1]

    nightly = NightlyVerification(svc, spawn=spawn, check_seconds=60, monotonic=ticks)
    nightly.poll()
    assert started == []  # not in the first minute after the scheduler starts
    ticks.t = 61
    nightly.poll()
    assert len(started) == 1  # the conftest's clock is 10:00: nothing ran since 02:30 today
    for _ in range(5):  # its child still runs: never a second
        ticks.t += 61
        clock.advance(minutes=31)
        nightly.poll()
    assert len(started) == 1
    # It finished and recorded tonight's run: nothing more until tomorrow's 02:30.
    audit_service.verify_all(svc, "scheduler")
    started[0].code = 0
    ticks.t += 61
    nightly.poll()
    assert len(started) == 1
    clock.set(audit_service.tonight(clock.now()) + timedelta(days=1))
    ticks.t += 61
    nightly.poll()
    assert len(started) == 2


def test_a_real_nightly_run_records_itself_as_the_scheduler(svc, trail, monkeypatch):
    """The command line the scheduler starts, run for real against the test database."""
    from workers import scheduler

    monkeypatch.setenv("DATABASE_URL", svc.database_url)
    monkeypatch.setenv("REDIS_URL", svc.redis_url)
    monkeypatch.setenv("SECRET_KEY", "test")
    child = scheduler.spawn_verification()
    try:
        assert child.wait(120) == 0
    finally:
        if child.poll() is None:
            child.kill()
    (r,) = runs(svc)
    assert r.by == "scheduler" and r.ok is True and r.events == sum(count(svc, c) for c in TABLES)
