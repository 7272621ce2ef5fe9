"""The chains on a real database: every use case's events are numbered without gaps in commit order, and
writers racing from threads (PostgreSQL: really concurrent) never fork or break a chain."""
from __future__ import annotations

import threading

from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.adapters.audit_store import verify_chain
from ipoa.domain.model import SecurityEvent
from ipoa.service import calls as call_service
from ipoa.service import records
from ipoa.service.calls import Actor
from tests.conftest import call_payload

CNH = Actor("chain.handler", "handler", "CNH")


def verified(svc) -> dict[str, int]:
    out = {}
    with svc.uow() as uow:
        for chain in ("audit", "access", "security"):
            problem, n = verify_chain(uow.session, chain)
            assert problem is None, str(problem)
            out[chain] = n
    return out


def test_use_cases_extend_the_chains(svc):
    call = call_service.log_call(svc, CNH, call_payload(), allow_duplicate=True)
    call_service.fire_call_trigger(svc, CNH, call.ref, {"trigger": "start_triage", "expected_version": 1})
    records.view_call(svc, CNH, call.ref, route="test")
    with svc.uow() as uow:
        uow.add_event(SecurityEvent(at=svc.clock.now(), kind="sign_in", actor="chain.handler"))
        uow.commit()
    assert verified(svc) == {"audit": 2, "access": 1, "security": 1}
    with svc.uow() as uow:
        seqs = uow.session.scalars(select(orm.audit_events.c.seq).order_by(orm.audit_events.c.seq)).all()
        head = uow.session.execute(select(orm.audit_chain_heads).where(orm.audit_chain_heads.c.chain == "audit")).one()
    assert seqs == [1, 2] and head.seq == 2


def test_a_failed_change_leaves_no_event_and_no_gap(svc):
    call = call_service.log_call(svc, CNH, call_payload(), allow_duplicate=True)
    try:
        call_service.fire_call_trigger(svc, CNH, call.ref, {"trigger": "start_triage", "expected_version": 9})
    except call_service.VersionConflict:
        pass
    call_service.fire_call_trigger(svc, CNH, call.ref, {"trigger": "start_triage", "expected_version": 1})
    assert verified(svc)["audit"] == 2


def test_racing_writers_never_fork_a_chain(svc):
    """Eight threads log calls, move them and view them at once: every event lands in one unbroken chain."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                call = call_service.log_call(svc, CNH, call_payload(), allow_duplicate=True)
                call_service.fire_call_trigger(svc, CNH, call.ref, {"trigger": "start_triage", "expected_version": 1})
                records.view_call(svc, CNH, call.ref, route=f"thread {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert verified(svc) == {"audit": 80, "access": 40, "security": 0}
