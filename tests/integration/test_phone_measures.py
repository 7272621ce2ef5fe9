"""The telephony measures' read model (adapters/phone_measure_queries.py) and use cases
(service/phone_measures.py, the reports' and the dashboard's), over phone legs written by the real webhook use
cases (service/phone_calls.py) and a callback made through the call workflow: SQLite here, PostgreSQL with
TEST_DATABASE_URL."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ipoa.adapters.orm import calls
from ipoa.domain.reporting.period import Period, Scope
from ipoa.service import calls as call_service
from ipoa.service import dashboard, phone_measures, reports
from tests.helpers.phone_measures import answer as _answer
from tests.helpers.phone_measures import hang_up as _hang_up
from tests.helpers.phone_measures import queued
from tests.helpers.voice import ASC_LINE, CNH_LINE, leg

NUMBERS = iter(f"+4477009{n:05d}" for n in range(1, 99999))


def _queued(svc, n: int, line=CNH_LINE, caller: str | None = "next") -> str:
    return queued(svc, n, next(NUMBERS) if caller == "next" else caller, line)


def _a_morning(svc, clock, handler_actor):
    """At CNH: one answered after 30 s, one after 61 s, one abandoned after 40 s and called back 10 minutes
    later, one abandoned from a withheld number, one who hung up after 3 s, one still waiting; and ASC's
    caller answered after 20 s. Returns the abandoned caller's call ref."""
    quick, slow, gone = (_queued(svc, n) for n in range(1, 4))
    withheld = _queued(svc, 4, caller=None)
    short = _queued(svc, 5)
    asc = _queued(svc, 6, line=ASC_LINE)
    clock.advance(seconds=3)
    _hang_up(svc, short)
    clock.advance(seconds=17)
    _answer(svc, asc)
    clock.advance(seconds=10)
    _answer(svc, quick)                      # 30 s
    clock.advance(seconds=10)
    _hang_up(svc, gone)                      # 40 s: abandoned, a callback call made
    _hang_up(svc, withheld)
    clock.advance(seconds=21)
    _answer(svc, slow)                       # 61 s
    waiting = _queued(svc, 7)
    ref = leg(svc, gone).call_ref
    assert ref is not None and leg(svc, withheld).call_ref is None and leg(svc, waiting).outcome is None
    clock.advance(minutes=10)
    with svc.uow() as uow:
        version = uow.session.execute(select(calls.c.version).where(calls.c.ref == ref)).scalar_one()
    call_service.fire_call_trigger(svc, handler_actor, ref, {"trigger": "call_back", "expected_version": version})
    return ref


def test_the_period_legs_and_callbacks_give_each_centres_measures(svc, clock, handler_actor):
    start = clock.now()
    _a_morning(svc, clock, handler_actor)
    clock.advance(seconds=50)  # the waiting caller has waited 10 min 50 s
    now = clock.now()
    with svc.uow() as uow:
        cnh = phone_measures.for_period(svc, uow, start, now + timedelta(seconds=1), "CNH", now)
        every = phone_measures.for_period(svc, uow, start, now + timedelta(seconds=1), None, now)
        rows = uow.phone_measures.period_legs(start, now, "CNH")
        before = phone_measures.for_period(svc, uow, start - timedelta(hours=1), start, "CNH", now)
    assert (cnh.offered, cnh.answered, cnh.answered_within, cnh.abandoned, cnh.short_abandons,
            cnh.still_waiting) == (6, 2, 1, 2, 1, 1)
    assert (cnh.to_call_back, cnh.called_back_in_time, cnh.withheld) == (1, 1, 1)
    assert cnh.average_speed_to_answer == (30 + 61) / 2
    assert cnh.longest_wait_seconds == 10 * 60 + 50
    assert (every.offered, every.answered, every.answered_within) == (7, 3, 2)
    assert before.offered == 0
    # The measures never read the caller's number.
    assert all("caller_number" not in row._fields for row in rows)


def test_a_callback_made_after_the_promise_is_not_in_time(svc, clock, handler_actor):
    start = clock.now()
    sid = _queued(svc, 1)
    clock.advance(seconds=30)
    _hang_up(svc, sid)
    ref = leg(svc, sid).call_ref
    clock.advance(minutes=20, seconds=1)
    with svc.uow() as uow:
        version = uow.session.execute(select(calls.c.version).where(calls.c.ref == ref)).scalar_one()
    call_service.fire_call_trigger(svc, handler_actor, ref, {"trigger": "call_back", "expected_version": version})
    with svc.uow() as uow:
        m = phone_measures.for_period(svc, uow, start, clock.now(), "CNH", clock.now())
    assert (m.abandoned, m.to_call_back, m.called_back_in_time) == (1, 1, 0)


def test_the_report_and_the_board_carry_the_periods_phone_measures(svc, clock, handler_actor):
    _a_morning(svc, clock, handler_actor)
    day = clock.now().date()
    report = reports.build_report(svc, Period(day, day), Scope(centre="CNH"))
    assert report.phone is not None and (report.phone.offered, report.phone.abandoned) == (6, 2)
    assert reports.build_report(svc, Period(day, day), Scope(service="DN")).phone is None
    _, previous, rows = reports.board_view(svc, Period(day, day), Scope(centre="CNH"))
    assert previous.phone is not None and previous.phone.offered == 0
    phone_rows = {r.metric: r for r in rows if r.metric.startswith(("Phone", "Average", "Abandoned"))}
    assert phone_rows["Phone calls answered within 60 s"].current_text == "50.0%"
    assert phone_rows["Phone calls abandoned"].rag == "red"  # 2 of 6


def test_the_dashboard_shows_todays_measures_per_centre_with_a_line(svc, clock, handler_actor):
    yesterday = _queued(svc, 99)
    clock.advance(seconds=30)
    _hang_up(svc, yesterday)
    clock.advance(days=1)
    _a_morning(svc, clock, handler_actor)
    lines = {line.code: line for line in dashboard.figures(svc).phone}
    assert set(lines) >= {"CNH", "ASC"}
    cnh = lines["CNH"]
    assert (cnh.measures.offered, cnh.measures.abandoned) == (6, 2)  # not yesterday's caller
    judged = {v.key: v for v in cnh.verdicts}
    assert judged["answered_within_60s"].met is False and judged["abandoned"].met is False
    assert judged["abandoned_called_back"].met is True
    assert lines["ASC"].measures.answered_within == 1
