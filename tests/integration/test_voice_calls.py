"""Twilio Voice end to end (issue 15): the Voice emulator plays the caller's side of the real webhook
sequence, signed, against the app on a live local port; the phone legs and the calls made for callbacks are
read back from the database (SQLite here, PostgreSQL with TEST_DATABASE_URL)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from ipoa.adapters.voice_gateway import TwilioVoiceGateway, VoiceGatewayError
from ipoa.adapters.voice_queue_queries import VoiceQueueQueries
from ipoa.domain.telephony.answers import answer_ms
from ipoa.domain.telephony.centre_voice import Overflow
from ipoa.service import call_takers, phone_calls, phone_queue
from ipoa.web.twiml import bridge_twiml
from tests.conftest import VOICE_SID, VOICE_TOKEN
from tests.helpers import make_user
from tests.helpers.voice import (
    ASC_LINE,
    CALLER,
    CHS_LINE,
    CNH_LINE,
    EDT_LINE,
    FCP_LINE,
    OTHER_CALLER,
    all_calls,
    audit_of,
    leg,
    legs,
    taking_calls,
    timers_of,
    with_line,
)
from tests.helpers.web import logged

NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # a Monday, 22:00 in London: ASC and FCP closed
MHA_LINE = "+441632960106"  # the Mental Health Central Access Point's: no menu, straight to the queue
THIRD_CALLER = "+447700900789"


def queued(voice, caller=CALLER, line=CNH_LINE, key="2"):
    call = voice.ring(from_=caller, to=line)
    voice.press(call, key)
    return call


def dialling(svc, dial_to, by):
    """Answer's TwiML builder, as web/phone_pages.answer makes it: the <Dial> naming the answer's instant."""
    return lambda at: bridge_twiml(dial_to, svc.public_base_url, by=by, at=at)


def test_the_caller_hears_the_greeting_and_the_menu_and_waits_in_the_centres_queue(voice, svc):
    call = voice.ring(from_=CALLER, to=CNH_LINE)
    assert call.heard[0] == "Thank you for calling the Clinical Navigation Hub."
    assert "press 1" in call.heard[1] and call.gather_action
    voice.press(call, "2")
    assert call.queue == "CNH"
    assert call.heard[-1] == "You are number 1 in the queue. We will answer you as soon as we can."
    row = leg(svc, call.sid)
    assert (row.centre, row.queue, row.priority, row.caller_type) == ("CNH", "CNH", False, "public")
    assert row.caller_number == CALLER and row.enqueued_at == svc.clock.now() and row.outcome is None


def test_a_professional_is_answered_before_the_public_and_each_is_told_their_place(voice, svc, clock):
    public = queued(voice, CALLER, key="2")
    clock.advance(seconds=30)
    professional = queued(voice, OTHER_CALLER, key="1")
    assert professional.heard[-1].startswith("You are number 1 in the queue.")
    assert voice.wait(public)[0].startswith("You are number 2 in the queue.")
    waiting = phone_queue.waiting_callers(svc, "CNH")
    assert [(w.position, w.call_sid, w.priority) for w in waiting] == [
        (1, professional.sid, True), (2, public.sid, False)]
    assert waiting[1].waited == timedelta(seconds=30)
    assert waiting[0].number_masked == "07700 ••• •456" and OTHER_CALLER not in repr(waiting[0].number_masked)


def test_no_key_twice_queues_the_caller_as_the_public(voice, svc):
    call = voice.ring(from_=CALLER, to=CNH_LINE)
    voice.no_input(call)
    assert call.heard[-2] == "Sorry, that was not one of the choices." and call.queue is None
    voice.no_input(call)
    assert call.queue == "CNH" and leg(svc, call.sid).caller_type == "public"


def test_the_expected_wait_comes_from_the_queues_recent_answered_calls(voice, svc, clock):
    first = queued(voice)
    clock.advance(seconds=150)
    assert phone_calls.answered(svc, first.sid, "handler")
    second = queued(voice, OTHER_CALLER)
    clock.advance(seconds=30)
    assert voice.wait(second) == ["You are number 1 in the queue. Your expected wait is about 2 minutes."]


def test_a_caller_who_hangs_up_after_the_threshold_becomes_a_call_awaiting_a_callback(voice, svc, clock):
    call = queued(voice, key="1")
    clock.advance(seconds=42)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert (row.outcome, row.hung_up_at, row.left_queue_at) == ("abandoned", clock.now(), clock.now())
    (made,) = all_calls(svc)
    assert row.call_ref == made.ref
    assert (made.state, made.centre, made.caller_phone, made.caller_type, made.urgency, made.need) == (
        "awaiting_callback", "CNH", CALLER, "professional", "urgent", "other")
    assert made.callback_due == clock.now() + timedelta(minutes=20)
    assert made.nhs_number is None and CALLER not in made.summary and "42 s" in made.summary
    (timer,) = [t for t in timers_of(svc, made.ref) if t.stopped_at is None]
    # The callback clock escalates like any promised callback's: sla.yaml's overdue_after after the promise.
    assert (timer.kind, timer.due_at) == ("callback", made.callback_due + timedelta(minutes=15))
    assert [(e.trigger, e.actor) for e in audit_of(svc, made.ref)] == [
        ("log", "telephony"), ("promise_callback", "telephony")]
    # The status callback came after the enqueue's action (the emulator sends both): nothing more happened.
    assert len(all_calls(svc)) == 1 and leg(svc, call.sid).last_status == "completed"


def test_the_callback_clock_breaches_and_escalates_like_any_promised_callback(voice, svc, clock):
    from ipoa.service import timers

    call = queued(voice)
    clock.advance(seconds=10)
    voice.hang_up(call)
    (made,) = all_calls(svc)
    (timer,) = [t for t in timers_of(svc, made.ref) if t.kind == "callback"]
    clock.set(timer.due_at)
    assert timers.fire(svc, timer.id) == "breached"
    (after,) = all_calls(svc)
    assert (after.state, after.breach) == ("awaiting_callback", "callback")


def test_a_hang_up_within_the_threshold_is_not_counted_and_makes_no_call(voice, svc, clock):
    call = queued(voice)
    clock.advance(seconds=5)
    voice.hang_up(call)
    assert leg(svc, call.sid).outcome == "short_abandon" and all_calls(svc) == []


def test_a_caller_who_hangs_up_at_the_menu_is_not_in_the_queue(voice, svc):
    call = voice.ring(from_=CALLER, to=CNH_LINE)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert (row.outcome, row.enqueued_at) == ("hung_up_before_queue", None) and all_calls(svc) == []


def test_a_caller_who_rings_again_is_matched_to_their_open_call_and_not_given_a_second(voice, svc, clock):
    first = queued(voice)
    clock.advance(seconds=20)
    voice.hang_up(first)
    (made,) = all_calls(svc)
    clock.advance(minutes=3)
    again = queued(voice)
    assert leg(svc, again.sid).matched_call_ref == made.ref
    assert phone_queue.waiting_callers(svc, "CNH")[0].open_calls == 1
    clock.advance(seconds=30)
    voice.hang_up(again)
    assert len(all_calls(svc)) == 1 and leg(svc, again.sid).call_ref == made.ref
    assert [e.trigger for e in audit_of(svc, made.ref)][-1] == "rang_again"


def test_a_caller_is_matched_to_their_call_awaiting_a_callback_before_a_later_open_one(voice, svc, clock):
    first = queued(voice)
    clock.advance(seconds=20)
    voice.hang_up(first)
    (made,) = all_calls(svc)  # awaiting the callback
    clock.advance(minutes=1)
    later = logged(svc, caller={"phone": CALLER})  # logged since, for the same number: not awaiting a callback
    clock.advance(minutes=1)
    again = voice.ring(from_=CALLER, to=CNH_LINE)
    assert leg(svc, again.sid).matched_call_ref == made.ref != later


def test_a_caller_with_open_calls_none_awaiting_a_callback_is_matched_to_the_latest(voice, svc, clock):
    logged(svc, caller={"phone": CALLER})
    clock.advance(minutes=1)
    latest = logged(svc, caller={"phone": CALLER})
    clock.advance(minutes=1)
    logged(svc, caller={"phone": OTHER_CALLER})
    call = voice.ring(from_=CALLER, to=CNH_LINE)
    assert leg(svc, call.sid).matched_call_ref == latest
    assert leg(svc, voice.ring(from_="anonymous", to=CNH_LINE).sid).matched_call_ref is None


def test_a_withheld_number_is_counted_as_abandoned_with_no_call_to_make(voice, svc, clock):
    call = queued(voice, caller="anonymous")
    clock.advance(seconds=30)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert (row.caller_number, row.outcome, row.call_ref) == (None, "abandoned", None) and all_calls(svc) == []


def test_out_of_hours_the_caller_is_put_through_to_the_emergency_duty_team(voice, svc, clock):
    clock.set(NIGHT)
    call = voice.ring(from_=CALLER, to=ASC_LINE)
    assert "We are closed now. We open again at 8:30 tomorrow." in \
        call.heard[0]
    assert "putting you through to the Emergency Duty Team" in call.heard[0]
    assert call.dialled == [EDT_LINE] and "999" in call.heard[1] and "111" in call.heard[1]
    assert call.ended and call.queue is None
    row = leg(svc, call.sid)
    assert (row.outcome, row.enqueued_at, row.hung_up_at) == ("out_of_hours", None, clock.now())


def test_out_of_hours_without_a_transfer_the_caller_hears_999_and_111_never_silence(voice, svc, clock):
    clock.set(NIGHT)
    call = voice.ring(from_=CALLER, to=FCP_LINE)
    (said,) = call.heard
    assert "closed now" in said and "call 999 now" in said and "call 111" in said
    assert call.dialled == [] and leg(svc, call.sid).outcome == "out_of_hours"


def test_a_caller_waiting_past_the_threshold_is_told_and_overflows_to_the_named_centres_queue(voice, svc, clock):
    call = queued(voice)
    clock.advance(seconds=181)
    heard = voice.wait(call)
    assert heard[0] == "We are sorry to keep you waiting. We are putting you through to the " \
                       "Community Health Services single point of access."
    assert call.queue == "CHS" and heard[1].startswith("You are number 1 in the queue.")
    row = leg(svc, call.sid)
    assert (row.queue, row.overflowed_from, row.centre) == ("CHS", "CNH", "CNH")
    clock.advance(seconds=200)
    assert voice.wait(call)[0].startswith("You are number 1")  # overflows once: no ping-pong back to CNH


@pytest.mark.parametrize("put_back", [False, True])
def test_an_overflowed_caller_who_hangs_up_waited_from_first_joining_and_is_called_back(rest, svc, clock, put_back):
    """Twilio's QueueTime restarts at the overflow's <Enqueue> into the other centre's queue: its action URL
    says how long after first joining that was (?rejoined=), as a caller put back in the queue's does. The
    shipped line overflows CNH to CHS after 180 s: 200 s in CNH (20 of them at a handler's phone that did not
    pick up, for `put_back`) and 3 s in CHS is 203 s waited, abandoned and called back."""
    call = queued(rest)
    enqueued = leg(svc, call.sid).enqueued_at
    if put_back:
        clock.advance(seconds=20)
        assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
        clock.advance(seconds=20)
        rest.dial_outcome(call, "no-answer")
        clock.advance(seconds=160)
    else:
        clock.advance(seconds=200)
    rest.wait(call)
    assert call.queue == "CHS" and "rejoined=200000" in call.enqueue_action
    clock.advance(seconds=3)
    rest.hang_up(call)
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert (row.outcome, row.call_ref, row.hung_up_at - enqueued) == ("abandoned", made.ref, timedelta(seconds=203))


def test_an_overflowed_caller_taken_by_dial_queue_waited_from_first_joining(voice, svc, clock):
    call = queued(voice)
    enqueued = leg(svc, call.sid).enqueued_at
    clock.advance(seconds=200)
    voice.wait(call)
    assert call.queue == "CHS"
    clock.advance(seconds=10)
    voice.dequeue("CHS")
    clock.advance(minutes=5)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    # QueueTime 10 in CHS, sent late (when the bridged call ended): the middle of that second.
    assert row.outcome == "answered" and row.answered_at - enqueued == timedelta(seconds=210.5)


def test_a_caller_overflowed_into_another_queue_counts_in_it_from_when_they_came(voice, svc, clock):
    """The shipped lines overflow CNH into CHS's queue and CHS into CNH's, each after 180 s. An overflowed caller's
    wait (and place in line) counts from first joining CNH's queue (enqueued_at), but the overflow decision
    measures how long CHS's queue has been waited in (queue_joined_at, from the overflow): one CNH caller moved
    there after 181 s does not send CHS's own new callers to CNH, until they have waited past CHS's threshold
    in CHS's queue itself."""
    first = queued(voice)
    enqueued = leg(svc, first.sid).enqueued_at
    assert leg(svc, first.sid).queue_joined_at == enqueued
    clock.advance(seconds=181)
    voice.wait(first)
    row = leg(svc, first.sid)
    assert first.queue == "CHS" and (row.enqueued_at, row.queue_joined_at) == (enqueued, clock.now())
    clock.advance(seconds=2)
    new = queued(voice, OTHER_CALLER, line=CHS_LINE)
    assert new.queue == "CHS" and leg(svc, new.sid).overflowed_from is None
    assert not any("Clinical Navigation Hub" in said for said in new.heard[1:]), new.heard
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CHS")] == [first.sid, new.sid]
    clock.advance(seconds=179)  # the overflowed caller: 181 s in CHS's queue (the new one 179 s)
    third = queued(voice, THIRD_CALLER, line=CHS_LINE)
    assert third.queue == "CNH" and leg(svc, third.sid).overflowed_from == "CHS"


def test_a_caller_queued_by_the_incoming_call_itself_joined_the_queue_they_are_in_then(voice, svc):
    call = voice.ring(from_=CALLER, to=MHA_LINE)  # the incoming call's own INSERT carries it
    row = leg(svc, call.sid)
    assert call.queue == "MHA" and row.queue_joined_at == row.enqueued_at == svc.clock.now()


def test_a_caller_still_waiting_at_closing_time_is_told_and_put_through_to_the_out_of_hours_centre(voice, svc,
                                                                                                        clock):
    clock.set(datetime(2026, 11, 23, 16, 58, tzinfo=UTC))  # ASC closes at 17:00 (Monday)
    call = queued(voice, line=ASC_LINE)
    assert voice.wait(call)[0].startswith("You are number 1 in the queue.")
    clock.set(datetime(2026, 11, 23, 17, 0, 20, tzinfo=UTC))
    heard = voice.wait(call)
    assert heard[:2] == ["We are sorry to keep you waiting.",
                         "We are closed now. We open again at 8:30 "
                         "tomorrow. We are putting you through to the Emergency Duty Team."]
    assert call.dialled == [EDT_LINE] and call.queue is None
    row = leg(svc, call.sid)
    assert (row.outcome, row.left_queue_at, row.answered_at) == ("out_of_hours", clock.now(), None)
    assert all_calls(svc) == []  # put through, not abandoned: no callback call
    voice.hang_up(call)
    assert leg(svc, call.sid).outcome == "out_of_hours"


def test_a_new_caller_overflows_at_once_while_the_longest_wait_is_past_the_threshold(voice, svc, clock):
    queued(voice)
    clock.advance(seconds=181)
    second = queued(voice, OTHER_CALLER)
    assert "All our call handlers are busy just now. We are putting you through to the Community Health" in \
        second.heard[-2]
    assert second.queue == "CHS" and leg(svc, second.sid).overflowed_from == "CNH"
    row = leg(svc, second.sid)
    assert row.queue_joined_at == row.enqueued_at == clock.now()  # straight into CHS's: joined both at once


def test_with_nobody_taking_calls_the_line_overflows_if_it_says_so(voice, svc, catalogue, monkeypatch, users):
    monkeypatch.setattr(svc, "catalogue", with_line(catalogue, "CNH", overflow=Overflow(
        "CHS", "dial", None, when_nobody_available=True)))
    call = queued(voice)
    assert call.dialled == ["+441632960105"] and "busy" in call.heard[-2] and call.queue is None
    assert leg(svc, call.sid).outcome == "overflow_dial"
    taking_calls(svc, "handler")
    second = queued(voice, OTHER_CALLER)
    assert second.queue == "CNH" and second.dialled == []


def test_a_handler_taking_calls_but_not_signed_in_does_not_count(voice, svc, catalogue, monkeypatch, users):
    monkeypatch.setattr(svc, "catalogue", with_line(catalogue, "CNH", overflow=Overflow(
        "CHS", "queue", None, when_nobody_available=True)))
    taking_calls(svc, "handler", seen=False)
    assert queued(voice).queue == "CHS"


def handler_reads(monkeypatch) -> list[str]:
    """The centres whose handlers available the wait URL reads (VoiceQueueQueries.handlers_available)."""
    reads: list[str] = []
    real = VoiceQueueQueries.handlers_available
    monkeypatch.setattr(VoiceQueueQueries, "handlers_available",
                        lambda self, centre, since: reads.append(centre) or real(self, centre, since))
    return reads


def test_a_caller_waiting_when_the_last_handler_stops_is_moved_on_if_the_line_says_so(voice, svc, catalogue,
                                                                                      monkeypatch, users):
    """With `when_nobody_available`, the wait URL's next telling moves a caller already waiting to the overflow
    centre once none of the centre's handlers is taking calls (told, and by <Leave>), as the wait threshold
    does. They overflow once: CHS's line overflowing to CNH when nobody is available (nobody works CHS here)
    leaves them where they are, and their handlers available are not even read."""
    lines = with_line(catalogue, "CNH", overflow=Overflow("CHS", "queue", None, when_nobody_available=True))
    monkeypatch.setattr(svc, "catalogue", with_line(lines, "CHS", overflow=Overflow(
        "CNH", "queue", None, when_nobody_available=True)))
    reads = handler_reads(monkeypatch)
    taking_calls(svc, "handler")
    call = queued(voice)
    assert call.queue == "CNH" and reads == ["CNH"]  # told their place as they joined
    assert voice.wait(call)[0].startswith("You are number 1 in the queue.")
    call_takers.set_taking_calls(svc, users["handler"].id, "handler", False)  # the last one stops
    heard = voice.wait(call)
    assert heard[0] == "We are sorry to keep you waiting. We are putting you through to the " \
                       "Community Health Services single point of access."
    assert call.queue == "CHS" and heard[1].startswith("You are number 1 in the queue.")
    row = leg(svc, call.sid)
    assert (row.queue, row.overflowed_from, row.queue_joined_at) == ("CHS", "CNH", svc.clock.now())
    assert reads == ["CNH"] * 3
    assert voice.wait(call)[0].startswith("You are number 1") and call.queue == "CHS" and reads == ["CNH"] * 3


def test_a_line_that_overflows_on_the_wait_alone_keeps_its_waiting_callers_when_nobody_takes_calls(
        voice, svc, monkeypatch, users):
    """The shipped CNH line overflows after 180 s only: a caller waiting when the last handler stops is told their
    place, and the wait URL reads no handlers available for it."""
    reads = handler_reads(monkeypatch)
    taking_calls(svc, "handler")
    call = queued(voice)
    call_takers.set_taking_calls(svc, users["handler"].id, "handler", False)
    assert voice.wait(call)[0].startswith("You are number 1 in the queue.") and call.queue == "CNH"
    assert reads == []


def test_answer_bridges_the_caller_through_the_rest_api_and_the_leg_is_answered(voice, svc, clock, monkeypatch):
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=voice.base_url, timeout=5))
    call = queued(voice)
    clock.advance(seconds=12)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    assert call.dialled == ["+447700900777"] and call.queue is None and call.updates
    assert phone_queue.waiting_callers(svc, "CNH") == []
    clock.advance(minutes=4)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by, row.answered_at) == ("answered", "handler", row.enqueued_at +
                                                                timedelta(seconds=12))
    assert row.hung_up_at == clock.now() and all_calls(svc) == []
    assert not phone_calls.bridge(svc, call.sid, "handler.asc", dialling(svc, "client:asc", "handler.asc"))  # gone


def test_a_bridge_twilio_refuses_leaves_the_caller_waiting_for_the_next_handler(voice, svc, clock, monkeypatch):
    gateway = TwilioVoiceGateway(account_sid=VOICE_SID, auth_token="wrong-token", api_base_url=voice.base_url,
                                 timeout=5)
    monkeypatch.setattr(svc, "voice_gateway", gateway)
    call = queued(voice)
    with pytest.raises(VoiceGatewayError, match="refused"):
        phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "client:handler", "handler"))
    row = leg(svc, call.sid)
    assert (row.answered_at, row.answered_by, row.outcome) == (None, None, None)
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=voice.base_url, timeout=5))
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "client:handler", "handler"))
    assert call.dialled == ["client:handler"]


@pytest.fixture
def rest(voice, svc, monkeypatch):
    """Answer's redirects go through Twilio's REST API to the emulator."""
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=voice.base_url, timeout=5))
    return voice


def test_answers_twiml_is_built_for_the_answer_made_and_a_builder_that_fails_leaves_the_caller_waiting(
        rest, svc, clock):
    """phone_calls.bridge asks the entry point's builder for the TwiML once the answer is made, with its instant
    (the dial result's URL names it); should the builder fail, nothing was put through, so the answer is undone,
    as if Answer had not been pressed, and the builder's error raised."""
    call = queued(rest)
    clock.advance(seconds=12)

    def broken(at):
        raise ValueError("no TwiML")

    with pytest.raises(ValueError, match="no TwiML"):
        phone_calls.bridge(svc, call.sid, "handler", broken)
    row = leg(svc, call.sid)
    assert (row.answered_at, row.answered_by, row.outcome) == (None, None, None) and not call.dialled
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    built = []

    def recorded(at):
        built.append(at)
        return bridge_twiml("client:handler", svc.public_base_url, by="handler", at=at)

    assert phone_calls.bridge(svc, call.sid, "handler", recorded)
    assert built == [clock.now()] == [leg(svc, call.sid).answered_at] and call.dialled == ["client:handler"]
    assert call.dial_action.endswith(f"/dial-result?by=handler&at={answer_ms(built[0])}")


NOT_PUT_THROUGH = "Sorry, we could not put you through. You are still in the queue."


@pytest.mark.parametrize("dial_status", ["busy", "no-answer", "failed", "canceled"])
def test_a_handler_who_does_not_pick_up_leaves_the_caller_waiting_in_the_queue(rest, svc, clock, dial_status):
    """Answer put the caller through to a <Dial> the handler's phone never picked up: Twilio requests the
    Dial's action; the caller is told and back in the same queue, their wait still counting from when they
    first joined it, and the answer is undone (not counted as answered)."""
    call = queued(rest)
    enqueued = leg(svc, call.sid).enqueued_at
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    assert call.dial_action and "/webhooks/twilio/voice/dial-result?by=handler&at=" in call.dial_action
    clock.advance(seconds=30)
    rest.dial_outcome(call, dial_status)
    assert NOT_PUT_THROUGH in call.heard and call.queue == "CNH" and not call.ended
    row = leg(svc, call.sid)
    assert (row.answered_at, row.answered_by, row.outcome, row.left_queue_at, row.hung_up_at) == (
        None, None, None, None, None)
    assert row.enqueued_at == row.queue_joined_at == enqueued  # back in the same queue: joined it then
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    # Retried by Twilio: the same answer, nothing changed twice.
    again = rest.webhook(call, call.answers[-2][0], {"DialCallStatus": dial_status})
    assert again[0] == 200 and NOT_PUT_THROUGH in again[1] and leg(svc, call.sid) == row
    # The caller hangs up 10 s later (Twilio's QueueTime counts from rejoining): 60 s in all, abandoned.
    clock.advance(seconds=10)
    rest.hang_up(call)
    ended = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert ended.outcome == "abandoned" and ended.hung_up_at - enqueued == timedelta(seconds=60)
    assert ended.call_ref == made.ref


def test_a_caller_back_in_the_queue_is_answered_by_the_next_handler(rest, svc, clock):
    call = queued(rest)
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    clock.advance(seconds=30)
    rest.dial_outcome(call, "no-answer")
    clock.advance(seconds=5)
    assert phone_calls.bridge(svc, call.sid, "handler.two", dialling(svc, "client:two", "handler.two"))
    rest.dial_outcome(call, "answered")  # picked up: the conversation, then the caller's call ends
    assert call.ended
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by) == ("answered", "handler.two")
    assert row.answered_at - row.enqueued_at == timedelta(seconds=55) and all_calls(svc) == []


class _LeaveCrossesAnswer(TwilioVoiceGateway):
    """Twilio's side of a race: the wait URL told a caller past the threshold that they are being put through
    to the overflow centre and <Leave>s; the enqueue's action (`leave`) reaches ipoa after Answer marked the
    caller answered and before Answer's REST redirect reaches Twilio, which then runs what ipoa answered."""

    def __init__(self, emulator, auth_token=VOICE_TOKEN):
        super().__init__(account_sid=VOICE_SID, auth_token=auth_token, api_base_url=emulator.base_url, timeout=5)
        self.emulator = emulator

    def redirect(self, call_sid, twiml):
        self.emulator._leave_queue(self.emulator.calls[call_sid], "leave")
        return super().redirect(call_sid, twiml)


@pytest.mark.parametrize("refused", [False, True])
def test_a_leave_that_crosses_answer_keeps_the_caller_in_their_queue_for_the_redirect(voice, svc, clock,
                                                                                      monkeypatch, refused):
    """The `leave` finds the leg held by Answer: the caller is put back in the queue they are in, without a
    word (never hung up on in silence), carrying how long after first joining it that is; the redirect then
    finds them there and puts them through to the handler. If Twilio refuses the redirect, Answer is undone
    and the caller is still waiting: their next telling moves them on to the overflow centre."""
    call = queued(voice)
    enqueued = leg(svc, call.sid).enqueued_at
    clock.advance(seconds=181)
    monkeypatch.setattr(svc, "voice_gateway", _LeaveCrossesAnswer(voice, "wrong-token" if refused else VOICE_TOKEN))
    heard = len(call.heard)
    if refused:
        with pytest.raises(VoiceGatewayError, match="refused"):
            phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    else:
        assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    url, status, body = next(a for a in call.answers if "/queue/left" in a[0])
    assert status == 200 and "<Enqueue" in body and "rejoined=181000" in body
    assert "<Say" not in body and "<Hangup" not in body
    # (the wait URL, asked as they rejoin, tells their place: Twilio's, since Answer holds them)
    assert all(said.startswith("You are number 1 in the queue.") for said in call.heard[heard:]), call.heard
    row = leg(svc, call.sid)
    assert not call.ended and (row.queue, row.overflowed_from, row.enqueued_at) == ("CNH", None, enqueued)
    if not refused:
        assert call.dialled == ["+447700900777"] and call.queue is None
        assert (row.outcome, row.answered_by, row.answered_at, row.left_queue_at) == (
            "answered", "handler", clock.now(), clock.now())
        return
    assert call.queue == "CNH" and (row.answered_at, row.answered_by, row.outcome) == (None, None, None)
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    assert voice.wait(call)[0].startswith("We are sorry to keep you waiting. We are putting you through")
    assert call.queue == "CHS" and leg(svc, call.sid).overflowed_from == "CNH"


def test_a_handler_reached_changes_nothing_when_the_dial_ends(rest, svc, clock):
    call = queued(rest)
    clock.advance(seconds=12)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "client:handler", "handler"))
    clock.advance(minutes=3)
    row = leg(svc, call.sid)
    status, body = rest.dial_outcome(call, "completed")
    assert status == 200 and "<Hangup" in body and call.ended
    after = leg(svc, call.sid)
    assert (after.outcome, after.answered_by, after.answered_at) == ("answered", "handler", row.answered_at)
    assert all_calls(svc) == []


@pytest.mark.parametrize("first", ["status", "dial"])
def test_a_caller_who_hangs_up_while_the_handlers_phone_rings_is_called_back(rest, svc, clock, first):
    call = queued(rest)
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    clock.advance(seconds=10)  # the caller gives up, never having reached the handler
    if first == "status":
        rest.status_callback(call, "completed")
        rest.dial_outcome(call, "no-answer")
    else:
        rest.webhook(call, call.dial_action, {"DialCallStatus": "no-answer"})
        rest.status_callback(call, "completed")
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert (row.outcome, row.answered_by, row.call_ref) == ("abandoned", None, made.ref)
    assert row.hung_up_at - row.enqueued_at == timedelta(seconds=30)


def test_a_dial_result_for_an_unknown_call_gets_the_advice_and_stores_nothing(rest, svc):
    call = queued(rest)
    stranger = rest.ring(from_=CALLER, to="+441632960999")
    status, body = rest.webhook(stranger, f"{svc.public_base_url}/webhooks/twilio/voice/dial-result",
                                {"DialCallStatus": "busy"})
    assert status == 200 and "999" in body and "<Hangup" in body
    assert [r.call_sid for r in legs(svc)] == [call.sid]


def dial_result_url(call) -> str:
    """The dial result Twilio requested last for this call: the URL it would retry."""
    return [url for url, _, _ in call.answers if "/dial-result" in url][-1]


@pytest.mark.parametrize("second", ["handler.two", "handler"])
def test_a_late_retry_of_a_not_reached_dial_result_leaves_the_next_answer_alone(rest, svc, clock, second):
    """The dial result's URL names the answer it ends (who, and when): Twilio's retry of the first handler's
    `no-answer`, coming after the caller was answered again (by another handler, or the same one), changes
    nothing; the call ends answered, never taken for an abandon."""
    call = queued(rest)
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    clock.advance(seconds=30)
    rest.dial_outcome(call, "no-answer")
    stale = dial_result_url(call)
    assert "by=handler&" in stale and "at=" in stale
    clock.advance(seconds=5)
    assert phone_calls.bridge(svc, call.sid, second, dialling(svc, "client:two", second))
    answered = leg(svc, call.sid)
    status, body = rest.webhook(call, stale, {"DialCallStatus": "no-answer"})
    assert status == 200 and NOT_PUT_THROUGH not in body and "<Enqueue" not in body
    assert leg(svc, call.sid) == answered
    assert phone_queue.waiting_callers(svc, "CNH") == []
    clock.advance(minutes=3)
    rest.hang_up(call)
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by, row.answered_at) == ("answered", second, answered.answered_at)
    assert all_calls(svc) == []


@pytest.mark.parametrize("retried", [False, True])
def test_a_redirected_enqueue_action_after_the_dial_result_leaves_the_caller_waiting(rest, svc, clock, retried):
    """A redirect out of the queue only ever comes from Answer: the first enqueue's `redirected` action coming
    after the dial result put the caller back in the queue (the two raced, or Twilio retried it) changes
    nothing. The caller is still seen waiting, and called back if they hang up."""
    call = queued(rest)
    clock.advance(seconds=20)
    if retried:
        assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    else:  # Twilio runs the redirect, but its enqueue action comes only after the dial result
        assert phone_calls.answered(svc, call.sid, "handler")
        row = leg(svc, call.sid)
        twiml = bridge_twiml("+447700900777", svc.public_base_url, by="handler", at=row.answered_at)
        rest.queues["CNH"].remove(call.sid)
        call.queue = None
        rest._run(call, twiml, in_wait=True)
    first_enqueue = [url for url, _, _ in call.answers if "/queue/left" in url][0] if retried else \
        f"{svc.public_base_url}/webhooks/twilio/voice/queue/left"
    clock.advance(seconds=30)
    rest.dial_outcome(call, "no-answer")
    assert call.queue == "CNH" and NOT_PUT_THROUGH in call.heard
    before = leg(svc, call.sid)
    assert rest.webhook(call, first_enqueue, {"QueueResult": "redirected", "QueueTime": "20"})[0] == 200
    assert leg(svc, call.sid) == before
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    clock.advance(seconds=60)
    rest.hang_up(call)
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert (row.outcome, row.call_ref, row.hung_up_at - row.enqueued_at) == ("abandoned", made.ref,
                                                                             timedelta(seconds=110))


class _TimesOutAfterRedirecting:
    """Twilio's REST API redirects the call, but its answer never comes back in time."""

    def __init__(self, real, *, redirects=True):
        self.real, self.redirects, self.held = real, redirects, []

    def redirect(self, call_sid, twiml):
        if self.redirects:
            self.real.redirect(call_sid, twiml)
        else:  # Twilio redirects it only later: the test does (after Answer undid the answer)
            self.held.append(twiml)
        raise VoiceGatewayError("Twilio could not be reached: ReadTimeoutError")

    def call_state(self, call_sid):
        return self.real.call_state(call_sid)


@pytest.mark.parametrize("order", ["redirect_first", "undo_first"])
def test_a_redirect_that_timed_out_but_happened_and_was_not_picked_up_puts_the_caller_back(rest, svc, clock,
                                                                                            monkeypatch, order):
    """The REST redirect timed out, so Answer undid the answer and told the handler; but Twilio had redirected
    the caller, and the handler's phone then rang out: the caller is told and back in the queue, never hung up
    on in silence, and called back if they give up."""
    call = queued(rest)
    clock.advance(seconds=20)
    real = svc.voice_gateway
    if order == "undo_first":  # the enqueue's redirected action comes after Answer undid the answer
        late = _TimesOutAfterRedirecting(real, redirects=False)
        monkeypatch.setattr(svc, "voice_gateway", late)
        with pytest.raises(VoiceGatewayError):
            phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
        real.redirect(call.sid, late.held[0])
    else:
        monkeypatch.setattr(svc, "voice_gateway", _TimesOutAfterRedirecting(real))
        with pytest.raises(VoiceGatewayError):
            phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    clock.advance(seconds=30)
    status, body = rest.dial_outcome(call, "no-answer")
    assert status == 200 and NOT_PUT_THROUGH in call.heard and call.queue == "CNH" and not call.ended
    row = leg(svc, call.sid)
    assert (row.answered_at, row.answered_by, row.outcome, row.left_queue_at) == (None, None, None, None)
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    clock.advance(seconds=10)
    rest.hang_up(call)
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert (row.outcome, row.call_ref, row.hung_up_at - row.enqueued_at) == ("abandoned", made.ref,
                                                                             timedelta(seconds=60))


def test_a_redirect_that_timed_out_but_reached_the_handler_is_counted_answered(rest, svc, clock, monkeypatch):
    """The answer was undone after the REST redirect timed out, but Twilio put the caller through and the
    handler picked up: the dial result records that answer (who, and when), so the call is counted answered
    and the caller is never later taken for an abandon."""
    call = queued(rest)
    clock.advance(seconds=20)
    real = svc.voice_gateway
    late = _TimesOutAfterRedirecting(real, redirects=False)
    monkeypatch.setattr(svc, "voice_gateway", late)
    with pytest.raises(VoiceGatewayError):
        phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    answered_at = clock.now()
    real.redirect(call.sid, late.held[0])  # Twilio did redirect: the enqueue's action came after the undo
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]
    clock.advance(minutes=4)
    status, body = rest.dial_outcome(call, "completed")
    assert status == 200 and "<Hangup" in body and call.ended
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by, row.answered_at, row.left_queue_at) == (
        "answered", "handler", answered_at, answered_at)
    assert row.hung_up_at == clock.now() and all_calls(svc) == []
    assert phone_queue.waiting_callers(svc, "CNH") == []


def test_a_redirect_that_times_out_undoes_its_own_answer_never_the_same_handlers_next(rest, svc, clock,
                                                                                   monkeypatch):
    """Answer's REST redirect is slow: Twilio made it, the handler's phone was busy and the dial result put the
    caller back in the queue, and the same handler answered them again, all before the first redirect's
    answer timed out. Undoing that first answer must leave the second alone: the caller is being put through
    to the handler, not waiting (docs/telephony.md, "Answering a call")."""
    call = queued(rest)
    clock.advance(seconds=20)
    real = svc.voice_gateway
    held, second = [], []

    class SlowFirst:
        def redirect(self, call_sid, twiml):
            if second or held:  # the second redirect: accepted, Twilio runs it (and its enqueue action) later
                held.append(twiml)
                return
            real.redirect(call_sid, twiml)
            rest.dial_outcome(call, "busy")  # the dial result comes while the REST answer is on its way
            assert call.queue == "CNH" and leg(svc, call.sid).answered_at is None
            clock.advance(seconds=5)
            held.append(None)
            second.append(phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler")))
            raise VoiceGatewayError("Twilio could not be reached: ReadTimeoutError")

    monkeypatch.setattr(svc, "voice_gateway", SlowFirst())
    with pytest.raises(VoiceGatewayError):
        phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    answered_at = clock.now()
    row = leg(svc, call.sid)
    assert second == [True] and (row.outcome, row.answered_by, row.answered_at) == ("answered", "handler", answered_at)
    assert phone_queue.waiting_callers(svc, "CNH") == []
    real.redirect(call.sid, held[-1])  # Twilio puts the caller through: the enqueue's action comes now
    assert call.dialled == ["+447700900777"] * 2 and call.queue is None
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_at, row.left_queue_at) == ("answered", answered_at, answered_at)


def test_the_console_voice_gateway_records_the_bridge(svc):
    from ipoa.adapters.voice_gateway import ConsoleVoiceGateway

    assert isinstance(svc.voice_gateway, ConsoleVoiceGateway)
    svc.voice_gateway.redirect("CA" + "1" * 32, bridge_twiml("+447700900777", svc.public_base_url,
                                                                  by="handler", at=NIGHT))
    assert svc.voice_gateway.redirected[-1][0] == "CA" + "1" * 32


def test_a_caller_taken_from_the_queue_by_dial_queue_is_answered(voice, svc, clock):
    """Twilio requests the enqueue's action (`bridged`) when the bridged call ends: the wait is its QueueTime
    (8 s, dated as any late action: the middle of that second), not the conversation's end."""
    call = queued(voice)
    clock.advance(seconds=8)
    voice.dequeue("CNH")
    clock.advance(minutes=2)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert row.outcome == "answered" and all_calls(svc) == []
    assert row.answered_at - row.enqueued_at == timedelta(seconds=8.5) and row.left_queue_at == row.answered_at


@pytest.mark.parametrize(("waited", "outcome", "calls"), [
    (5.1, "abandoned", 1), (5.5, "abandoned", 1), (5.9, "abandoned", 1), (5, "short_abandon", 0),
    (4.9, "short_abandon", 0)])
def test_a_hang_up_just_past_the_threshold_is_abandoned_although_queuetime_says_5(voice, svc, clock, waited,
                                                                                  outcome, calls):
    """Twilio's QueueTime is whole seconds, rounded down (the emulator sends 5 for 5.9 s): an action on time
    is dated by ipoa's own clock, so more than 5 s is abandoned and called back."""
    call = queued(voice)
    clock.advance(seconds=waited)
    voice.hang_up(call)
    row = leg(svc, call.sid)
    assert row.outcome == outcome and (row.hung_up_at - row.enqueued_at).total_seconds() == waited
    assert len(all_calls(svc)) == calls


def test_a_late_status_callback_before_the_action_dates_a_short_hang_up_by_callduration(voice, svc, clock):
    """The caller hangs up after 3 s; the status callback (CallDuration 3) comes 10 s late, before the
    enqueue's action: a short hang-up, no callback, and the action that follows changes nothing."""
    call = queued(voice)
    hung_up = clock.now() + timedelta(seconds=3)
    clock.advance(seconds=13)
    voice.status_callback(call, "completed", at=hung_up)
    row = leg(svc, call.sid)
    assert row.outcome == "short_abandon" and row.hung_up_at == row.enqueued_at + timedelta(seconds=3.5)
    voice.webhook(call, call.enqueue_action, {"QueueResult": "hangup", "QueueTime": "3"})
    assert leg(svc, call.sid) == row and all_calls(svc) == []


def test_a_late_status_callback_dates_an_abandoned_call_and_its_promise_by_twilio(voice, svc, clock):
    call = queued(voice)
    hung_up = clock.now() + timedelta(seconds=30)
    clock.advance(minutes=5)
    voice.status_callback(call, "completed", at=hung_up)
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert row.outcome == "abandoned" and row.hung_up_at == row.enqueued_at + timedelta(seconds=30.5)
    assert made.callback_due == row.hung_up_at + timedelta(minutes=20)


def test_a_status_callback_on_time_is_dated_by_ipoas_clock(voice, svc, clock):
    call = queued(voice)
    clock.advance(seconds=5.5)
    voice.status_callback(call, "completed")  # CallDuration 5: on time, so ipoa's own 5.5 s
    row = leg(svc, call.sid)
    assert row.outcome == "abandoned" and row.hung_up_at == clock.now()


def test_a_full_queue_tells_the_caller_they_will_be_called_back_and_makes_the_call(voice, svc, clock):
    call = queued(voice)
    clock.advance(seconds=2)
    voice._leave_queue(call, "queue-full")
    assert "We will call you back on this number" in call.heard[-1] and call.ended
    row = leg(svc, call.sid)
    (made,) = all_calls(svc)
    assert (row.outcome, row.call_ref, made.state) == ("queue_failed", made.ref, "awaiting_callback")


def test_a_number_no_line_is_configured_for_gets_the_advice_and_nothing_is_stored(voice, svc):
    call = voice.ring(from_=CALLER, to="+441632960999")
    assert "cannot take your call" in call.heard[0] and "999" in call.heard[0] and call.ended
    assert legs(svc) == []


def test_no_log_line_carries_the_callers_number(voice, svc, clock, caplog):
    caplog.set_level(logging.DEBUG)
    call = queued(voice)
    clock.advance(seconds=30)
    voice.hang_up(call)
    queued(voice)
    assert all_calls(svc)
    assert any("abandoned in the CNH queue after 30 s" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage()
        assert CALLER not in text and "7700900123" not in text and "7700 900123" not in text


def test_the_queue_lists_a_users_centre_only_by_queue(voice, svc):
    make_user(svc, "handler.chs", "handler", "CHS")
    queued(voice)
    queued(voice, OTHER_CALLER, line="+441632960105")
    assert [w.queue for w in phone_queue.waiting_callers(svc, "CHS")] == ["CHS"]
    assert [w.queue for w in phone_queue.waiting_callers(svc, "CNH")] == ["CNH"]


def test_retention_forgets_the_callers_number_on_old_legs_and_keeps_the_times(voice, svc, clock):
    from ipoa.service import retention

    old = queued(voice)
    voice.hang_up(old)
    clock.advance(days=365 * 8 + 3)
    recent = queued(voice, OTHER_CALLER)
    retention.run(svc, years=8)
    assert leg(svc, old.sid).caller_number is None and leg(svc, old.sid).outcome == "short_abandon"
    assert leg(svc, recent.sid).caller_number == OTHER_CALLER


def test_the_enqueue_action_and_the_status_callback_at_once_make_one_callback(voice, svc, clock):
    import threading

    call = queued(voice)
    clock.advance(seconds=30)
    hangup = {"QueueResult": "hangup", "QueueTime": "30"}
    posts = [(call.enqueue_action, hangup), (voice.status_url, {"CallStatus": "completed"})] * 4
    answers: list[int] = []
    threads = [threading.Thread(target=lambda u=url, f=form: answers.append(voice.webhook(call, u, f)[0]))
               for url, form in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200] * 4 + [204] * 4
    (made,) = all_calls(svc)
    assert leg(svc, call.sid).call_ref == made.ref and leg(svc, call.sid).outcome == "abandoned"


def test_the_callback_call_shows_on_the_handlers_queue_and_its_page(voice, svc, clock, app, users):
    from tests.helpers import sign_in

    call = queued(voice)
    clock.advance(seconds=25)
    voice.hang_up(call)
    (made,) = all_calls(svc)
    client = app.test_client()
    sign_in(client, "handler")
    queue = client.get("/queue")
    assert queue.status_code == 200 and made.ref in queue.get_data(as_text=True)
    page = client.get(f"/calls/{made.ref}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "awaiting callback" in text and "25 s in the CNH queue" in text
    assert "Mon 23 Nov 2026 10:20" in text  # the callback promised: 20 minutes after the hang-up


def test_a_registered_professional_ringing_from_their_mobile_is_named_in_the_queue(voice, svc):
    from ipoa.service.professionals import add_professional

    add_professional(svc, name="Nia", service="DN", mobile="07700 900123")
    queued(voice, CALLER, key="1")
    queued(voice, OTHER_CALLER, key="2")
    first, second = phone_queue.waiting_callers(svc, "CNH")
    assert (first.professional, second.professional) == ("Nia, DN", None)


def test_only_handlers_and_supervisors_take_calls_and_the_flag_says_since_when(svc, users, clock):
    from ipoa.service import call_takers
    from ipoa.service.errors import Forbidden

    handler = users["handler"]
    assert call_takers.taking_calls_since(svc, handler.id) is None
    assert call_takers.set_taking_calls(svc, handler.id, "handler", True)
    clock.advance(minutes=5)
    assert not call_takers.set_taking_calls(svc, handler.id, "handler", True)  # already: since unchanged
    assert call_takers.taking_calls_since(svc, handler.id) == clock.now() - timedelta(minutes=5)
    assert call_takers.set_taking_calls(svc, handler.id, "handler", False)
    assert call_takers.taking_calls_since(svc, handler.id) is None
    with pytest.raises(Forbidden):
        call_takers.set_taking_calls(svc, users["professional"].id, "professional", True)


def test_an_answers_twiml_is_built_once_and_is_the_same_as_built_afresh():
    from ipoa.domain.telephony import answers
    from ipoa.web.twiml import render

    menu = answers.Answer((answers.Say("Hello."), answers.Menu(answers.MENU_PROMPT)), answers.MENU)
    queued = answers.Answer((answers.Enqueue("MHA"),), answers.QUEUED, queue="MHA")
    for answer in (menu, queued, answers.not_ours()):
        for base in ("https://a.example", "https://b.example/"):
            assert render(answer, base) == render.__wrapped__(answer, base)
    assert render(menu, "https://a.example") != render(menu, "https://b.example")  # the URLs in it are the base's
    hits = render.cache_info().hits
    render(answers.Answer((answers.Enqueue("MHA"),), answers.QUEUED, queue="MHA"), "https://a.example")  # an equal one
    assert render.cache_info().hits == hits + 1


def test_a_not_reached_dial_result_after_a_reached_one_for_the_same_answer_changes_nothing(rest, svc, clock):
    """Twilio sends one dial result per <Dial>: a `no-answer` for an answer already recorded as reached (a
    confused retry) never undoes it."""
    call = queued(rest)
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler", dialling(svc, "+447700900777", "handler"))
    url = call.dial_action
    clock.advance(minutes=3)
    rest.dial_outcome(call, "completed")
    row = leg(svc, call.sid)
    assert (row.outcome, row.dial_status) == ("answered", "completed")
    status, _ = rest.webhook(call, url, {"DialCallStatus": "no-answer"})
    assert status == 200 and leg(svc, call.sid) == row and all_calls(svc) == []

