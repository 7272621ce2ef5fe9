"""Hostile and repeated input to the Twilio Voice webhooks (issue 15): unsigned or mis-signed requests get a
403 and change nothing; a malformed parameter gets a 400 naming it (never the value) and changes nothing,
never a 5xx; unknown CallSids change nothing; Twilio's retries and late, repeated or out-of-order callbacks
change nothing twice. On SQLite and on PostgreSQL (CI's second pass)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from ipoa.adapters import orm
from ipoa.domain.telephony.centre_voice import Overflow
from tests.helpers.properties import examples
from tests.helpers.voice import CALLER, CNH_LINE, leg, with_line

TOKEN = "voice-hostile-auth-token"
BASE = "https://ipoa.example.test"
PREFIX = "/webhooks/twilio/voice"
SID = "CA" + "a" * 32
ENDPOINTS = ("/incoming", "/menu?attempt=1", "/queue/wait", "/queue/left", "/status", "/dial-result")
TABLES = (orm.phone_legs, orm.calls, orm.audit_events, orm.outbox, orm.timers)


@pytest.fixture
def twilio(svc, monkeypatch):
    monkeypatch.setattr(svc, "public_base_url", BASE)
    monkeypatch.setattr(svc, "twilio", {"account_sid": "AC" + "1" * 32, "auth_token": TOKEN})


def counts(svc) -> dict[str, int]:
    with svc.uow() as uow:
        return {t.name: uow.session.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def post(client, path: str, form: dict, *, token: str | None = TOKEN):
    headers = {} if token is None else {
        "X-Twilio-Signature": RequestValidator(token).compute_signature(BASE + PREFIX + path, form)}
    return client.post(PREFIX + path, data=form, headers=headers)


def ring(client, sid=SID, caller=CALLER):
    return post(client, "/incoming", {"CallSid": sid, "From": caller, "To": CNH_LINE, "CallStatus": "ringing"})


def queued(client, sid=SID):
    assert ring(client, sid).status_code == 200
    answer = post(client, "/menu?attempt=1", {"CallSid": sid, "Digits": "2"})
    assert "<Enqueue" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_an_unsigned_or_mis_signed_webhook_is_403_and_changes_nothing(client, svc, twilio, path, token):
    queued(client)
    before, row = counts(svc), leg(svc, SID)
    form = {"CallSid": SID, "From": CALLER, "To": CNH_LINE, "Digits": "1", "QueueResult": "hangup",
            "CallStatus": "completed"}
    assert post(client, path, form, token=token).status_code == 403
    assert counts(svc) == before and leg(svc, SID) == row


@pytest.mark.parametrize("path", ["/menu?attempt=%00", "/queue/left?rejoined=%E2%80%AE",
                                  "/dial-result?by=%00&at=1", "/status?x=%00"])
def test_an_unsigned_webhook_with_a_bad_query_parameter_is_403_not_400(client, svc, twilio, path):
    """The signature is checked before anything reads the query (web/input_limits.py leaves Twilio's webhooks
    to it): an unsigned request learns nothing of how the parameters are checked."""
    queued(client)
    before, row = counts(svc), leg(svc, SID)
    answer = client.post(PREFIX + path, data={"CallSid": SID, "Digits": "1", "QueueResult": "hangup"})
    assert answer.status_code == 403
    assert counts(svc) == before and leg(svc, SID) == row


def test_a_signature_for_another_url_is_403(client, svc, twilio):
    form = {"CallSid": SID, "From": CALLER, "To": CNH_LINE}
    signature = RequestValidator(TOKEN).compute_signature(BASE + PREFIX + "/status", form)
    assert client.post(PREFIX + "/incoming", data=form, headers={"X-Twilio-Signature": signature}).status_code == 403
    assert counts(svc)["phone_legs"] == 0


@pytest.mark.parametrize(("path", "form", "field"), [
    ("/incoming", {"CallSid": "CA123", "From": CALLER, "To": CNH_LINE}, "CallSid"),
    ("/incoming", {"From": CALLER, "To": CNH_LINE}, "CallSid"),
    ("/incoming", {"CallSid": SID, "From": CALLER + "\x00", "To": CNH_LINE}, "From"),
    ("/incoming", {"CallSid": SID, "From": CALLER, "To": CNH_LINE + "\u202e"}, "To"),
    ("/incoming", {"CallSid": SID, "From": "9" * 300, "To": CNH_LINE}, "From"),
    ("/menu?attempt=1", {"CallSid": SID, "Digits": "12"}, "Digits"),
    ("/menu?attempt=1", {"CallSid": SID, "Digits": "\x00"}, "Digits"),
    ("/menu?attempt=9", {"CallSid": SID, "Digits": "1"}, "attempt"),
    ("/menu?attempt=x", {"CallSid": SID, "Digits": "1"}, "attempt"),
    ("/menu?attempt=%C2%B2", {"CallSid": SID, "Digits": "1"}, "attempt"),  # "²": isdigit(), but not int()
    ("/menu?attempt=%E2%91%A0", {"CallSid": SID, "Digits": "1"}, "attempt"),  # "①"
    ("/menu?attempt=" + "1" * 5000, {"CallSid": SID, "Digits": "1"}, "attempt"),  # beyond int()'s digits
    ("/queue/wait", {"CallSid": SID, "QueuePosition": "-1"}, "QueuePosition"),
    ("/queue/wait", {"CallSid": SID, "AvgQueueTime": "1e9"}, "AvgQueueTime"),
    ("/queue/left", {"CallSid": SID, "QueueResult": "exploded"}, "QueueResult"),
    ("/queue/left", {"CallSid": SID, "QueueResult": "hangup", "QueueTime": "soon"}, "QueueTime"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "CallDuration": "-3"}, "CallDuration"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "yesterday"}, "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "Mon, 23 Nov 2026 10:00:05 +0000\x00"},
     "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed\x00"}, "CallStatus"),
    # Signed, so only Twilio could send them: outside 2000-2099 (9999's end overflowed: a 500).
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "Fri, 31 Dec 9999 23:59:59 +0000"},
     "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "Fri, 31 Dec 9999 23:59:59 -1200"},
     "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "31 Dec 9999 23:59:59 GMT"}, "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "Mon, 01 Jan 1900 00:00:00 +0100"},
     "Timestamp"),
    ("/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": "Fri, 31 Dec 1999 23:59:59 +0000"},
     "Timestamp"),
    ("/dial-result", {"CallSid": SID, "DialCallStatus": "exploded"}, "DialCallStatus"),
    ("/dial-result", {"CallSid": SID}, "DialCallStatus"),
    ("/dial-result", {"CallSid": "CA1", "DialCallStatus": "busy"}, "CallSid"),
    # The answer the dial result ends (web/twiml.bridge_twiml): both, or neither.
    ("/dial-result?by=handler", {"CallSid": SID, "DialCallStatus": "busy"}, "at"),
    ("/dial-result?at=1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "by"),
    ("/dial-result?by=handler&at=soon", {"CallSid": SID, "DialCallStatus": "busy"}, "at"),
    ("/dial-result?by=handler&at=%2B1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "at"),
    ("/dial-result?by=handler&at=" + "9" * 20, {"CallSid": SID, "DialCallStatus": "busy"}, "at"),
    ("/dial-result?by=handler&at=253402300799000", {"CallSid": SID, "DialCallStatus": "busy"}, "at"),  # 9999
    ("/dial-result?by=" + "h" * 257 + "&at=1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "by"),
    ("/dial-result?by=&at=1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "by"),
    ("/queue/left?rejoined=soon", {"CallSid": SID, "QueueResult": "hangup"}, "rejoined"),
    # Control characters and overrides in the query: the webhook's own check, after the signature's.
    ("/menu?attempt=%00", {"CallSid": SID, "Digits": "1"}, "attempt"),
    ("/queue/left?rejoined=%E2%80%AE", {"CallSid": SID, "QueueResult": "hangup"}, "rejoined"),
    ("/dial-result?by=%00&at=1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "by"),
    ("/dial-result?by=h%E2%80%AEr&at=1795428000000", {"CallSid": SID, "DialCallStatus": "busy"}, "by"),
    ("/status", {"CallSid": SID + "\x00", "CallStatus": "completed"}, "CallSid"),
])
def test_a_malformed_parameter_is_400_naming_it_and_changes_nothing(client, svc, twilio, path, form, field):
    queued(client)
    before, row = counts(svc), leg(svc, SID)
    answer = post(client, path, form)
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert text.startswith(f"{field}:") and "\x00" not in text and "\u202e" not in text
    assert counts(svc) == before and leg(svc, SID) == row


def test_unknown_call_sids_change_nothing_and_the_caller_is_never_left_in_silence(client, svc, twilio):
    queued(client)
    before, row = counts(svc), leg(svc, SID)
    other = "CA" + "b" * 32
    for path, form in (("/menu?attempt=1", {"CallSid": other, "Digits": "1"}),
                       ("/queue/left", {"CallSid": other, "QueueResult": "leave"})):
        answer = post(client, path, form)
        assert answer.status_code == 200 and "<Say" in answer.get_data(as_text=True) and "999" in answer.get_data(
            as_text=True)
    wait = post(client, "/queue/wait", {"CallSid": other, "QueuePosition": "3"})
    assert "You are number 3 in the queue." in wait.get_data(as_text=True)
    assert post(client, "/status", {"CallSid": other, "CallStatus": "completed"}).status_code == 204
    assert counts(svc) == before and leg(svc, SID) == row


def test_a_retried_incoming_webhook_gets_the_same_answer_and_one_leg(client, svc, twilio):
    first = ring(client).get_data(as_text=True)
    assert ring(client).get_data(as_text=True).endswith(first[first.index("<Gather"):])
    assert counts(svc)["phone_legs"] == 1
    post(client, "/menu?attempt=1", {"CallSid": SID, "Digits": "1"})
    row = leg(svc, SID)
    assert "<Enqueue" in ring(client).get_data(as_text=True)  # retried late: where the caller is now
    again = post(client, "/menu?attempt=1", {"CallSid": SID, "Digits": "2"})  # the menu retried: no change
    assert "<Enqueue" in again.get_data(as_text=True) and leg(svc, SID) == row and row.priority


@pytest.mark.parametrize("retried", ["/incoming", "/menu?attempt=1"])
def test_a_retried_webhook_crossing_answer_keeps_the_caller_in_their_queue(client, svc, twilio, clock, retried):
    """Twilio retries the webhook whose answer queued the caller (it never got that answer) while Answer holds
    them (marked answered, its REST redirect on its way): as a Leave crossing Answer, back into the queue
    without a word for the redirect to find them there, never hung up on (docs/telephony.md, "Bad input and
    retries"). Nothing changes."""
    from ipoa.service import phone_calls

    queued(client)
    clock.advance(seconds=30)
    assert phone_calls.answered(svc, SID, "handler")
    row = leg(svc, SID)
    form = {"CallSid": SID, "From": CALLER, "To": CNH_LINE, "CallStatus": "ringing"} if retried == "/incoming" \
        else {"CallSid": SID, "Digits": "2"}
    body = post(client, retried, form).get_data(as_text=True)
    assert "<Enqueue" in body and "rejoined=30000" in body and "<Hangup" not in body and "<Say" not in body
    assert leg(svc, SID) == row


def test_repeated_and_out_of_order_callbacks_change_nothing_twice(client, svc, twilio, clock):
    queued(client)
    clock.advance(seconds=30)
    assert post(client, "/queue/left", {"CallSid": SID, "QueueResult": "hangup", "QueueTime": "30"}).status_code == 200
    after_first = counts(svc)
    assert after_first["calls"] == 1
    row = leg(svc, SID)
    clock.advance(seconds=5)
    post(client, "/queue/left", {"CallSid": SID, "QueueResult": "hangup", "QueueTime": "35"})  # retried
    assert counts(svc) == after_first and leg(svc, SID) == row
    assert post(client, "/status", {"CallSid": SID, "CallStatus": "completed"}).status_code == 204
    done = leg(svc, SID)
    assert done.last_status == "completed" and done.hung_up_at == row.hung_up_at and counts(svc) == after_first
    for late in ("in-progress", "ringing", "completed", "failed"):  # late, or repeated: none moves it back
        post(client, "/status", {"CallSid": SID, "CallStatus": late})
    assert leg(svc, SID) == done and counts(svc) == after_first


def test_a_late_status_callback_with_only_a_timestamp_is_dated_by_it(client, svc, twilio, clock):
    """A call-progress event without CallDuration: its Timestamp (whole seconds) dates the hang-up."""
    from email.utils import format_datetime

    queued(client)
    enqueued = leg(svc, SID).enqueued_at
    clock.advance(seconds=60)
    stamp = format_datetime(enqueued + timedelta(seconds=3))
    assert post(client, "/status", {"CallSid": SID, "CallStatus": "completed", "Timestamp": stamp}).status_code == 204
    row = leg(svc, SID)
    assert row.outcome == "short_abandon" and row.hung_up_at == enqueued + timedelta(seconds=3.5)
    assert counts(svc)["calls"] == 0


def test_a_status_callback_before_the_enqueue_action_makes_the_callback_once(client, svc, twilio, clock):
    queued(client)
    clock.advance(seconds=30)
    assert post(client, "/status", {"CallSid": SID, "CallStatus": "completed"}).status_code == 204
    assert counts(svc)["calls"] == 1 and leg(svc, SID).outcome == "abandoned"
    post(client, "/queue/left", {"CallSid": SID, "QueueResult": "hangup", "QueueTime": "30"})
    assert counts(svc)["calls"] == 1


_FIELDS = ("CallSid", "From", "To", "Digits", "QueueResult", "QueueTime", "QueuePosition", "AvgQueueTime",
           "CallStatus", "CallDuration", "Timestamp", "DialCallStatus")


@settings(max_examples=examples(120), suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(path=st.sampled_from(ENDPOINTS),
       form=st.dictionaries(st.sampled_from(_FIELDS),
                            st.one_of(st.text(max_size=80), st.sampled_from([SID, CALLER, CNH_LINE, "1", "hangup",
                                                                            "completed", "leave", ""])),
                            max_size=len(_FIELDS)))
def test_any_signed_form_is_answered_without_a_5xx(client, svc, twilio, path, form):
    answer = post(client, path, {k: v.replace("\ud800", "") for k, v in form.items()})
    assert answer.status_code < 500, answer.get_data(as_text=True)


def _dial_overflow(svc, catalogue, monkeypatch, **when):
    """CNH's line overflows by phone to the Community Hub (CHS)."""
    monkeypatch.setattr(svc, "catalogue", with_line(catalogue, "CNH", overflow=Overflow("CHS", "dial", **when)))


def test_a_retried_menu_after_an_overflow_by_phone_puts_the_caller_through_again(client, svc, twilio, catalogue,
                                                                                  monkeypatch):
    """Nobody is taking CNH's calls, so the menu's choice dials the overflow centre; Twilio never got that
    answer and retries: the same transfer again, not the menu (which would loop the caller for ever)."""
    _dial_overflow(svc, catalogue, monkeypatch, longest_wait_seconds=None, when_nobody_available=True)
    ring(client)
    first = post(client, "/menu?attempt=1", {"CallSid": SID, "Digits": "2"}).get_data(as_text=True)
    assert "<Dial" in first and "<Gather" not in first
    row, before = leg(svc, SID), counts(svc)
    for key in ("2", "1", ""):
        again = post(client, "/menu?attempt=1", {"CallSid": SID, "Digits": key}).get_data(as_text=True)
        assert again == first
    retried_first = ring(client).get_data(as_text=True)  # the incoming call's own webhook, retried late
    assert "<Dial" in retried_first and "<Gather" not in retried_first
    assert leg(svc, SID) == row and counts(svc) == before


def test_a_retried_leave_after_an_overflow_by_phone_puts_the_caller_through_again(client, svc, twilio, catalogue,
                                                                                   monkeypatch, clock):
    _dial_overflow(svc, catalogue, monkeypatch, longest_wait_seconds=60, when_nobody_available=False)
    queued(client)
    clock.advance(seconds=120)
    assert "<Leave" in post(client, "/queue/wait", {"CallSid": SID}).get_data(as_text=True)
    left = {"CallSid": SID, "QueueResult": "leave", "QueueTime": "120"}
    first = post(client, "/queue/left", left).get_data(as_text=True)
    assert "<Dial" in first
    row, before = leg(svc, SID), counts(svc)
    assert post(client, "/queue/left", left).get_data(as_text=True) == first  # not a hang-up without a word
    assert leg(svc, SID) == row and counts(svc) == before


@pytest.mark.parametrize(("elapsed", "queue_time", "outcome", "waited", "calls"), [
    # Hung up after 2 s; the action came 20 s later (a retry): the middle of Twilio's second, not abandoned.
    (20, "2", "short_abandon", 2.5, 0),
    (30, "900", "abandoned", 30, 1),  # a QueueTime longer than the caller was queued is capped at now
    # QueueTime is whole seconds, rounded down: 5 means 5 to 6 s, so an action on time is ipoa's own 5.5 s
    # (more than the 5 s threshold: abandoned), and a late one the middle of that second.
    (5.5, "5", "abandoned", 5.5, 1),
    (6, "5", "abandoned", 6, 1),
    (5, "5", "short_abandon", 5, 0),
    (40, "5", "abandoned", 5.5, 1),
    (40, "4", "short_abandon", 4.5, 0),
])
def test_a_hang_up_action_counts_twilios_queue_time_capped_at_now(client, svc, twilio, clock, elapsed, queue_time,
                                                                  outcome, waited, calls):
    queued(client)
    enqueued = leg(svc, SID).enqueued_at
    clock.advance(seconds=elapsed)
    post(client, "/queue/left", {"CallSid": SID, "QueueResult": "hangup", "QueueTime": queue_time})
    row = leg(svc, SID)
    assert row.outcome == outcome and (row.hung_up_at - enqueued).total_seconds() == waited
    assert counts(svc)["calls"] == calls
