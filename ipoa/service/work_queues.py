"""The work queues people see: queue figures per centre and per service, a centre's queue of calls,
the breaches on the dashboard, and the workflow diagrams with live counts. (The background jobs' queue
is RQ's: adapters/rq_queue.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..domain import meaning
from ..domain.engine import CALL_WORKFLOW, REFERRAL_WORKFLOW
from ..domain.model import Call
from ..domain.sla import describe_span
from . import workflow_meaning
from .timers import RunningClock, running_clocks

if TYPE_CHECKING:
    from ..bootstrap import Services
    from .access import Who


def _state_sets(svc: Services, name: str) -> tuple[set[str], set[str]]:
    """(open, waiting) states across every deployed version of a workflow."""
    defs = [d for d in svc.engine().definitions() if d.name == name]
    open_states = {s.name for d in defs for s in d.states.values() if not s.final}
    waiting = {s.name for d in defs for s in d.states.values() if s.waiting}
    return open_states, waiting


def queue_stats(svc: Services) -> dict[str, Any]:
    now = svc.clock.now()
    call_open, call_waiting = _state_sets(svc, CALL_WORKFLOW)
    ref_open, ref_waiting = _state_sets(svc, REFERRAL_WORKFLOW)
    with svc.uow() as uow:
        by_centre = uow.work_queues.counts_by_centre(call_open, call_waiting, now)
        by_service = uow.work_queues.counts_by_service(ref_open, ref_waiting, now)
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


@dataclass(frozen=True)
class QueueRow:
    call: Call
    clock: RunningClock | None  # the call's most urgent running clock (its own or a referral's)
    callback_due: bool  # a promised callback whose time has come: near the top of the queue
    overdue: bool = False  # that clock has run out (breached, or past due and about to be): at the very top


def _callback_states(svc: Services) -> set[str]:
    """Where a call waits for its promised callback: the states tagged `awaiting_callback`, in any deployed
    version (the queue's query takes one set of names; a name means the same in every version unless an
    administrator re-used it, which `workflows check` would show)."""
    return {state for states in workflow_meaning.tagged_by_version(svc, CALL_WORKFLOW,
                                                                   meaning.AWAITING_CALLBACK).values()
            for state in states}


def centre_queue_rows(svc: Services, centre: str) -> list[QueueRow]:
    """A centre's open calls: those whose SLA clock has run out (breached, or overdue and not yet fired)
    first, so a breach is never below the fold at 3am; then promised callbacks now due (earliest promise
    first), then the rest most urgent first, then longest waiting; each with its most urgent running
    clock. Within the calls that ran out, the same order holds (a due callback, then urgency, then wait)."""
    now = svc.clock.now()
    call_open, _ = _state_sets(svc, CALL_WORKFLOW)
    waiting_callback = _callback_states(svc) & call_open
    with svc.uow() as uow:
        due = uow.work_queues.callbacks_due(centre, waiting_callback, now)
        rest = uow.work_queues.centre_queue(centre, call_open)
    due_refs = {c.ref for c in due}
    ordered = due + [c for c in rest if c.ref not in due_refs]
    clocks = running_clocks(svc, [c.ref for c in ordered])
    rows = []
    for c in ordered:
        clock = _most_urgent(clocks.get(c.ref))
        rows.append(QueueRow(call=c, clock=clock, callback_due=c.ref in due_refs,
                             overdue=clock is not None and (clock.breached or clock.overdue(now))))
    # A stable sort: the calls that ran out rise, each group keeping the order above.
    return sorted(rows, key=lambda row: not row.overdue)


def _most_urgent(clocks: list[RunningClock] | None) -> RunningClock | None:
    """The first of a call's running clocks (running_clocks lists the most urgent first), if any run."""
    return clocks[0] if clocks else None


def queue_for(svc: Services, actor: Who, centre: str) -> list[QueueRow]:
    """A centre's queue for a user: the handlers and supervisors of that centre only (the access policy:
    a queue lists the centre's calls). Everyone else sees figures, on the dashboard and GET /queues."""
    from .access import may_see_centre
    from .errors import Forbidden

    if not may_see_centre(actor, centre):
        raise Forbidden(f"You can see the queue of your own centre ({actor.centre or 'none'}) only; the "
                        "supervisor's dashboard shows every centre's figures.")
    return centre_queue_rows(svc, centre)


def centre_queue(svc: Services, centre: str) -> list[Call]:
    """The calls of centre_queue_rows, in its order."""
    return [row.call for row in centre_queue_rows(svc, centre)]


@dataclass(frozen=True)
class BreachRow:
    ref: str
    referral_id: str | None
    clock: str  # triage | acceptance | response | callback
    centre: str
    service: str | None  # a referral's service
    urgency: str
    due_at: datetime
    breached_at: datetime | None
    running: bool  # the clock still runs: the call or referral is still overdue now
    stopped_at: datetime | None
    late_seconds: int  # now (or when the clock stopped) less the due time
    late: str  # "20 min", "1 h 5 min"


def breached_now(svc: Services) -> list[BreachRow]:
    """Open calls and open referrals with a breach: overdue ones (clock still running) first, longest
    overdue first; then those whose clock has since stopped (the breach stays on the record)."""
    now = svc.clock.now()
    call_open, _ = _state_sets(svc, CALL_WORKFLOW)
    ref_open, _ = _state_sets(svc, REFERRAL_WORKFLOW)
    with svc.uow() as uow:
        call_rows, ref_rows, timer_rows = uow.work_queues.breaches(call_open, ref_open)
    latest = {(t.call_ref, t.referral_id, t.kind): t for t in timer_rows}  # ordered: the last wins

    def row(ref: str, referral_id: str | None, kind: str, centre: str, service: str | None, urgency: str,
            breached_at: datetime) -> BreachRow:
        timer = latest.get((ref, referral_id, kind))
        due_at = timer.due_at if timer is not None else breached_at
        running = timer is not None and timer.stopped_at is None
        until = now if timer is None or running else timer.stopped_at
        return BreachRow(ref=ref, referral_id=referral_id, clock=kind, centre=centre, service=service,
                         urgency=urgency, due_at=due_at, breached_at=breached_at, running=running,
                         stopped_at=None if running or timer is None else timer.stopped_at,
                         late_seconds=max(0, int((until - due_at).total_seconds())),
                         late=describe_span(max(until - due_at, timedelta(0))))

    out = [row(r.ref, None, r.breach, r.centre, None, r.urgency, r.breached_at) for r in call_rows]
    out += [row(r.ref, r.id, r.breach, r.centre, r.service, r.urgency, r.breached_at) for r in ref_rows]
    out.sort(key=lambda b: (not b.running, b.due_at))
    return out


def workflow_state_counts(svc: Services, name: str, version: int) -> dict[str, int]:
    """Live records per state on one deployed (name, version), for its diagram."""
    with svc.uow() as uow:
        return uow.work_queues.workflow_state_counts(name, version)
