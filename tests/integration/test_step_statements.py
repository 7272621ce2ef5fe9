"""A persisted workflow step's statements (issue 14, point 1; bench/engine.py counts them), on a real database:
the audit chain's head moved by one UPDATE ... RETURNING when this process's last head is still the head,
and rightly after another writer's head when it is not; a call read with its referrals in one SELECT; the
break-glass grant read only when the relationship alone does not decide. Same chains, same decisions, same
access events."""
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select

from ipoa.adapters import audit_store, orm
from ipoa.domain.model import SecurityEvent
from ipoa.service import calls as call_service
from ipoa.service import records
from ipoa.service.calls import Actor
from ipoa.service.errors import OutsideRelationship
from tests.helpers.web import advance, fire_as_service, in_triage, load, logged, referred

SUPERVISOR = Actor("step.supervisor", "supervisor", "CNH")
ELSEWHERE = Actor("step.asc", "handler", "ASC")


@contextmanager
def statements(svc) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, *_):
        seen.append(" ".join(statement.split()).upper())

    event.listen(svc.db, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(svc.db, "before_cursor_execute", count)


def on(table: str, seen: list[str]) -> list[str]:
    return [s for s in seen if re.search(rf"\b{table.upper()}\b", s)]


def verified(svc) -> dict[str, int]:
    out = {}
    with svc.uow() as uow:
        for chain in ("audit", "access", "security"):
            problem, n = audit_store.verify_chain(uow.session, chain)
            assert problem is None, str(problem)
            out[chain] = n
    return out


def head(svc, chain: str = "audit"):
    with svc.uow() as uow:
        return uow.session.execute(select(orm.audit_chain_heads.c.seq, orm.audit_chain_heads.c.hash)
                                   .where(orm.audit_chain_heads.c.chain == chain)).one()


def sign_in_event(svc) -> None:
    with svc.uow() as uow:
        uow.add_event(SecurityEvent(at=svc.clock.now(), kind="sign_in", actor="step.handler"))
        uow.commit()


def test_a_step_moves_the_chain_head_in_one_statement(svc):
    ref = in_triage(svc)  # the head has been moved by this process: its next move is one statement
    before = head(svc).seq
    with statements(svc) as seen:
        advance(svc, ref, "refer", data={"service": "CRT"})
    heads = on("audit_chain_heads", seen)
    assert all("RETURNING" in s for s in heads)
    if svc.db.dialect.name == "postgresql":
        # each event numbered, hashed and inserted in a statement of its own that moves the head by one
        assert len(heads) == head(svc).seq - before == 2
        assert all(s.startswith("WITH CHAIN_HEAD AS (INSERT INTO AUDIT_CHAIN_HEADS") for s in heads)
        assert [s for s in seen if "INSERT INTO AUDIT_EVENTS" in s] == heads
    else:
        assert len(heads) == 1 and heads[0].startswith("UPDATE")
    chain = verified(svc)["audit"]
    assert chain > 2 and head(svc).seq == chain
    with svc.uow() as uow:
        assert uow.session.execute(select(orm.timers.c.kind).where(
            orm.timers.c.call_ref == ref, orm.timers.c.stopped_at.is_(None))).scalars().all() == ["acceptance"]


def test_a_head_another_writer_moved_is_locked_read_and_followed(svc):
    """Another process (here: this one's last head put back as it was) moved the head since: the events are
    hashed again after the head as it stands, and the chain holds. (On PostgreSQL the database hashes each
    event after the head as it stands, whatever this process last saw: one statement.)"""
    ref = logged(svc)
    stale = dict(audit_store._last_head)
    advance(svc, ref, "start_triage")  # the other writer
    audit_store._last_head.clear()
    audit_store._last_head.update(stale)
    with statements(svc) as seen:
        advance(svc, ref, "refer", data={"service": "CRT"})
    moves = [s.split()[0] for s in on("audit_chain_heads", seen)]
    assert moves == (["WITH", "WITH"] if svc.db.dialect.name == "postgresql" else ["UPDATE", "UPDATE"])
    chain = verified(svc)["audit"]
    assert chain > 2 and head(svc).seq == chain


def test_a_rolled_back_unit_of_work_leaves_no_event_and_no_gap(svc):
    sign_in_event(svc)
    with svc.uow() as uow:  # numbered and the head moved, then rolled back: this process's guess is ahead
        uow.add_event(SecurityEvent(at=svc.clock.now(), kind="sign_in", actor="step.handler"))
        uow.session.flush()
        audit_store.append(uow.session, uow._chained)
    assert head(svc, "security").seq == 1
    sign_in_event(svc)
    assert verified(svc)["security"] == 2 and head(svc, "security").seq == 2


def test_a_chain_emptied_under_the_guess_starts_afresh(svc):
    sign_in_event(svc)
    sign_in_event(svc)
    with svc.db.begin() as conn:  # a head row missing beside no events: a new database
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(orm.security_events.delete())
        conn.execute(orm.audit_chain_heads.delete().where(orm.audit_chain_heads.c.chain == "security"))
    sign_in_event(svc)
    assert verified(svc)["security"] == 1 and head(svc, "security").seq == 1


def test_a_call_is_read_with_its_referrals_in_one_select(svc):
    ref, rid = referred(svc)
    with statements(svc) as seen, svc.uow() as uow:
        call = uow.calls.get(ref)
        assert call is not None and [r.id for r in call.referrals] == [rid]
        assert [r.service for r in call.referrals] == ["CRT"]
    assert len([s for s in seen if s.startswith("SELECT")]) == 1
    with svc.uow() as uow:
        fresh = uow.calls.get(in_triage(svc))
        assert fresh is not None and fresh.referrals == []


def test_a_stale_version_is_still_refused_after_the_joined_read(svc):
    ref, rid = referred(svc)
    version = load(svc, ref).referrals[0].version
    fire_as_service(svc, ref, rid, "accept")
    with pytest.raises(call_service.VersionConflict):
        call_service.fire_referral_trigger(
            svc, Actor("professional", "professional", None, "CRT"), ref, rid,
            {"trigger": "start", "expected_version": version}, as_service="CRT")


def test_the_relationship_decides_without_reading_grants(svc):
    ref, rid = referred(svc)
    with statements(svc) as seen:
        fire_as_service(svc, ref, rid, "accept")  # authorise and _may_fire: own service
        records.view_call(svc, SUPERVISOR, ref, route="test")  # view, act and view_access_log: own centre
    # The grants a page lists (break_glass.for_call) are still read; this user's live grant is not.
    assert [s for s in on("break_glass_grants", seen) if "EXPIRES_AT >" in s] == []
    assert load(svc, ref).referrals[0].state == "accepted"
    with svc.uow() as uow:
        (row,) = uow.session.execute(select(orm.access_events.c.purpose, orm.access_events.c.grant_id)).all()
    assert tuple(row) == ("own_centre", None)


def test_break_glass_is_still_read_and_recorded_when_the_relationship_refuses(svc):
    ref = in_triage(svc)
    with pytest.raises(OutsideRelationship) as refused:
        records.view_call(svc, ELSEWHERE, ref, route="test")
    assert refused.value.break_glass
    grant = records.break_glass(svc, ELSEWHERE, ref, {"reason": "safeguarding_concern"}, route="test")
    records.view_call(svc, ELSEWHERE, ref, route="test again")
    with svc.uow() as uow:
        rows = uow.session.execute(select(orm.access_events.c.purpose, orm.access_events.c.grant_id)
                                   .order_by(orm.access_events.c.seq)).all()
    assert [tuple(r) for r in rows] == [("break_glass", grant.id)] * 2
    with statements(svc) as seen:  # the grant is what lets them act: read once
        call_service.fire_call_trigger(svc, ELSEWHERE, ref, {"trigger": "refer", "data": {"service": "CRT"},
                                                             "expected_version": load(svc, ref).version})
    assert len(on("break_glass_grants", seen)) == 1
    assert load(svc, ref).state != "in_triage" and verified(svc)["access"] == 2


# Calls saved by what changed (adapters/repository.py): one UPDATE per changed row, with its version check.

def test_a_step_writes_only_the_rows_that_changed_with_their_version_check(svc):
    ref, rid = referred(svc)
    with statements(svc) as seen:
        fire_as_service(svc, ref, rid, "accept")  # the referral changes; the call does not
    # (On PostgreSQL the UPDATE is in a statement that fails unless it updated the row: prepared.one_row_or_fail.)
    assert not [s for s in seen if "UPDATE CALLS" in s], seen
    (update,) = [s for s in seen if "UPDATE REFERRALS" in s]
    assert "REFERRALS.VERSION =" in update.split("WHERE", 1)[1]
    after = load(svc, ref)
    assert after.state == "referred" and after.referrals[0].state == "accepted"
    assert after.referrals[0].version == 2


def test_the_same_call_is_the_same_object_within_a_unit_of_work(svc):
    ref = logged(svc)
    with statements(svc) as seen, svc.uow() as uow:
        first = uow.calls.get(ref)
        assert first is not None and uow.calls.get(ref) is first
    assert len([s for s in seen if s.startswith("SELECT")]) == 1
    with svc.uow() as uow:
        assert uow.calls.get("NO-SUCH-REF") is None


def test_a_change_saved_by_another_unit_of_work_first_is_a_version_conflict_and_nothing_is_written(svc):
    ref = logged(svc)
    with svc.uow() as slow:
        mine = slow.calls.get(ref)
        assert mine is not None
        slow.session.rollback()  # its read done (SQLite's BEGIN IMMEDIATE would hold the other writer back)
        advance(svc, ref, "start_triage")  # another unit of work moves the call on and commits
        mine.summary, mine.version = "Changed by a stale copy.", mine.version + 1
        with pytest.raises(call_service.VersionConflict):
            slow.commit()
    after = load(svc, ref)
    assert after.state == "in_triage" and after.summary != "Changed by a stale copy."


def test_a_new_json_value_and_a_new_referral_are_saved_and_a_removed_referral_is_refused(svc):
    ref, rid = referred(svc)
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        assert call is not None
        call.route = {"service": "CRT", "changed": True}
        call.version += 1
        uow.commit()
    assert load(svc, ref).route == {"service": "CRT", "changed": True}
    with svc.uow() as uow:
        call = uow.calls.get(ref)
        assert call is not None
        call.referrals.clear()
        call.version += 1
        with pytest.raises(RuntimeError, match="referrals are never deleted"):
            uow.commit()
    assert [r.id for r in load(svc, ref).referrals] == [rid]


def test_a_process_whose_first_use_of_the_database_is_reading_a_call_reads_its_referrals(svc):
    """The mappers are configured when they are started, not at the first ORM query: CallRepository.get
    sets the referrals through the relationship's attribute (a worker's first read, say)."""
    ref, rid = referred(svc)
    script = (
        "import sys\n"
        "from ipoa.bootstrap import Services\n"
        "s = Services(database_url=sys.argv[1], redis_url='redis://127.0.0.1:1/0', workflows_dir=sys.argv[2])\n"
        "with s.uow() as uow:\n"
        "    call = uow.calls.get(sys.argv[3])\n"
        "    print(call.state, [r.id for r in call.referrals])\n")
    from tests.conftest import WORKFLOWS

    done = subprocess.run([sys.executable, "-c", script, svc.database_url, str(WORKFLOWS), ref],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["referred", f"['{rid}']"]


def test_a_clock_started_and_stopped_in_one_unit_of_work_never_runs(svc):
    """Two changes recorded in one transaction (a route taken with its plain step first): a clock the first
    starts and the second stops is not written, and a clock running before is closed at commit."""
    from datetime import timedelta

    from ipoa.domain.engine import Result
    from ipoa.domain.model import Timer

    ref = logged(svc)
    now = svc.clock.now()
    started = Timer(kind="callback", call_ref=ref, referral_id=None, due_at=now + timedelta(minutes=20),
                    set_at_version=1, rule="test", created_at=now)
    with svc.uow() as uow:
        uow.calls.get(ref)
        uow.record(Result(timers=[started]))
        uow.record(Result(stopped_clocks=[(ref, None, "callback", now), (ref, None, "triage", now)]))
        uow.commit()
    with svc.uow() as uow:
        rows = uow.session.execute(select(orm.timers.c.kind, orm.timers.c.outcome)
                                   .where(orm.timers.c.call_ref == ref)).all()
    assert sorted(rows) == [("triage", "stopped")]  # the call's triage clock, from logging, closed
