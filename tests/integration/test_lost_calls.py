"""Callers whose hang-up no webhook reported (service/lost_calls.py; docs/telephony.md, "Lost webhooks"): the
Voice emulator's caller hangs up with every webhook lost, and the check asks Twilio's REST API (the
emulator's) how the call stands. SQLite here, PostgreSQL with TEST_DATABASE_URL."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from ipoa.adapters.voice_gateway import TwilioVoiceGateway
from ipoa.domain.telephony.centre_voice import Overflow
from ipoa.service import lost_calls, phone_calls, phone_queue
from tests.conftest import VOICE_SID, VOICE_TOKEN
from tests.helpers.voice import CALLER, CNH_LINE, OTHER_CALLER, all_calls, leg, with_line
from workers.scheduler import LostCallCheck


def queued(voice, caller=CALLER):
    call = voice.ring(from_=caller, to=CNH_LINE)
    voice.press(call, "2")
    assert call.queue == "CNH"
    return call


def through_twilio(svc, voice, monkeypatch, base_url=None):
    monkeypatch.setattr(svc, "voice_gateway", TwilioVoiceGateway(
        account_sid=VOICE_SID, auth_token=VOICE_TOKEN, api_base_url=base_url or voice.base_url, timeout=5))


def test_a_hang_up_no_webhook_reported_ends_at_twilios_end_and_the_caller_is_called_back(voice, svc, clock,
                                                                                        monkeypatch):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    clock.advance(seconds=30)
    voice.hang_up_unheard(call)
    ended = clock.now()
    clock.advance(minutes=9)
    assert lost_calls.check(svc) == 0  # waited 9.5 minutes: not asked about yet
    assert leg(svc, call.sid).hung_up_at is None
    clock.advance(minutes=1)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert (row.hung_up_at, row.left_queue_at, row.outcome) == (ended, ended, "abandoned")
    (callback,) = all_calls(svc)
    assert row.call_ref == callback.ref and callback.state == "awaiting_callback"
    assert lost_calls.check(svc) == 0  # nothing twice
    voice.status_callback(call, "completed")  # the lost callback, should it come after all
    assert leg(svc, call.sid) == row and len(all_calls(svc)) == 1


def test_a_short_hang_up_no_webhook_reported_is_a_short_hang_up(voice, svc, clock, monkeypatch):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    clock.advance(seconds=3)
    voice.hang_up_unheard(call)
    clock.advance(minutes=20)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert row.outcome == "short_abandon" and row.hung_up_at == row.enqueued_at + timedelta(seconds=3)
    assert all_calls(svc) == []


def test_a_caller_still_waiting_is_left_alone(voice, svc, clock, monkeypatch):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    clock.advance(minutes=30)
    assert lost_calls.check(svc) == 0
    assert [w.call_sid for w in phone_queue.waiting_callers(svc, "CNH")] == [call.sid]


def test_a_lost_hang_up_no_longer_sends_every_later_caller_to_the_overflow(voice, svc, clock, catalogue,
                                                                          monkeypatch):
    monkeypatch.setattr(svc, "catalogue", with_line(catalogue, "CNH", overflow=Overflow(
        "CHS", "queue", 180, when_nobody_available=False)))
    through_twilio(svc, voice, monkeypatch)
    lost = queued(voice)
    voice.hang_up_unheard(lost)
    clock.advance(minutes=15)
    overflowed = voice.ring(from_=OTHER_CALLER, to=CNH_LINE)
    voice.press(overflowed, "2")
    assert overflowed.queue == "CHS"  # the lost caller is the queue's longest wait: 15 minutes
    voice.hang_up(overflowed)
    assert lost_calls.check(svc) == 1
    assert queued(voice, OTHER_CALLER).queue == "CNH"


def test_without_twilio_a_leg_ends_once_it_has_waited_longer_than_any_call_lasts(voice, svc, clock):
    call = queued(voice)  # the console gateway (the embedded default) knows of no call
    clock.advance(seconds=(lost_calls.LONGEST_CALL - timedelta(minutes=1)).total_seconds())
    assert lost_calls.check(svc) == 0
    clock.advance(minutes=2)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert row.hung_up_at == row.enqueued_at + lost_calls.LONGEST_CALL and row.outcome == "abandoned"
    assert row.call_ref is not None


def test_twilio_unreachable_changes_nothing_and_logs_no_number(voice, svc, clock, monkeypatch, caplog):
    call = queued(voice)
    through_twilio(svc, voice, monkeypatch, base_url="http://127.0.0.1:9")  # nothing listens there
    clock.advance(minutes=11)
    with caplog.at_level(logging.INFO):
        assert lost_calls.check(svc) == 0
    assert leg(svc, call.sid).hung_up_at is None
    assert "could not ask Twilio" in caplog.text and call.sid in caplog.text
    assert CALLER not in caplog.text and CALLER[1:] not in caplog.text


def test_a_leg_that_left_the_queue_meanwhile_is_not_ended_again(voice, svc, clock, monkeypatch):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    clock.advance(minutes=11)
    assert phone_calls.answered(svc, call.sid, "handler")  # answered between the read and the ending
    assert not phone_calls.ended_unseen(svc, call.sid, clock.now())
    assert leg(svc, call.sid).outcome == "answered"


def test_the_schedulers_check_runs_once_a_minute_and_survives_a_failure(svc, caplog):
    now = [0.0]
    runs: list[int] = []

    def run(_svc):
        runs.append(1)
        if len(runs) == 2:
            raise RuntimeError("database down")
        return 1

    check = LostCallCheck(svc, run=run, monotonic=lambda: now[0], background=False)
    assert check.poll() and check.last == 1  # the first tick looks at once
    now[0] = 59.0
    assert not check.poll() and len(runs) == 1
    now[0] = 60.0
    with caplog.at_level(logging.WARNING):
        assert check.poll() and check.last is None  # failed: logged by its kind, tried again a minute later
    assert "lost-call check failed (RuntimeError)" in caplog.text and "database down" not in caplog.text
    now[0] = 120.0
    assert check.poll() and check.last == 1


def test_a_slow_twilio_never_holds_up_the_scheduler(svc):
    """The check runs in a thread of its own: poll() returns at once while Twilio takes its time, and a
    check still running when the next is due is not doubled."""
    now = [0.0]
    release, started = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow(_svc):
        runs.append(1)
        started.set()
        assert release.wait(10)
        return 2

    check = LostCallCheck(svc, run=slow, monotonic=lambda: now[0])
    before = time.monotonic()
    assert check.poll()
    assert started.wait(5) and time.monotonic() - before < 1.0
    now[0] = 61.0
    assert not check.poll() and len(runs) == 1  # the first still runs
    release.set()
    check.stop(5)
    assert check.last == 2 and not check.thread.is_alive()
    assert check.poll() and len(runs) == 2
    check.stop(5)


def test_a_call_twilio_does_not_know_ends_by_time_alone_not_never(voice, svc, clock, monkeypatch, caplog):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    del voice.calls[call.sid]  # Twilio answers 404 for it (another account's number, say)
    clock.advance(minutes=11)
    with caplog.at_level(logging.WARNING):
        assert lost_calls.check(svc) == 0
    assert "could not ask Twilio" in caplog.text and leg(svc, call.sid).hung_up_at is None
    clock.advance(seconds=(lost_calls.LONGEST_CALL - timedelta(minutes=10)).total_seconds())
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert row.hung_up_at == row.enqueued_at + lost_calls.LONGEST_CALL


def test_twilios_end_before_the_caller_was_queued_is_taken_as_when_they_were_queued(voice, svc, clock,
                                                                                   monkeypatch):
    through_twilio(svc, voice, monkeypatch)
    call = queued(voice)
    voice.hang_up_unheard(call)
    call.ended_at = clock.now() - timedelta(minutes=2)  # another clock's skew
    clock.advance(minutes=11)
    assert lost_calls.check(svc) == 1
    row = leg(svc, call.sid)
    assert row.hung_up_at == row.enqueued_at and row.outcome == "short_abandon"


def test_a_hang_up_learnt_of_after_the_callback_window_is_called_back_at_once(voice, svc, clock, monkeypatch):
    """ipoa was down for longer than the callback window (20 minutes): the hang-up Twilio reports is past its
    callback's due time. The callback is made, due at once (its clock breaches now), and the check goes on
    to the next caller; a promise in the past used to be refused, failing every later check."""
    through_twilio(svc, voice, monkeypatch)
    first, second = queued(voice), queued(voice, OTHER_CALLER)
    clock.advance(seconds=30)
    voice.hang_up_unheard(first)
    voice.hang_up_unheard(second)
    ended = clock.now()
    clock.advance(minutes=45)
    assert lost_calls.check(svc) == 2
    made = all_calls(svc)
    assert len(made) == 2 and {c.state for c in made} == {"awaiting_callback"}
    for call in (first, second):
        row = leg(svc, call.sid)
        assert (row.outcome, row.hung_up_at) == ("abandoned", ended)
    for call in made:
        assert clock.now() < call.callback_due <= clock.now() + timedelta(seconds=1)
