"""The audit trail on the supervisor's exceptions panel (/supervisor and its polled fragment): the latest
verification found a break (when, which chain, which event, the problem), or no verification has
succeeded for 48 hours."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy import text as sql

from ipoa.adapters import orm
from ipoa.service import audit as audit_service
from ipoa.service import dashboard as dashboard_service
from tests.helpers.web import block, logged, signed_in, tables, text


def panel(client) -> str:
    return block(text(client.get("/supervisor")), 'id="exceptions-title"', "<section")


def tamper(svc, statement) -> None:
    """Behind the application's back (on PostgreSQL with the append-only triggers off, as a superuser)."""
    with svc.db.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sql("SET LOCAL session_replication_role = replica"))
        conn.execute(statement)


def test_a_broken_chain_shows_on_the_exceptions_panel(client, users, svc, clock):
    for _ in range(3):
        logged(svc)
        clock.advance(minutes=1)
    assert audit_service.verify_all(svc, "scheduler").ok
    tamper(svc, update(orm.audit_events).where(orm.audit_events.c.seq == 2).values(actor="nobody"))
    clock.advance(minutes=10)  # 10:13 UTC = 10:13 in London in November
    assert not audit_service.verify_all(svc, "scheduler").ok

    signed_in(client, "supervisor")
    found = panel(client)
    assert 'id="no-failures"' not in found
    assert "The audit trail is broken." in found
    # Who ran it, in words (the `who` filter, web/people.py), never the bare actor "scheduler".
    assert "The verification that finished 23 Nov 2026 10:13, run by IPOA (nightly check), found events " \
           "changed, deleted, inserted or reordered outside the application." in found
    assert "(scheduler)" not in found
    header, *rows = tables(block(found, 'id="audit-breaks"', "<table"))[0]
    assert header == ["Chain", "Event", "Problem"]
    assert rows == [["audit", "2", "content or hash does not match the chain (changed, inserted or reordered)"]]
    assert 'id="audit-trail-overdue"' not in found  # one succeeded 10 minutes ago
    fragment = text(client.get("/supervisor/dashboard/fragment"))
    assert "The audit trail is broken." in fragment


def test_a_break_in_two_chains_lists_both(client, users, svc, clock):
    logged(svc)
    # Signed in first: a forged event at the end of the security chain takes the number the next sign-in's
    # event needs, so sign-ins fail until the trail is repaired.
    signed_in(client, "supervisor")
    with svc.uow() as uow:
        last = uow.session.execute(select(func.max(orm.security_events.c.seq))).scalar() or 0
    tamper(svc, update(orm.audit_events).where(orm.audit_events.c.seq == 1).values(actor="nobody"))
    tamper(svc, insert(orm.security_events).values(seq=last + 1, hash="0" * 64, at=svc.clock.now(),
                                                   kind="sign_in", actor="nobody", detail={}))
    audit_service.verify_all(svc, "cli:operator")
    found = panel(client)
    assert ", run by IPOA (command line), found" in found and "cli:operator" not in found
    _, *rows = tables(block(found, 'id="audit-breaks"', "<table"))[0]
    assert [r[:2] for r in rows] == [["audit", "1"], ["security", str(last + 1)]]


def test_a_later_successful_verification_clears_the_break(client, users, svc, clock):
    logged(svc)
    with svc.uow() as uow:
        uow.session.execute(insert(orm.audit_verifications).values(
            started_at=svc.clock.now() - timedelta(hours=2), finished_at=svc.clock.now() - timedelta(hours=2),
            by="scheduler", ok=False, events=1, problem="audit chain broken at event 1: content or hash does not "
                                                        "match the chain (changed, inserted or reordered)"))
        uow.commit()
    signed_in(client, "supervisor")
    assert "The audit trail is broken." in panel(client)
    assert audit_service.verify_all(svc, "cli:operator").ok  # repaired (restored from a backup, say)
    assert "The audit trail is broken." not in panel(client)
    found = panel(client)
    assert 'id="no-failures"' in found
    # Nothing has failed, but DN (open 24/7, no rota here) has a gap listed below: the panel does not call
    # itself empty above it.
    assert "Nothing has failed: every referral" in found and "No exceptions" not in found
    assert 'id="gap-DN"' in found


def test_no_successful_verification_for_48_hours_is_a_line_of_its_own(client, users, svc, clock):
    logged(svc)
    assert audit_service.verify_all(svc, "scheduler").ok
    signed_in(client, "supervisor")
    clock.advance(hours=47)
    assert 'id="no-failures"' in panel(client)
    clock.advance(hours=2)
    found = panel(client)
    assert 'id="no-failures"' not in found
    assert "No verification of the audit trail has succeeded in the last 48 hours (last success: " \
           "23 Nov 2026 10:00)." in found
    assert "The audit trail is broken." not in found
    exc = dashboard_service.exceptions(svc)
    assert exc.trail.overdue and exc.trail.failed is None and not exc.empty


def test_a_trail_never_verified_is_overdue_once_it_is_older_than_48_hours(client, users, svc, clock):
    logged(svc)  # a fresh system: nothing to say yet
    signed_in(client, "supervisor")
    assert 'id="no-failures"' in panel(client)
    clock.advance(hours=49)
    assert "(last success: never)" in panel(client)
