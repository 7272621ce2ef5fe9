"""Queue figures per centre and per service, and the workflow diagrams with live counts."""
from __future__ import annotations

from typing import Any

from ..adapters import queries
from ..adapters.orm import calls, referrals
from ..domain.engine import CALL_WORKFLOW, REFERRAL_WORKFLOW


def _state_sets(svc, name: str) -> tuple[set[str], set[str]]:
    """(open, waiting) states across every deployed version of a workflow."""
    defs = [d for d in svc.engine().definitions() if d.name == name]
    open_states = {s.name for d in defs for s in d.states.values() if not s.final}
    waiting = {s.name for d in defs for s in d.states.values() if s.waiting}
    return open_states, waiting


def queue_stats(svc) -> dict[str, Any]:
    now = svc.clock.now()
    call_open, call_waiting = _state_sets(svc, CALL_WORKFLOW)
    ref_open, ref_waiting = _state_sets(svc, REFERRAL_WORKFLOW)
    with svc.uow() as uow:
        by_centre = queries.counts_by(uow.session, calls, calls.c.centre, calls.c.queued_at,
                                      call_open, call_waiting, now)
        by_service = queries.counts_by(uow.session, referrals, referrals.c.service, referrals.c.sent_at,
                                       ref_open, ref_waiting, now)
    empty = {"counts": {}, "total": 0, "oldest_wait_seconds": None}
    return {
        "generated_at": now.isoformat(),
        "centres": [
            {"code": c.code, "name": c.name, "open_now": c.calendar.is_open(now),
             **by_centre.get(c.code, empty)}
            for c in svc.directory.centres.values()],
        "services": [
            {"code": s.code, "name": s.name, "open_now": s.calendar.is_open(now),
             **by_service.get(s.code, empty)}
            for s in svc.directory.services.values()],
    }


def centre_queue(svc, centre: str) -> list:
    call_open, _ = _state_sets(svc, CALL_WORKFLOW)
    with svc.uow() as uow:
        return queries.centre_queue(uow.session, centre, call_open)


def workflow_diagram(svc, name: str) -> str:
    engine = svc.engine()
    definition = engine.latest(name)
    with svc.uow() as uow:
        counts = (queries.call_state_counts(uow.session) if name == CALL_WORKFLOW
                  else queries.referral_state_counts(uow.session))
    return definition.mermaid(counts)
