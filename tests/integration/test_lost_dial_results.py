"""Answers whose dial result was lost (service/lost_calls.py; docs/telephony.md, "Lost webhooks"): the caller
was put through by Answer's <Dial>, and the Dial's action (the dial result) never reached ipoa. The check
asks Twilio's REST API (the Voice emulator's) whether the Dial reached anyone, once the caller's call is
over. SQLite here, PostgreSQL with TEST_DATABASE_URL."""
from __future__ import annotations

import logging
from datetime import timedelta

from ipoa.adapters.voice_gateway import TwilioVoiceGateway
from ipoa.service import lost_calls, phone_calls
from ipoa.web.twiml import bridge_twiml
from tests.conftest import VOICE_SID, VOICE_TOKEN
from tests.helpers.voice import CALLER, CNH_LINE, all_calls, leg

HANDLER_PHONE = "+447700900777"


def queued(voice, caller=CALLER):
    call = voice.ring(from_=caller, to=CNH_LINE)
    voice.press(call, "2")
    assert call.queue == "CNH"
    return call


def gateway(voice) -> TwilioVoiceGateway:
    return TwilioVoiceGateway(account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=voice.base_url,
                              timeout=5)


def dial(base: str) -> str:
    return (f'<Response><Dial action="{base}/webhooks/twilio/voice/dial-result">'
            f"<Number>{HANDLER_PHONE}</Number></Dial></Response>")


def test_twilio_says_whether_a_dial_reached_anyone(voice, svc):
    """The gateway reads the calls a call's <Dial>s made (ParentCallSid): answered ones are `completed`."""
    twilio = gateway(voice)
    reached, missed, never = queued(voice), queued(voice, "+447700900124"), queued(voice, "+447700900125")
    assert twilio.reached(never.sid) is False  # no Dial made: nobody reached
    for call in (reached, missed):
        twilio.redirect(call.sid, dial(svc.public_base_url))
        assert twilio.reached(call.sid) is False  # still ringing
    voice.dial_outcome_unheard(reached, "completed")
    voice.dial_outcome_unheard(missed, "no-answer")
    assert twilio.reached(reached.sid) is True
    assert twilio.reached(missed.sid) is False
    assert reached.ended and missed.ended


def test_the_console_knows_of_no_dial(svc):
    assert svc.voice_gateway.reached("CA" + "0" * 32) is None


def answered(voice, svc, monkeypatch, clock, waited=timedelta(seconds=30)):
    """A caller waits, and Answer puts them through to the handler's phone (the Dial rings)."""
    monkeypatch.setattr(svc, "voice_gateway", gateway(voice))
    call = queued(voice)
    clock.advance(seconds=waited.total_seconds())
    assert phone_calls.bridge(svc, call.sid, "handler",
                              lambda at: bridge_twiml(HANDLER_PHONE, svc.public_base_url, by="handler", at=at))
    assert call.dialled == [HANDLER_PHONE] and leg(svc, call.sid).outcome == "answered"
    return call


def test_a_handler_never_reached_whose_dial_result_was_lost_is_called_back(voice, svc, clock, monkeypatch):
    """The handler's phone rang out, and the dial result never came: Twilio ended the call and its status
    callback only stamped the answered leg's hang-up. The check finds nobody was reached: the caller is ended
    as the hang-up in the queue it was, and called back."""
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(seconds=25)  # the handler's phone rings out
    voice.dial_outcome_unheard(call, "no-answer")
    hung_up = clock.now()
    row = leg(svc, call.sid)
    assert (row.outcome, row.hung_up_at, row.dial_status) == ("answered", hung_up, None)
    clock.advance(minutes=1)
    assert lost_calls.check(svc) == 0  # within the grace: the dial result may still come
    assert leg(svc, call.sid).outcome == "answered"
    clock.advance(minutes=1)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    (callback,) = all_calls(svc)
    assert (row.outcome, row.answered_at, row.answered_by, row.hung_up_at, row.left_queue_at, row.dial_status) == (
        "abandoned", None, None, hung_up, hung_up, "not-reached")
    assert row.call_ref == callback.ref and callback.state == "awaiting_callback"
    assert lost_calls.check(svc) == 0  # nothing twice
    status, _ = voice.webhook(call, f"{svc.public_base_url}/webhooks/twilio/voice/dial-result",
                              {"DialCallStatus": "no-answer"})  # the lost dial result, should it come after all
    assert status == 200 and leg(svc, call.sid) == row and len(all_calls(svc)) == 1


def test_a_handler_reached_whose_dial_result_was_lost_stays_answered(voice, svc, clock, monkeypatch):
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(minutes=6)  # the conversation
    voice.dial_outcome_unheard(call, "completed")
    clock.advance(minutes=3)
    assert lost_calls.check(svc) == 0
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by, row.dial_status) == ("answered", "handler", "completed")
    assert all_calls(svc) == []
    asked = voice.requests
    assert lost_calls.check(svc) == 0 and voice.requests == asked  # recorded: never asked again


def test_with_the_hang_up_lost_too_the_answer_is_asked_about_once_no_call_lasts_longer(voice, svc, clock,
                                                                                       monkeypatch):
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(seconds=25)
    voice.dial_outcome_unheard(call, "busy", status_callback=False)
    ended = clock.now()
    clock.advance(minutes=30)
    assert lost_calls.check(svc) == 0  # for all ipoa knows, a conversation going on: not asked about
    assert leg(svc, call.sid).outcome == "answered"
    clock.advance(seconds=lost_calls.LONGEST_CALL.total_seconds())
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert (row.outcome, row.hung_up_at, row.dial_status) == ("abandoned", ended, "not-reached")
    assert row.call_ref is not None


def test_a_dial_result_that_came_is_never_asked_about(voice, svc, clock, monkeypatch):
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(minutes=5)
    voice.hang_up(call)  # the dial result (completed), then the status callback
    assert leg(svc, call.sid).dial_status == "completed"
    clock.advance(minutes=lost_calls.LONGEST_CALL.total_seconds() / 60 + 1)
    asked = voice.requests
    assert lost_calls.check(svc) == 0 and voice.requests == asked
    assert leg(svc, call.sid).outcome == "answered"


def test_a_conversation_going_on_is_not_asked_about(voice, svc, clock, monkeypatch):
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(minutes=45)
    asked = voice.requests
    assert lost_calls.check(svc) == 0 and voice.requests == asked
    assert leg(svc, call.sid).outcome == "answered" and not call.ended


def test_twilio_unreachable_changes_nothing_until_past_asking_and_logs_no_number(voice, svc, clock, monkeypatch,
                                                                                caplog):
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(seconds=25)
    voice.dial_outcome_unheard(call, "no-answer")
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url="http://127.0.0.1:9", timeout=5))
    clock.advance(minutes=3)
    with caplog.at_level(logging.INFO):
        assert lost_calls.check(svc) == 0
    row = leg(svc, call.sid)
    assert (row.outcome, row.dial_status) == ("answered", None)
    assert "could not ask Twilio about the dial" in caplog.text and call.sid in caplog.text
    assert CALLER not in caplog.text and CALLER[1:] not in caplog.text
    clock.advance(seconds=lost_calls.LONGEST_CALL.total_seconds())
    assert lost_calls.check(svc) == 0  # past asking: marked unknown, the answer stands
    assert leg(svc, call.sid).dial_status == "unknown"


def test_with_the_hang_up_lost_too_twilio_unreachable_is_asked_again_not_marked_unknown_at_once(
        voice, svc, clock, monkeypatch):
    """With the hang-up lost too, the answer is first asked about once no call can last longer (LONGEST_CALL
    after it): Twilio unreachable then is asked again at the next checks, for as long as after a hang-up
    heard of, not marked unknown at the first failure (the caller, never reached, would never be called back)."""
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(seconds=25)
    voice.dial_outcome_unheard(call, "no-answer", status_callback=False)
    ended = clock.now()
    twilio = svc.voice_gateway
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url="http://127.0.0.1:9", timeout=5))
    clock.advance(seconds=lost_calls.LONGEST_CALL.total_seconds())
    assert lost_calls.check(svc) == 0
    assert (leg(svc, call.sid).outcome, leg(svc, call.sid).dial_status) == ("answered", None)
    clock.advance(minutes=30)
    monkeypatch.setattr(svc, "voice_gateway", twilio)  # back
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert (row.outcome, row.hung_up_at, row.dial_status) == ("abandoned", ended, "not-reached")
    assert row.call_ref is not None


def test_without_twilio_an_answer_without_a_dial_result_is_marked_unknown(voice, svc, clock):
    """The console gateway (the embedded default) redirects nothing and knows of no Dial: nobody can say."""
    call = queued(voice)
    clock.advance(seconds=20)
    assert phone_calls.bridge(svc, call.sid, "handler",
                              lambda at: bridge_twiml(HANDLER_PHONE, svc.public_base_url, by="handler", at=at))
    phone_calls.status(svc, call.sid, "completed")
    clock.advance(minutes=3)
    assert lost_calls.check(svc) == 0
    row = leg(svc, call.sid)
    assert (row.outcome, row.dial_status) == ("answered", "unknown")


def test_an_answer_undone_and_made_again_is_asked_about_only_for_the_new_answer(voice, svc, clock, monkeypatch):
    """The first handler's phone rang out (its dial result came: back in the queue); the second handler's
    dial result is lost. Only the second answer is asked about, and it is the one that ends."""
    call = answered(voice, svc, monkeypatch, clock)
    clock.advance(seconds=25)
    voice.dial_outcome(call, "no-answer")
    assert call.queue == "CNH" and leg(svc, call.sid).dial_status == "no-answer"
    clock.advance(seconds=10)
    assert phone_calls.bridge(svc, call.sid, "other",
                              lambda at: bridge_twiml(HANDLER_PHONE, svc.public_base_url, by="other", at=at))
    assert leg(svc, call.sid).dial_status is None  # the new answer's result is to come
    clock.advance(seconds=25)
    voice.dial_outcome_unheard(call, "no-answer")
    clock.advance(minutes=3)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert (row.outcome, row.answered_by, row.dial_status) == ("abandoned", None, "not-reached")
