"""Hand-over at a shift change (issue 13, point 5; service/shift_handover.py): a DN referral sent to the day
shift (08:00-20:00, Day Nurse) and still awaiting acceptance at 20:00 is re-sent to the night shift
(20:00-08:00, Night Nurse) once, audited on the call, whoever runs the job and however often; nobody is
texted twice; and Night Nurse can accept it by replying over the signed webhook."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from ipoa.adapters import handover_store
from ipoa.adapters.orm import audit_events, handover_checks, handover_resends, sms_messages
from ipoa.service import replies, rotas, shift_handover
from ipoa.service.professionals import add_professional
from tests.helpers.sms import IDENTIFIERS, drain, handle_events, referred_call
from tests.helpers.web import fire_as_service, signed_in
from tests.integration import test_twilio_sms as twilio

twilio_app, emulator, inbound = twilio.twilio_app, twilio.emulator, twilio.inbound
DAY, NIGHT, LATE = "+447700900211", "+447700900212", "+447700900213"


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    """An instant in UTC (November: London time is UTC)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def shifts(svc):
    """Every day: DN's day shift 08:00-20:00 (Day Nurse) and night shift 20:00-08:00 (Night Nurse)."""
    day = add_professional(svc, name="Day Nurse", service="DN", mobile=DAY)
    night = add_professional(svc, name="Night Nurse", service="DN", mobile=NIGHT)
    for weekday in range(7):
        rotas.add_pattern_shift(svc, "test", service="DN", weekday=weekday, start=time(8), end=time(20),
                                members=[day], label="day")
        rotas.add_pattern_shift(svc, "test", service="DN", weekday=weekday, start=time(20), end=time(8),
                                members=[night], label="night")
    return {"day": day, "night": night}


def texts(svc, ref):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages.c.to, sms_messages.c.body, sms_messages.c.recipient_kind)
                                   .where(sms_messages.c.call_ref == ref)
                                   .order_by(sms_messages.c.created_at)).all()


def handovers_audited(svc, ref):
    with svc.uow() as uow:
        return uow.session.execute(select(audit_events).where(
            audit_events.c.call_ref == ref, audit_events.c.trigger == shift_handover.TRIGGER)).all()


def resends(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(handover_resends.c.referral_id, handover_resends.c.handover_at)
                                   .order_by(handover_resends.c.handover_at)).all()


def sent_by_day(svc, clock, handler_actor, when=None):
    """A DN referral sent at 19:00 (or `when`), its text made (to whoever is on duty then); the job has
    looked at the rota just after, so its next run starts from there."""
    clock.set(when or at(23, 19))
    call = referred_call(svc, handler_actor, service="DN")
    handle_events(svc)
    clock.advance(seconds=30)
    assert shift_handover.run(svc) == 0
    return call


def test_at_20_00_the_night_nurse_is_texted_once_and_it_is_audited(svc, clock, shifts, handler_actor):
    call = sent_by_day(svc, clock, handler_actor)
    assert [t.to for t in texts(svc, call.ref)] == [DAY]
    clock.set(at(23, 19, 59, 50))
    assert shift_handover.run(svc) == 0  # not yet
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 1
    handle_events(svc)
    found = texts(svc, call.ref)
    assert [(t.to, t.recipient_kind) for t in found] == [(DAY, "on_duty"), (NIGHT, "on_duty")]
    body = found[1].body
    assert f"Reply ACCEPT {call.ref} or DECLINE {call.ref}" in body and "DN" in body and "urgent" in body
    assert "sent 19:00" in body  # when it was first sent
    for identifier in IDENTIFIERS:
        assert identifier.lower() not in body.lower()
    (event,) = handovers_audited(svc, call.ref)
    assert (event.actor, event.entity, event.entity_id, event.from_state, event.to_state) == (
        "system:handover", "referral", call.referrals[0].id, "sent", "sent")
    assert event.reason == "Re-sent at the 20:00 hand-over to Night Nurse (on duty)"
    assert event.data["service"] == "DN" and event.data["handover_at"] == at(23, 20).isoformat()
    assert resends(svc) == [(call.referrals[0].id, at(23, 20))]

    # Again, and again later in the night: nothing more.
    assert shift_handover.run(svc) == 0
    clock.advance(minutes=5)
    assert shift_handover.run(svc) == 0
    handle_events(svc)
    assert len(texts(svc, call.ref)) == 2 and len(handovers_audited(svc, call.ref)) == 1


def test_the_call_page_says_it_was_re_sent_at_the_hand_over(svc, clock, shifts, handler_actor, users, client):
    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 1
    handle_events(svc)
    signed_in(client, "handler")
    page = client.get(f"/calls/{call.ref}").get_data(as_text=True)
    assert "re-sent at the 20:00 hand-over to Night Nurse (on duty)." in page
    assert "texted the professional on duty for DN, Day Nurse." in page  # the first text, as before
    history = page[page.index('id="history-title"'):]
    assert "IPOA (shift hand-over)" in history  # who re-sent it, in the call's history


def test_an_accepted_referral_is_not_re_sent(svc, clock, shifts, handler_actor):
    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 19, 30))
    fire_as_service(svc, call.ref, call.referrals[0].id, "accept")
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 0
    handle_events(svc)
    assert NIGHT not in [t.to for t in texts(svc, call.ref)]
    assert resends(svc) == [] and handovers_audited(svc, call.ref) == []


def test_a_referral_sent_after_the_change_is_not_re_sent_at_it(svc, clock, shifts, handler_actor):
    clock.set(at(23, 19, 59))
    assert shift_handover.run(svc) == 0
    # The job is late (the scheduler was busy): the referral sent at 20:10 went to the night shift.
    clock.set(at(23, 20, 10))
    call = referred_call(svc, handler_actor, service="DN")
    clock.set(at(23, 20, 15))
    assert shift_handover.run(svc) == 0
    assert resends(svc) == []
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [NIGHT]


def test_a_service_with_resend_at_handover_off_is_left_alone(svc, clock, shifts, handler_actor, monkeypatch):
    call = sent_by_day(svc, clock, handler_actor)
    monkeypatch.setitem(svc.directory.services, "DN",
                        replace(svc.directory.services["DN"], resend_at_handover=False))
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 0
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [DAY] and resends(svc) == []
    with svc.uow() as uow:
        assert uow.session.scalar(select(handover_checks.c.checked_until)
                                  .where(handover_checks.c.service == "DN")) == at(23, 19, 0, 30)


def test_the_same_people_on_the_incoming_shift_are_not_texted_again(svc, clock, handler_actor):
    """A 00:00-00:00 pattern joining the next day: the change at midnight brings the same nurse."""
    nurse = add_professional(svc, name="All Day", service="DN", mobile=DAY)
    for weekday in range(7):
        rotas.add_pattern_shift(svc, "test", service="DN", weekday=weekday, start=time(0), end=time(0),
                                members=[nurse], label="all day")
    call = sent_by_day(svc, clock, handler_actor, when=at(23, 23))
    clock.set(at(24, 0, 0, 30))
    assert shift_handover.run(svc) == 0
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [DAY] and resends(svc) == []
    with svc.uow() as uow:  # looked at all the same
        assert uow.session.scalar(select(handover_checks.c.checked_until)) == at(24, 0, 0, 30)


def test_two_runs_racing_re_send_it_once(svc, clock, shifts, handler_actor, monkeypatch):
    """Two schedulers at once: both find the referral waiting before either has recorded anything (on
    PostgreSQL for real; SQLite has the second writer wait for the first), one re-sends it."""
    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 20, 0, 30))
    both_found = threading.Barrier(2)
    waiting = handover_store.HandoverStore.waiting

    def found_then_wait(self, *args, **kw):
        rows = waiting(self, *args, **kw)
        try:
            both_found.wait(timeout=3)
        except threading.BrokenBarrierError:
            pass  # SQLite: the other run waits for this one's transaction
        return rows

    monkeypatch.setattr(handover_store.HandoverStore, "waiting", found_then_wait)
    counts, errors = [], []

    def one_run():
        try:
            counts.append(shift_handover.run(svc))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    runs = [threading.Thread(target=one_run) for _ in range(2)]
    for r in runs:
        r.start()
    for r in runs:
        r.join(60)
    assert errors == [] and sorted(counts) == [0, 1]
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [DAY, NIGHT]
    assert len(handovers_audited(svc, call.ref)) == 1 and len(resends(svc)) == 1


def test_a_scheduler_down_for_hours_catches_up_once(svc, clock, shifts, handler_actor):
    """Down from 19:00 to 21:30, across the 20:00 change and a late shift's 21:00 start: each change is
    looked at once and each of the people now on duty is texted once."""
    late = add_professional(svc, name="Late Nurse", service="DN", mobile=LATE)
    rotas.add_one_off_shift(svc, "test", service="DN", day=at(23, 0).date(), start=time(21), end=time(23),
                            members=[late], label="late")
    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 21, 30))
    assert shift_handover.run(svc) == 1
    handle_events(svc)
    assert sorted(t.to for t in texts(svc, call.ref)) == [DAY, NIGHT, LATE]
    (event,) = handovers_audited(svc, call.ref)
    assert event.reason == "Re-sent at the 20:00 hand-over to Night Nurse and Late Nurse (on duty)"
    assert shift_handover.run(svc) == 0
    clock.advance(minutes=10)
    assert shift_handover.run(svc) == 0
    handle_events(svc)
    assert len(texts(svc, call.ref)) == 3


def test_a_first_run_does_not_catch_up_and_nothing_older_than_a_day_is_looked_at(svc, clock, shifts,
                                                                                   handler_actor):
    clock.set(at(23, 19))
    call = referred_call(svc, handler_actor, service="DN")
    handle_events(svc)
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 0  # the first run ever: it starts from now
    clock.set(at(26, 21))  # down for three days: the last day's changes only (21:00 on the 25th to now)
    assert shift_handover.run(svc) == 1
    assert resends(svc) == [(call.referrals[0].id, at(26, 8))]


def test_the_october_clock_change_hands_over_at_london_wall_clock_times(svc, clock, shifts, handler_actor):
    """Saturday 24 October 2026 20:00 BST is 19:00 UTC; after the clocks go back on Sunday 25 October,
    08:00 GMT is 08:00 UTC."""
    call = sent_by_day(svc, clock, handler_actor, when=at(24, 18, month=10))  # 19:00 BST
    clock.set(at(24, 18, 59, 50, month=10))
    assert shift_handover.run(svc) == 0
    clock.set(at(24, 19, 0, 30, month=10))
    assert shift_handover.run(svc) == 1
    (event,) = handovers_audited(svc, call.ref)
    assert event.reason == "Re-sent at the 20:00 hand-over to Night Nurse (on duty)"
    handle_events(svc)
    # A referral sent at 02:30 GMT on the Sunday, to the night shift.
    clock.set(at(25, 2, 30, month=10))
    night_call = referred_call(svc, handler_actor, service="DN")
    handle_events(svc)
    assert [t.to for t in texts(svc, night_call.ref)] == [NIGHT]
    clock.set(at(25, 7, 59, 50, month=10))
    assert shift_handover.run(svc) == 0
    clock.set(at(25, 8, 0, 30, month=10))
    assert shift_handover.run(svc) == 1  # the night call to Day Nurse; the first has both already
    handle_events(svc)
    assert [t.to for t in texts(svc, night_call.ref)] == [NIGHT, DAY]
    assert resends(svc) == [(call.referrals[0].id, at(24, 19, month=10)),
                            (night_call.referrals[0].id, at(25, 8, month=10))]


def test_the_cli_runs_it_once_and_says_how_many(app, svc, clock, shifts, handler_actor):
    sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 20, 0, 30))
    out = app.test_cli_runner().invoke(args=["rota", "handover"])
    assert out.exit_code == 0 and "re-sent 1 referral(s)" in out.output
    out = app.test_cli_runner().invoke(args=["rota", "handover"])
    assert out.exit_code == 0 and "re-sent 0 referral(s)" in out.output


def test_the_night_nurse_accepts_the_re_sent_referral_by_reply(twilio_app, svc, clock, emulator, shifts,
                                                               handler_actor):
    clock.set(at(23, 19))
    call = referred_call(svc, handler_actor, service="DN")
    drain(twilio_app, svc)
    assert [m.to for m in emulator.wait_for(1)] == [DAY]
    clock.set(at(23, 19, 0, 30))
    assert shift_handover.run(svc) == 0
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 1
    drain(twilio_app, svc)
    texted = emulator.wait_for(2)[1]
    assert texted.to == NIGHT and f"Reply ACCEPT {call.ref}" in texted.body
    status, answer = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=NIGHT, sid="SM" + "h" * 32)
    assert status == 200 and f"{call.ref} now accepted" in answer
    clock.advance(hours=12)  # the 08:00 change: accepted, so nothing goes to the day shift again
    assert shift_handover.run(svc) == 0
    assert resends(svc) == [(call.referrals[0].id, at(23, 20))]


def test_a_hand_over_waits_a_second_look_when_the_scheduler_was_not_due(svc, clock, shifts, handler_actor):
    """Nothing happens between changes, however often the job runs."""
    sent_by_day(svc, clock, handler_actor)
    for minute in range(1, 59, 7):
        clock.set(at(23, 19) + timedelta(minutes=minute))
        assert shift_handover.run(svc) == 0
    assert resends(svc) == []


def test_the_scheduler_loop_re_sends_and_a_failing_look_never_stops_it(svc, clock, shifts, handler_actor,
                                                                        monkeypatch):
    from workers import scheduler

    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 20, 0, 30))
    ticks = {"n": 0}

    def stop():
        ticks["n"] += 1
        return ticks["n"] > 3

    failing = scheduler.ShiftHandovers(svc, run=lambda _svc: 1 / 0, check_seconds=0)
    scheduler.run(svc, tick=0, stop=stop, handovers=failing)  # three ticks, each look failing: still running
    assert ticks["n"] == 4 and resends(svc) == []
    ticks["n"] = 0
    scheduler.run(svc, tick=0, stop=stop, handovers=scheduler.ShiftHandovers(svc))
    assert resends(svc) == [(call.referrals[0].id, at(23, 20))]


@pytest.mark.parametrize(("utc_hour", "words"), [(0, "sent 01:30 BST."), (1, "sent 01:30 GMT.")])
def test_a_referral_text_sent_in_the_repeated_hour_says_which(svc, clock, shifts, handler_actor, utc_hour, words):
    """01:30 happens twice on the October Sunday: the referral's own text says which (domain/date_parts.py)."""
    clock.set(at(25, utc_hour, 30, month=10))
    call = referred_call(svc, handler_actor, service="DN")
    handle_events(svc)
    (text,) = texts(svc, call.ref)
    assert words in text.body


def test_a_hand_over_whose_incoming_shift_cannot_be_texted_logs_that_nobody_can_be(svc, clock, shifts, handler_actor,
                                                                                   monkeypatch, caplog):
    """Night Nurse's number texts STOP after the hand-over chose her and before the relay made her text, and
    DN has no other number to fall back to: the log says nobody can be texted, not that everyone was."""
    caplog.set_level("INFO", logger="ipoa.service.shift_handover")
    call = sent_by_day(svc, clock, handler_actor)
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 1
    assert replies.handle(svc, provider_sid="SMnight-stop", from_number=NIGHT, body="STOP") == ""
    monkeypatch.setitem(svc.directory.services, "DN", replace(svc.directory.services["DN"], duty_lead=None))
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [DAY]
    assert "nobody on duty can be texted" in caplog.text
    assert "already texted" not in caplog.text
    assert untexted(svc) == [(call.ref, "not re-sent at the 20:00 hand-over: nobody on duty for DN could be "
                                        "texted, phone DN instead")]


def untexted(svc):
    from ipoa.domain.rota.recipients import NOBODY

    with svc.uow() as uow:
        rows, _ = uow.rotas.choices_with_step(NOBODY, at(1, 0, month=10), 50)
    return [(r.call_ref, r.reason) for r in rows]


def test_a_hand_over_nobody_on_the_incoming_shift_can_be_texted_at_is_on_the_exceptions_panel(
        svc, clock, shifts, handler_actor, monkeypatch):
    """Night Nurse texted STOP before 20:00 and DN has no other number: the referral is not re-sent, and the
    supervisors' exceptions panel says so, once, for someone to phone the service."""
    call = sent_by_day(svc, clock, handler_actor)
    assert replies.handle(svc, provider_sid="SMnight-stop2", from_number=NIGHT, body="STOP") == ""
    monkeypatch.setitem(svc.directory.services, "DN", replace(svc.directory.services["DN"], duty_lead=None))
    clock.set(at(23, 20, 0, 30))
    assert shift_handover.run(svc) == 1
    assert shift_handover.run(svc) == 0  # once per change
    (event,) = handovers_audited(svc, call.ref)
    words = "not re-sent at the 20:00 hand-over: nobody on duty for DN could be texted, phone DN instead"
    assert event.reason == words[0].upper() + words[1:]
    handle_events(svc)
    assert [t.to for t in texts(svc, call.ref)] == [DAY]
    assert untexted(svc) == [(call.ref, words)]
