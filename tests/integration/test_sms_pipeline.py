"""From a committed referral to recorded, sent text messages, through the relay and a real RQ worker,
on the console gateway (the Twilio gateway and its webhooks build on this)."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ipoa.adapters.orm import sms_messages
from ipoa.adapters.orm import users as orm_users
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.adapters.sms_gateway import PermanentSmsError, Submitted, TransientSmsError
from ipoa.service import dashboard, outbox, rotas, sms
from ipoa.service.professionals import add_professional
from tests.helpers.rota import add_on_duty, on_duty
from tests.helpers.sms import IDENTIFIERS, ScriptedGateway, drain, handle_events, referred_call
from tests.helpers.web import service_fires


def texts(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages).order_by(sms_messages.c.created_at)).all()


def test_a_referral_texts_the_services_on_duty_professionals(app, svc, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    add_on_duty(svc, name="Ned", service="DN", mobile="07700 900202")
    add_professional(svc, name="Off", service="DN", mobile="07700 900203")
    add_on_duty(svc, name="Other", service="CRT", mobile="07700 900204")
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    sent = texts(svc)
    assert sorted(t.to for t in sent) == ["+447700900201", "+447700900202"]
    assert {t.status for t in sent} == {"sent"} and all(t.provider_sid for t in sent)
    assert {t.template for t in sent} == {"referral_sent"}
    for t in sent:
        assert call.ref in t.body and "DN" in t.body and "/r/" in t.body
        assert len(t.body) <= 160
    dumped = json.dumps([dict(t._mapping) for t in sent], default=str)
    for secret in IDENTIFIERS:
        assert secret not in dumped


def chosen(svc, ref):
    (choice,) = sms.recipient_choices(svc, ref)
    return choice.step, choice.reason


def supervisor_with_mobile(svc, users, mobile="+447700900301"):
    with svc.uow() as uow:
        uow.session.execute(update(orm_users).where(orm_users.c.username == "supervisor").values(mobile=mobile))
        uow.commit()


def no_directory_duty_lead(svc, monkeypatch, code):
    monkeypatch.setitem(svc.directory.services, code, replace(svc.directory.services[code], duty_lead=None))


def test_with_nobody_on_duty_the_shifts_duty_lead_is_texted(app, svc, handler_actor):
    sam = add_professional(svc, name="Sam Lead", service="DN", mobile="07700 900205")
    on_duty(svc, "DN", duty_lead=sam)  # shifts that name nobody but their duty lead
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    (only,) = texts(svc)
    assert (only.to, only.recipient_kind, only.professional_id) == ("+447700900205", "duty_lead", sam)
    assert chosen(svc, call.ref) == ("shift_duty_lead", "nobody on duty for DN: texted the shift's duty lead, Sam Lead")


def test_an_opted_out_professional_on_duty_is_skipped_for_the_duty_lead(app, svc, handler_actor):
    sam = add_professional(svc, name="Sam Lead", service="DN", mobile="07700 900205")
    nia = add_professional(svc, name="Nia", service="DN", mobile="07700 900201")
    on_duty(svc, "DN", nia, duty_lead=sam)
    with svc.uow() as uow:
        uow.professionals.set_opted_out(nia, svc.clock.now())
        uow.commit()
    referred_call(svc, handler_actor)
    drain(app, svc)
    assert [t.to for t in texts(svc)] == ["+447700900205"]


def test_with_no_shift_the_services_standing_duty_lead_is_texted(app, svc, handler_actor):
    call = referred_call(svc, handler_actor, service="CRT")
    drain(app, svc)
    (only,) = texts(svc)
    assert (only.to, only.recipient_kind) == (svc.directory.services["CRT"].duty_lead, "duty_lead")
    step, reason = chosen(svc, call.ref)
    assert step == "standing_duty_lead" and "standing duty lead, the CRT duty lead" in reason


def test_a_standing_duty_lead_set_as_a_professional_is_texted_by_name(app, svc, handler_actor):
    lee = add_professional(svc, name="Lee Standing", service="DN", mobile="07700 900207")
    rotas.set_standing_duty_lead(svc, "test", "DN", lee)
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    assert [(t.to, t.professional_id) for t in texts(svc)] == [("+447700900207", lee)]
    assert chosen(svc, call.ref)[1].endswith("standing duty lead, Lee Standing")


def test_with_no_standing_duty_lead_the_referring_centres_supervisor_is_texted(app, svc, handler_actor, users,
                                                                               monkeypatch):
    no_directory_duty_lead(svc, monkeypatch, "DN")
    supervisor_with_mobile(svc, users)
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    (only,) = texts(svc)
    assert (only.to, only.recipient_kind, only.template) == ("+447700900301", "supervisor", "referral_relay")
    # They relay it by phone and do not act for the service: asked to ring it, never to reply ACCEPT.
    assert only.body.startswith(f"{call.ref}: new ") and "Nobody there could be texted: please ring DN." in only.body
    assert "ACCEPT" not in only.body and "DECLINE" not in only.body
    assert chosen(svc, call.ref) == ("supervisor", "nobody on duty for DN and no duty lead: texted the referring "
                                                   "centre's supervisor, Supervisor")


def test_when_nobody_can_be_texted_nothing_is_sent_and_the_call_page_and_exceptions_say_so(
        app, svc, handler_actor, users, monkeypatch):
    from tests.conftest import sign_in

    no_directory_duty_lead(svc, monkeypatch, "DN")  # and the CNH supervisor has no mobile
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    assert texts(svc) == []
    step, reason = chosen(svc, call.ref)
    assert step == "nobody" and reason.endswith("nobody was texted, phone DN instead")
    client = app.test_client()
    sign_in(client, "supervisor")
    html = client.get(f"/calls/{call.ref}").get_data(as_text=True)
    said = html[html.index('id="texted-why-1"') - 60:]
    assert 'class="nhsuk-error-message app-texted-why"' in said[:120]
    assert "nobody was texted, phone DN instead" in said[:600]
    panel = dashboard.exceptions(svc)
    assert [(u.call_ref, u.service) for u in panel.untexted] == [(call.ref, "DN")] and panel.untexted_total == 1
    assert not panel.empty
    # On the supervisor's dashboard: the call, the service in words and why, with a link to the call.
    dash = client.get("/supervisor").get_data(as_text=True)
    row = dash[dash.index('id="untexted"'):]
    row = row[:row.index("</table>")]
    assert f'href="/calls/{call.ref}"' in row and "Community (district) nursing (DN)" in row
    assert "nobody was texted, phone DN instead" in row and 'id="no-failures"' not in dash


def test_a_redelivered_event_texts_nobody_twice(app, svc, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    referred_call(svc, handler_actor)
    handle_events(svc)
    handle_events(svc)  # every event delivered again
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(sms_messages)) == 1


def test_the_referrer_hears_of_acceptance_when_they_asked(app, svc, handler_actor):
    call = referred_call(svc, handler_actor, type="professional", phone="07700 900299", wants_updates=True)
    referral = call.referrals[0]
    service_fires(svc, call.ref, referral.id, {"trigger": "accept", "expected_version": 1})
    drain(app, svc)
    updates = [t for t in texts(svc) if t.recipient_kind == "referrer"]
    assert [(t.to, t.template) for t in updates] == [("+447700900299", "referral_accepted")]
    assert call.ref in updates[0].body


def test_no_update_for_a_referrer_who_did_not_ask(app, svc, handler_actor):
    call = referred_call(svc, handler_actor, type="professional", phone="07700 900299")
    service_fires(svc, call.ref, call.referrals[0].id, {"trigger": "accept", "expected_version": 1})
    drain(app, svc)
    assert [t for t in texts(svc) if t.recipient_kind == "referrer"] == []


@pytest.fixture
def one_text(svc, handler_actor):
    referred_call(svc, handler_actor, service="CRT")
    handle_events(svc)
    (row,) = texts(svc)
    return row.id


def use_gateway(svc, monkeypatch, gateway):
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    return gateway


def test_a_permanent_error_fails_the_message_at_once_with_the_code(svc, monkeypatch, one_text):
    unsubscribed = PermanentSmsError(21610, "Attempt to send to unsubscribed recipient")
    use_gateway(svc, monkeypatch, ScriptedGateway([unsubscribed]))
    assert sms.send(svc, one_text) == "failed"
    (row,) = texts(svc)
    assert (row.status, row.error_code, row.attempts) == ("failed", 21610, 1)
    assert "unsubscribed" in row.error_message
    assert sms.send(svc, one_text) == "failed"  # a retried job does nothing more


def test_a_transient_error_is_retried_and_sends_once(svc, monkeypatch, one_text):
    gw = use_gateway(svc, monkeypatch, ScriptedGateway([TransientSmsError("20429"), Submitted("SM1", "queued")]))
    # The job does not fail (no RQ retry): the text waits out its back-off in the table.
    assert sms.send(svc, one_text) == "retrying"
    row = texts(svc)[0]
    assert (row.status, row.attempts) == ("submitting", 1)
    assert row.next_attempt_at == svc.clock.now() + timedelta(seconds=2)
    assert sms.send(svc, one_text) == "submitting"  # a job during the back-off does nothing
    svc.clock.advance(seconds=2)
    assert sms.send(svc, one_text) == "queued"
    assert sms.send(svc, one_text) == "queued"
    assert len(gw.sent) == 2
    assert texts(svc)[0].provider_sid == "SM1"


def test_a_send_interrupted_after_the_gateway_accepted_is_not_repeated(svc, monkeypatch, one_text):
    # The worker died after the gateway took the message: the retry finds it there and sends nothing.
    gw = use_gateway(svc, monkeypatch, ScriptedGateway([TransientSmsError("time-out")],
                                                       already=Submitted("SM-already", "queued")))
    assert sms.send(svc, one_text) == "retrying"
    svc.clock.advance(seconds=2)
    assert sms.send(svc, one_text) == "queued"
    assert len(gw.sent) == 1 and texts(svc)[0].provider_sid == "SM-already"


def test_the_call_page_lists_its_text_messages(app, svc, handler_actor, users):
    from tests.conftest import sign_in

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    client = app.test_client()
    sign_in(client, "handler")
    html = client.get(f"/calls/{call.ref}").get_data(as_text=True)
    assert "Text messages" in html and "referral" in html.lower()
    assert "+447700******" in html and "+447700900201" not in html


def test_the_link_in_a_text_leads_a_signed_in_handler_to_the_call(app, svc, handler_actor, users):
    from tests.conftest import sign_in

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    (text,) = texts(svc)
    path = "/r/" + text.body.rsplit("/r/", 1)[1]
    client = app.test_client()
    assert client.get(path).status_code == 302 and "/login" in client.get(path).headers["Location"]
    sign_in(client, "handler")
    assert client.get(path).headers["Location"].endswith(f"/calls/{call.ref}")
    assert client.get("/r/not-a-token").status_code == 404
    prof = app.test_client()
    sign_in(prof, "professional")
    assert "/my/referrals/" in prof.get(path).headers["Location"]
    assert prof.get(path, follow_redirects=True).status_code == 403  # not linked to a DN professional


def test_a_text_whose_job_was_lost_is_sent_by_the_relays_sweep(app, svc, handler_actor):
    from rq import Queue

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    referred_call(svc, handler_actor)
    handle_events(svc)  # the events are handled, but their send jobs never reach the queue (Redis flushed)
    svc.redis().delete("ipoa:outbox:committed")
    assert texts(svc)[0].status == "pending"
    assert outbox.sweep_texts(svc, Queue(QUEUE_NAME, connection=svc.redis())) == 0  # too recent to judge
    svc.clock.advance(minutes=5)
    assert outbox.sweep_texts(svc, Queue(QUEUE_NAME, connection=svc.redis())) == 1
    drain(app, svc)
    assert [t.status for t in texts(svc)] == ["sent"]


def test_the_messages_page_shows_every_alert_with_the_console_gateway(app, svc, handler_actor, users):
    from tests.conftest import sign_in

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    client = app.test_client()
    sign_in(client, "handler")
    html = client.get("/messages").get_data(as_text=True)
    assert call.ref in html and "console" in html and ">sent<" in html
    prof = app.test_client()
    sign_in(prof, "professional")
    assert prof.get("/messages").status_code == 403
