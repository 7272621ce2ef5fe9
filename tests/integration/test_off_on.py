"""OFF / ON by SMS over the signed Twilio webhook (issue 13 point 6): a professional on a shift texts OFF and
is not texted referrals until the shift ends or they text ON; the duty lead is told; each change is one unit
of work with its availability_changed security event and acts once per MessageSid.

The clock starts on Monday 23 November 2026, 10:00 (GMT: London time is UTC)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from xml.etree import ElementTree

from sqlalchemy import select, update

from ipoa.adapters.orm import outbox, professionals, security_events, sms_messages
from ipoa.service import rotas
from ipoa.service.professionals import add_professional
from tests.helpers.sms import IDENTIFIERS, drain, referred_call
from tests.integration import test_twilio_sms as twilio

twilio_app, emulator = twilio.twilio_app, twilio.emulator
NIA, NED, SAM = "+447700900201", "+447700900202", "+447700900210"
DIRECTORY_DN_LEAD = "+447700900104"
MONDAY, TUESDAY = 0, 1
NEUTRAL = "IPOA could not act on this message"


def inbound(emulator, svc, body, **kw) -> tuple[int, str]:
    """The webhook's status and the text of its TwiML answer ('' for none)."""
    status, twiml = twilio.inbound(emulator, svc, body, **kw)
    found = ElementTree.fromstring(twiml).find("Message") if twiml else None
    return status, (found.text or "") if found is not None else ""


def day_shift(svc, members, duty_lead=None, weekday=MONDAY, start=time(8), end=time(20)) -> int:
    return rotas.add_pattern_shift(svc, "test", service="DN", weekday=weekday, start=start, end=end,
                                   members=members, duty_lead=duty_lead, label="day")


def people(svc, *, ned=True, sam=True):
    found = {"nia": add_professional(svc, name="Nia Nurse", service="DN", mobile=NIA)}
    if ned:
        found["ned"] = add_professional(svc, name="Ned Nurse", service="DN", mobile=NED)
    if sam:
        found["sam"] = add_professional(svc, name="Sam Lead", service="DN", mobile=SAM)
    return found


def unavailable_until(svc, professional_id):
    with svc.uow() as uow:
        return uow.session.scalar(select(professionals.c.unavailable_until)
                                  .where(professionals.c.id == professional_id))


def availability_events(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).where(security_events.c.kind == "availability_changed")
                                   .order_by(security_events.c.seq)).all()


def texts_to(emulator, number):
    return [m.body for m in emulator.messages if m.to == number]


def referral_texted_to(twilio_app, svc, emulator, handler_actor) -> list[str]:
    """Who a DN referral sent now is texted."""
    before = len(emulator.messages)
    call = referred_call(svc, handler_actor, service="DN")
    drain(twilio_app, svc)
    return sorted(m.to for m in emulator.messages[before:] if call.ref in m.body)


def test_off_on_a_shift_marks_them_unavailable_until_it_ends_and_tells_the_duty_lead(
        twilio_app, svc, emulator, handler_actor, caplog):
    caplog.set_level(logging.INFO)
    who = people(svc)
    day_shift(svc, [who["nia"], who["ned"]], duty_lead=who["sam"])
    status, answer = inbound(emulator, svc, " off. ", sid="SM" + "1" * 32)
    assert status == 200
    assert answer == "You are marked unavailable until 20:00. Text ON when you are back."
    assert unavailable_until(svc, who["nia"]) == datetime(2026, 11, 23, 20, 0, tzinfo=UTC)

    (event,) = availability_events(svc)
    assert (event.actor, event.subject) == ("sms:Nia Nurse", "DN")
    assert event.detail == {"change": "off", "until": "2026-11-23T20:00:00+00:00", "professional_id": who["nia"]}
    assert NIA not in str(tuple(event)) and "900201" not in str(tuple(event))

    drain(twilio_app, svc)
    assert texts_to(emulator, SAM) == ["Nia Nurse (DN) texted OFF and is unavailable until 20:00."]
    # A referral sent now goes to the other professional on duty, not to Nia.
    assert referral_texted_to(twilio_app, svc, emulator, handler_actor) == [NED]
    # No number and no patient identifier in the log lines of any of it.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "900201" not in logged and "900210" not in logged
    assert not any(secret in body for secret in IDENTIFIERS for body in texts_to(emulator, SAM))


def test_the_only_one_on_duty_texts_off_the_duty_lead_gets_the_referrals_then_on_brings_them_back(
        twilio_app, svc, emulator, handler_actor):
    who = people(svc, ned=False)
    day_shift(svc, [who["nia"]], duty_lead=who["sam"])
    inbound(emulator, svc, "OFF")
    drain(twilio_app, svc)
    assert texts_to(emulator, SAM) == ["Nia Nurse (DN) texted OFF and is unavailable until 20:00. Nobody else is "
                                       "on duty: new referral texts now go to you."]
    assert referral_texted_to(twilio_app, svc, emulator, handler_actor) == [SAM]

    svc.clock.advance(minutes=45)
    status, answer = inbound(emulator, svc, "On")
    assert status == 200 and answer == "Welcome back. You are available again and will be texted new DN referrals."
    assert unavailable_until(svc, who["nia"]) is None
    drain(twilio_app, svc)
    assert texts_to(emulator, SAM)[-1] == "Nia Nurse (DN) is back (texted ON)."
    assert [e.detail["change"] for e in availability_events(svc)] == ["off", "on"]
    assert availability_events(svc)[-1].detail["until"] is None
    assert referral_texted_to(twilio_app, svc, emulator, handler_actor) == [NIA]


def test_off_when_not_on_a_shift_stores_nothing(twilio_app, svc, emulator, handler_actor, clock):
    who = people(svc)
    day_shift(svc, [who["nia"]], duty_lead=who["sam"])
    clock.set(datetime(2026, 11, 23, 21, 0, tzinfo=UTC))  # the day shift ended at 20:00
    status, answer = inbound(emulator, svc, "OFF")
    assert status == 200 and "not have you on a shift now" in answer and "nothing was changed" in answer
    assert unavailable_until(svc, who["nia"]) is None and availability_events(svc) == []
    with svc.uow() as uow:
        assert uow.session.scalar(select(outbox.c.id).where(outbox.c.topic == "professional.availability_changed")) \
            is None
    # ON without an OFF: a polite answer, nothing stored either.
    status, answer = inbound(emulator, svc, "ON")
    assert status == 200 and answer.startswith("You are not marked unavailable")
    assert availability_events(svc) == []
    drain(twilio_app, svc)
    assert emulator.messages == []


def test_the_same_webhook_twice_acts_once(twilio_app, svc, emulator, handler_actor):
    who = people(svc)
    day_shift(svc, [who["nia"], who["ned"]], duty_lead=who["sam"])
    first = inbound(emulator, svc, "OFF", sid="SM" + "2" * 32)
    again = inbound(emulator, svc, "OFF", sid="SM" + "2" * 32)
    assert first == again and "unavailable until 20:00" in first[1]
    assert len(availability_events(svc)) == 1
    drain(twilio_app, svc)
    assert len(texts_to(emulator, SAM)) == 1
    # A second OFF (another message) within the same shift changes nothing more, and says where they stand.
    _, answer = inbound(emulator, svc, "OFF", sid="SM" + "3" * 32)
    assert "unavailable until 20:00" in answer and len(availability_events(svc)) == 1
    drain(twilio_app, svc)
    assert len(texts_to(emulator, SAM)) == 1


def test_after_the_shift_ends_they_are_texted_again_at_their_next_shift(
        twilio_app, svc, emulator, handler_actor, clock):
    who = people(svc, ned=False)
    day_shift(svc, [who["nia"]], duty_lead=who["sam"])
    day_shift(svc, [who["nia"]], duty_lead=who["sam"], weekday=TUESDAY)
    inbound(emulator, svc, "OFF")
    drain(twilio_app, svc)
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))  # Tuesday's day shift
    assert referral_texted_to(twilio_app, svc, emulator, handler_actor) == [NIA]


def test_overlapping_shifts_the_latest_end_and_the_standing_duty_lead_when_the_shift_has_none(
        twilio_app, svc, emulator, handler_actor):
    who = people(svc)
    day_shift(svc, [who["nia"], who["ned"]], duty_lead=None)
    rotas.add_pattern_shift(svc, "test", service="DN", weekday=MONDAY, start=time(9), end=time(8),
                            members=[who["nia"]], label="long")  # to Tuesday 08:00
    rotas.set_standing_duty_lead(svc, "test", "DN", who["sam"])
    _, answer = inbound(emulator, svc, "OFF")
    assert answer == "You are marked unavailable until Tue 24 Nov 08:00. Text ON when you are back."
    assert unavailable_until(svc, who["nia"]) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    drain(twilio_app, svc)
    assert texts_to(emulator, SAM) == ["Nia Nurse (DN) texted OFF and is unavailable until Tue 24 Nov 08:00."]


def test_a_duty_lead_texting_off_is_not_told_themself_the_directory_duty_lead_is(
        twilio_app, svc, emulator, handler_actor):
    who = people(svc, sam=False)
    day_shift(svc, [who["nia"], who["ned"]], duty_lead=who["nia"])
    _, answer = inbound(emulator, svc, "OFF")
    assert "unavailable until 20:00" in answer
    drain(twilio_app, svc)
    assert texts_to(emulator, NIA) == []
    assert texts_to(emulator, DIRECTORY_DN_LEAD) == ["Nia Nurse (DN) texted OFF and is unavailable until 20:00."]
    with svc.uow() as uow:
        (row,) = uow.session.execute(select(sms_messages).where(sms_messages.c.to == DIRECTORY_DN_LEAD)).all()
    assert (row.template, row.recipient_kind, row.referral_id) == ("availability_off", "duty_lead", None)


def test_a_deactivated_professional_or_a_stranger_gets_the_neutral_answer(twilio_app, svc, emulator):
    who = people(svc)
    day_shift(svc, [who["nia"], who["ned"]], duty_lead=who["sam"])
    with svc.uow() as uow:
        uow.session.execute(update(professionals).where(professionals.c.id == who["nia"]).values(active=False))
        uow.commit()
    for sender in (NIA, "+447700900555"):
        for body in ("OFF", "ON"):
            status, answer = inbound(emulator, svc, body, from_=sender)
            assert status == 200 and NEUTRAL in answer
    assert unavailable_until(svc, who["nia"]) is None and availability_events(svc) == []
