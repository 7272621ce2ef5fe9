"""SMS over the real twilio client against the Twilio API emulator, with signed webhooks into the app
served on a live local server."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from ipoa.adapters.orm import professionals, referrals, sms_messages
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.adapters.sms_gateway import TwilioGateway
from ipoa.domain.sms.delivery import SEND_LEASE_SECONDS
from ipoa.service import sms
from tests.helpers.rota import add_on_duty
from tests.helpers.sms import IDENTIFIERS, drain, handle_events, referred_call
from tests.twilio_emulator import TwilioEmulator

SID, TOKEN, FROM = "AC" + "1" * 32, "emulator-auth-token", "+447700900999"
NIA = "+447700900201"


@pytest.fixture
def emulator(clock):
    # Twilio's clock and ours agree (the app's is a test clock here).
    with TwilioEmulator(account_sid=SID, auth_token=TOKEN, clock=clock.now) as emu:
        yield emu


@pytest.fixture
def twilio_app(app, svc, emulator, monkeypatch):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(svc, "public_base_url", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(svc, "twilio", {"account_sid": SID, "auth_token": TOKEN})
    monkeypatch.setattr(svc, "sms_gateway", TwilioGateway(account_sid=SID, auth_token=TOKEN, from_=FROM,
                                                          api_base_url=emulator.base_url, timeout=2))
    yield app
    server.shutdown()
    thread.join(10)


def stored(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages).order_by(sms_messages.c.created_at)).all()


def referral_state(svc, referral_id):
    with svc.uow() as uow:
        return uow.session.scalar(select(referrals.c.state).where(referrals.c.id == referral_id))


def test_a_referral_reaches_the_emulator_without_identifiers_and_receipts_are_recorded(
        twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    drain(twilio_app, svc)
    (received,) = emulator.wait_for(1)
    assert received.to == NIA and call.ref in received.body
    for secret in IDENTIFIERS:
        assert secret not in received.body
    assert received.status_callback == f"{svc.public_base_url}/webhooks/twilio/sms/status"
    (row,) = stored(svc)
    assert (row.status, row.provider_sid) == ("queued", received.sid)
    assert emulator.send_status(received.sid, "delivered") == 204
    assert emulator.send_status(received.sid, "sent") == 204  # late and out of order
    (row,) = stored(svc)
    assert row.status == "delivered" and row.delivered_at is not None


def test_a_receipt_with_a_bad_signature_is_refused(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    referred_call(svc, handler_actor)
    drain(twilio_app, svc)
    (received,) = emulator.wait_for(1)
    assert emulator.send_status(received.sid, "delivered", auth_token="wrong") == 403
    assert stored(svc)[0].status == "queued"


def test_a_permanent_twilio_error_fails_the_message_with_its_code(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    emulator.script(NIA, [("error", 400, 21610, "Attempt to send to unsubscribed recipient")])
    referred_call(svc, handler_actor)
    drain(twilio_app, svc)
    (row,) = stored(svc)
    assert (row.status, row.error_code) == ("failed", 21610)


def test_rate_limiting_is_retried_and_the_message_goes_once(twilio_app, svc, emulator, handler_actor):
    from rq import Queue

    from ipoa.service import outbox

    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    emulator.script(NIA, [("error", 429, 20429, "Too Many Requests")])
    referred_call(svc, handler_actor)
    drain(twilio_app, svc)  # first attempt refused: the text waits out its back-off in the table
    (row,) = stored(svc)
    assert row.status == "pending" and row.next_attempt_at == svc.clock.now() + timedelta(seconds=2)
    queue = Queue(QUEUE_NAME, connection=svc.redis())
    assert outbox.sweep_texts(svc, queue) == 0  # not yet
    svc.clock.advance(seconds=2)
    assert outbox.sweep_texts(svc, queue) == 1  # the relay hands it over again: a plain job
    drain(twilio_app, svc)
    assert stored(svc)[0].status == "queued"
    assert sms.send(svc, row.id) == "queued"
    assert len(emulator.messages) == 1


def test_a_lost_response_is_not_sent_twice(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    emulator.script(NIA, [("accept_then_drop",)])  # Twilio took it, the answer never came back
    referred_call(svc, handler_actor)
    drain(twilio_app, svc)
    (row,) = stored(svc)
    assert row.status == "submitting" and len(emulator.messages) == 1
    svc.clock.advance(seconds=2)  # its back-off
    assert sms.send(svc, row.id) == "queued"
    assert len(emulator.messages) == 1 and stored(svc)[0].provider_sid == emulator.messages[0].sid


def test_texts_handed_over_together_go_in_one_batch_job_and_a_transient_failure_gets_its_own(
        twilio_app, svc, emulator, handler_actor):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    ned = "+447700900202"
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Ned", service="DN", mobile=ned)
    add_on_duty(svc, name="Noor", service="DN", mobile="+447700900203")
    emulator.script(ned, [("error", 503, 20500, "Service Unavailable")])
    referred_call(svc, handler_actor)
    queue = Queue(QUEUE_NAME, connection=svc.redis())
    from ipoa.service import outbox

    outbox.relay_once(svc, outbox.rq_send_queue(svc), block_seconds=0)
    assert [j.func_name for j in queue.jobs] == ["workers.jobs.send_sms_batch"]
    drain(twilio_app, svc)
    assert sorted(m.to for m in emulator.messages) == [NIA, "+447700900203"]
    by_to = {r.to: r for r in stored(svc)}
    assert by_to[ned].status == "submitting"  # a 503: it may have been taken, so the retry asks first
    assert by_to[ned].next_attempt_at == svc.clock.now() + timedelta(seconds=2)  # its own back-off
    assert ScheduledJobRegistry(queue=queue).count == 0  # nothing waits in RQ's scheduler
    svc.clock.advance(seconds=2)
    assert outbox.sweep_texts(svc, queue) == 1  # the relay hands it over again
    (job,) = queue.jobs
    assert job.id.startswith(f"sms-{by_to[ned].id}-r")
    drain(twilio_app, svc)
    assert stored(svc)[[r.to for r in stored(svc)].index(ned)].status == "queued"
    assert sms.send(svc, by_to[NIA].id) == "queued"  # and nothing goes twice
    assert sorted(m.to for m in emulator.messages) == sorted([NIA, ned, "+447700900203"])


def inbound(emulator, svc, body, from_=NIA, sid=None, **kw):
    return emulator.inbound(f"{svc.public_base_url}/webhooks/twilio/sms/inbound", from_=from_, to=FROM,
                            body=body, sid=sid, **kw)


def test_a_signed_accept_reply_moves_the_referral_and_the_referrer_hears(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor, type="professional", phone="07700 900299", wants_updates=True)
    drain(twilio_app, svc)
    status, text = inbound(emulator, svc, f"accept {call.ref.lower().replace('-', '')}", sid="SM" + "a" * 32)
    assert status == 200 and "now accepted" in text
    assert referral_state(svc, call.referrals[0].id) == "accepted"
    drain(twilio_app, svc)
    update = [m for m in emulator.messages if m.to == "+447700900299"]
    assert len(update) == 1 and call.ref in update[0].body
    # The same webhook again: nothing more happens, same answer.
    again = inbound(emulator, svc, f"accept {call.ref}", sid="SM" + "a" * 32)
    assert again == (status, text)


def test_decline_needs_a_reason_and_sends_the_call_back_to_triage(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    _, text = inbound(emulator, svc, f"DECLINE {call.ref}")
    assert "could not act" in text and referral_state(svc, call.referrals[0].id) == "sent"
    _, text = inbound(emulator, svc, f"DECLINE {call.ref} no capacity today")
    assert "now declined" in text and referral_state(svc, call.referrals[0].id) == "declined"


@pytest.mark.parametrize("who", ["unknown", "other_service"])
def test_replies_from_unknown_or_unlinked_numbers_change_nothing(twilio_app, svc, emulator, handler_actor, who):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Carl", service="CRT", mobile="+447700900202")
    call = referred_call(svc, handler_actor)
    sender = "+447700900555" if who == "unknown" else "+447700900202"
    status, text = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=sender)
    assert status == 200 and "could not act" in text and call.ref not in text
    assert referral_state(svc, call.referrals[0].id) == "sent"


def test_an_unsigned_reply_is_refused(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    status, _ = inbound(emulator, svc, f"ACCEPT {call.ref}", sign=False)
    assert status == 403 and referral_state(svc, call.referrals[0].id) == "sent"


def test_stop_and_start_are_honoured(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    inbound(emulator, svc, "STOP")
    with svc.uow() as uow:
        assert uow.session.scalar(select(professionals.c.opted_out_at)) is not None
    referred_call(svc, handler_actor)
    drain(twilio_app, svc)
    assert [m.to for m in emulator.messages] == [svc.directory.services["DN"].duty_lead]
    inbound(emulator, svc, "START")
    with svc.uow() as uow:
        assert uow.session.scalar(select(professionals.c.opted_out_at)) is None


def test_status_reply_tells_the_state(twilio_app, svc, emulator, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    _, text = inbound(emulator, svc, f"STATUS {call.ref}")
    assert f"{call.ref} for DN: sent" in text


def test_a_worker_killed_mid_send_causes_no_duplicate(app, svc, handler_actor, monkeypatch):
    """A real worker process dies while Twilio holds the request (the message is created, the answer
    never read). The message stays `submitting`; the retry finds it at Twilio and sends nothing."""
    import time

    from rq import Queue

    from ipoa.adapters.rq_queue import enqueue_sms
    from tests import processes

    with TwilioEmulator(account_sid=SID, auth_token=TOKEN) as emu:  # real time: the worker's clock
        add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
        referred_call(svc, handler_actor)
        handle_events(svc)
        (row,) = stored(svc)
        emu.script(NIA, [("delay", 30)])
        enqueue_sms(Queue(QUEUE_NAME, connection=svc.redis()), [row.id])
        worker = processes.start("workers.worker", svc, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=SID,
                                 TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM=FROM, TWILIO_API_BASE_URL=emu.base_url)
        try:
            emu.wait_for(1, timeout=60)
            time.sleep(0.2)
        finally:
            processes.kill(worker)
        assert stored(svc)[0].status == "submitting"
        monkeypatch.setattr(svc, "sms_gateway", TwilioGateway(account_sid=SID, auth_token=TOKEN, from_=FROM,
                                                              api_base_url=emu.base_url, timeout=2))
        assert sms.send(svc, row.id) == "submitting"  # its worker's lease has not run out: hands off
        # When it has, the relay hands it over again with a ticket; that job asks Twilio first.
        svc.clock.set(datetime.now(UTC) + timedelta(seconds=SEND_LEASE_SECONDS))
        ((sms_id, ticket),) = sms.due_for_handover(svc)
        assert sms.send(svc, row.id, ticket) == "queued"
        assert len(emu.messages) == 1
        assert stored(svc)[0].provider_sid == emu.messages[0].sid
