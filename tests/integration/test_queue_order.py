"""The handler's queue, in the service layer, on the database: a call whose SLA clock has run out (breached,
or overdue and not yet fired) is at the top, then promised callbacks now due, then most urgent, then
longest waiting (ipoa/service/work_queues.centre_queue_rows); and the call page's live status
(ipoa/service/call_status.py): the access policy's answer, no access event, no identifier."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ipoa.adapters import orm
from ipoa.service import call_status, work_queues
from ipoa.service import calls as call_service
from ipoa.service import timers as timer_service
from ipoa.service.calls import Actor
from ipoa.service.errors import NotFound, OutsideRelationship
from tests.helpers import DEFAULT_NOW
from tests.helpers.clocks import timer_id
from tests.helpers.web import advance, fire_as_service, load, logged, referred

HANDLER = Actor("handler", "handler", "CNH")


def order(svc) -> list[str]:
    return [row.call.ref for row in work_queues.centre_queue_rows(svc, "CNH")]


def test_a_call_whose_clock_ran_out_rises_to_the_top_and_the_rest_keep_their_order(svc, clock):
    routine = logged(svc, urgency="routine")  # triage within 4 open hours
    same_day = logged(svc, urgency="same_day")  # within 1 h: 11:00
    urgent = logged(svc, urgency="urgent")  # within 15 min: 10:15
    clock.set(DEFAULT_NOW + timedelta(minutes=1))  # waiting a minute less than the other routine call
    promised = logged(svc, urgency="routine")
    advance(svc, promised, "start_triage")
    advance(svc, promised, "promise_callback", data={"callback_at": (DEFAULT_NOW + timedelta(minutes=30)).isoformat()})
    clock.set(DEFAULT_NOW + timedelta(minutes=20))
    emergency = logged(svc, urgency="emergency")  # within 5 min: 10:25
    # 10:20: only the urgent call's clock has run out; it tops the queue ahead of the emergency.
    assert order(svc) == [urgent, emergency, same_day, routine, promised]

    # 10:31: the emergency's clock has run out too, and the promised callback is due (its clock escalates at
    # 10:45). The two that ran out come first, in the usual order among themselves (most urgent first),
    # then the due callback, then the rest by urgency.
    clock.set(DEFAULT_NOW + timedelta(minutes=31))
    rows = work_queues.centre_queue_rows(svc, "CNH")
    assert [r.call.ref for r in rows] == [emergency, urgent, promised, same_day, routine]
    assert [(r.overdue, r.callback_due) for r in rows] == [
        (True, False), (True, False), (False, True), (False, False), (False, False)]

    # Fired (breached) or only overdue, the same place; the row knows which.
    assert timer_service.fire(svc, timer_id(svc, urgent, "triage")) == "breached"
    rows = work_queues.centre_queue_rows(svc, "CNH")
    assert [r.call.ref for r in rows] == [emergency, urgent, promised, same_day, routine]
    assert [(r.call.ref, r.clock.breached) for r in rows[:2]] == [(emergency, False), (urgent, True)]

    # Referred: its triage clock stops (the breach stays on the record) and the referral's acceptance clock
    # (30 min) has not run out, so the call takes its usual place.
    advance(svc, urgent, "start_triage")
    advance(svc, urgent, "refer", data={"service": "CRT"})
    assert order(svc) == [emergency, promised, urgent, same_day, routine]
    assert load(svc, urgent).breach == "triage"

    # The due callback's own clock runs out (10:45): among the calls that ran out, a due callback first.
    clock.set(DEFAULT_NOW + timedelta(minutes=46))
    assert order(svc) == [promised, emergency, urgent, same_day, routine]


def _access_events(svc) -> int:
    with svc.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(orm.access_events)).scalar_one()


def test_the_live_status_of_a_call_is_the_policys_to_give_and_is_not_a_view_of_the_record(svc, users):
    ref, rid = referred(svc)
    call = load(svc, ref)
    history_seq = call_status.last_event_seq(call_service.get_call(svc, ref)[1])  # what an open page shows
    status = call_status.call_status(svc, HANDLER, ref, history_seq)
    assert (status.state, status.urgency, status.centre) == ("referred", call.urgency, "CNH")
    assert [(r.id, r.service, r.state) for r in status.referrals] == [(rid, "CRT", "sent")]
    assert [(c.kind, c.referral_id) for c in status.clocks] == [("acceptance", rid)]
    assert status.edition == call_status.edition(call) and status.changes == []
    assert _access_events(svc) == 0  # asking is not a view of the record

    # Nothing that names the person: not among the fields, not among the values.
    fields = {f.name for f in dataclasses.fields(status)} | {f.name for f in dataclasses.fields(status.referrals[0])}
    assert not fields & {"given_name", "family_name", "nhs_number", "date_of_birth", "postcode", "address_line_1",
                         "caller_name", "caller_phone", "summary", "outcome_reason"}
    assert not {call.given_name, call.family_name, call.nhs_number, call.summary} & set(map(str, _values(status)))

    # The receiving service accepts: the edition moves, and the change is named (without its reason).
    fire_as_service(svc, ref, rid, "accept")
    status = call_status.call_status(svc, HANDLER, ref, history_seq)
    assert status.edition != call_status.edition(call)
    assert [(c.entity, c.service, c.trigger, c.to_state, c.actor) for c in status.changes] == [
        ("referral", "CRT", "accept", "accepted", "professional")]
    assert status.referrals[0].state == "accepted"

    # The access policy, as for the page: another centre's handler is refused; no such call is not found.
    with pytest.raises(OutsideRelationship):
        call_status.call_status(svc, Actor("handler.asc", "handler", "ASC"), ref)
    with pytest.raises(NotFound):
        call_status.call_status(svc, HANDLER, "ZZZZ-ZZZZ")
    assert _access_events(svc) == 0


def _values(obj) -> list:
    """Every plain value inside the status, however deep."""
    if dataclasses.is_dataclass(obj):
        return [v for f in dataclasses.fields(obj) for v in _values(getattr(obj, f.name))]
    if isinstance(obj, (list, tuple)):
        return [v for item in obj for v in _values(item)]
    return [obj]
