"""STOP from a number is honoured for every text ipoa sends it, by one rule (adapters/sms_store.stopped: on a
professional's row or in sms_opt_outs), when its recipients are chosen (service/rotas.reachable: referral texts,
hand-overs, escalations), when texts are recorded (a referrer's update) and when a queued text is sent; and it
is in the security log whoever's number it is, never the number whole (service/replies.py; docs/domain.md,
"SMS to professionals"). A referral the STOP leaves nobody to text is on the exceptions panel, as an escalation's
is."""
from __future__ import annotations

import itertools

from sqlalchemy import select, update

from ipoa.adapters.audit_store import verify_chain
from ipoa.adapters.orm import security_events, sms_messages, users
from ipoa.adapters.sms_gateway import PermanentSmsError, Submitted
from ipoa.domain.sms.delivery import OPTED_OUT_CODE
from ipoa.service import dashboard, replies, rotas, sms
from ipoa.service.professionals import add_professional, edit_professional, get_professional
from tests.conftest import make_user
from tests.helpers.clocks import breach
from tests.helpers.rota import add_on_duty, on_duty
from tests.helpers.sms import ScriptedGateway, handle_events, referred_call
from tests.helpers.web import service_fires

NIA, NED = "+447700900201", "+447700900202"
SUPERVISOR = "+447700900301"
REFERRER = "+447700900299"
_sid = itertools.count(1)


def lead_of(svc, service="DN"):
    return svc.directory.services[service].duty_lead


def reply(svc, number, body="STOP"):
    return replies.handle(svc, provider_sid=f"SMs{next(_sid):031d}", from_number=number, body=body)


def texts(svc, ref=None):
    stmt = select(sms_messages).order_by(sms_messages.c.created_at)
    if ref is not None:
        stmt = stmt.where(sms_messages.c.call_ref == ref)
    with svc.uow() as uow:
        return uow.session.execute(stmt).all()


def chosen(svc, ref):
    (choice,) = sms.recipient_choices(svc, ref)
    return choice.step, choice.reason


def supervisor_with_mobile(svc, username="sup.cnh", mobile=SUPERVISOR, centre="CNH"):
    make_user(svc, username, "supervisor", centre)
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.username == username).values(mobile=mobile))
        uow.commit()


def texted_lead_then_stop(svc, handler_actor):
    """A referral nobody on duty can take goes to the directory's DN duty-lead number (nobody's registered
    mobile); that number then texts STOP."""
    referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.recipient_kind) for t in texts(svc)] == [(lead_of(svc), "duty_lead")]
    assert reply(svc, lead_of(svc)) == ""


def use_gateway(svc, monkeypatch, gateway):
    monkeypatch.setattr(svc, "sms_gateway", gateway)
    return gateway


def security_log(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(security_events).order_by(security_events.c.seq)).all()


# -- choosing: referral texts and escalations --------------------------------------------------------------

def test_a_directory_duty_lead_who_texted_stop_is_not_texted_a_referral_and_it_is_on_the_panel(svc, handler_actor):
    texted_lead_then_stop(svc, handler_actor)
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    assert texts(svc, call.ref) == []
    step, reason = chosen(svc, call.ref)
    assert step == "nobody"
    assert "phone DN instead" in reason and "texted STOP: the DN duty lead" in reason
    panel = dashboard.exceptions(svc)
    assert [(u.call_ref, u.service) for u in panel.untexted] == [(call.ref, "DN")] and not panel.empty


def test_past_a_directory_duty_lead_who_texted_stop_the_supervisor_relays_until_start(svc, handler_actor):
    texted_lead_then_stop(svc, handler_actor)
    supervisor_with_mobile(svc)
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.template) for t in texts(svc, call.ref)] == [(SUPERVISOR, "referral_relay")]
    assert reply(svc, lead_of(svc), "START") == ""
    again = referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.recipient_kind) for t in texts(svc, again.ref)] == [(lead_of(svc), "duty_lead")]


def test_a_directory_duty_lead_who_texted_stop_is_not_texted_escalations(svc, handler_actor, clock):
    texted_lead_then_stop(svc, handler_actor)
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    breach(svc, clock, call.ref, "acceptance", call.referrals[0].id)
    handle_events(svc)
    assert [(t.to, t.template) for t in texts(svc, call.ref)] == [(NIA, "referral_sent")]
    assert (call.ref, "DN") in [(u.call_ref, u.service) for u in dashboard.exceptions(svc).untexted]


def test_a_professionals_start_lifts_the_stop_their_number_sent_before_it_was_theirs(svc, handler_actor):
    texted_lead_then_stop(svc, handler_actor)
    lee = add_professional(svc, name="Lee Lead", service="DN", mobile=lead_of(svc))
    on_duty(svc, "DN", lee)
    held = referred_call(svc, handler_actor)
    handle_events(svc)
    assert texts(svc, held.ref) == []  # the number's STOP holds whoever it is registered to now
    assert chosen(svc, held.ref)[1].endswith("texted STOP: Lee Lead)")
    assert reply(svc, lead_of(svc), "START") == ""
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.recipient_kind, t.professional_id) for t in texts(svc, call.ref)] == [
        (lead_of(svc), "on_duty", lee)]


# -- recording: texts not chosen from the rota ---------------------------------------------------------------

def test_a_referrer_whose_number_texted_stop_is_sent_no_more_updates(svc, handler_actor):
    def accepted_call():
        call = referred_call(svc, handler_actor, type="professional", phone="07700 900299", wants_updates=True)
        service_fires(svc, call.ref, call.referrals[0].id, {"trigger": "accept", "expected_version": 1})
        handle_events(svc)
        return [t.template for t in texts(svc, call.ref) if t.recipient_kind == "referrer"]

    assert accepted_call() == ["referral_accepted"]
    assert reply(svc, REFERRER) == ""
    assert accepted_call() == []


# -- sending: a STOP after the text was queued ---------------------------------------------------------------

def test_a_text_queued_before_its_number_texted_stop_is_not_sent(svc, handler_actor, monkeypatch):
    texted_lead_then_stop(svc, handler_actor)  # the text is recorded, still pending, when the STOP comes
    (text,) = texts(svc)
    gateway = use_gateway(svc, monkeypatch, ScriptedGateway([Submitted("SM1", "queued")]))
    assert sms.send(svc, text.id) == "failed"
    assert gateway.sent == []
    (row,) = texts(svc)
    assert (row.status, row.error_code, row.next_attempt_at) == ("failed", OPTED_OUT_CODE, None)
    assert "texted STOP" in row.error_message
    assert [t.id for t in dashboard.exceptions(svc).failed] == [text.id]
    assert sms.send(svc, text.id) == "failed" and gateway.sent == []  # a retried job does nothing more


def test_a_batch_sends_its_other_texts_and_not_the_one_to_a_professional_who_texted_stop(svc, handler_actor,
                                                                                        monkeypatch):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Ned", service="DN", mobile=NED)
    referred_call(svc, handler_actor)
    handle_events(svc)
    ids = {t.to: t.id for t in texts(svc)}
    assert reply(svc, NIA) == ""
    gateway = use_gateway(svc, monkeypatch, ScriptedGateway([Submitted("SM1", "queued")]))
    assert sms.send_many(svc, [ids[NIA], ids[NED]]) == {ids[NIA]: "failed", ids[NED]: "queued"}
    assert [to for to, _ in gateway.sent] == [NED]


def test_a_text_cut_off_mid_send_is_not_sent_again_once_its_number_texted_stop(svc, handler_actor, monkeypatch, clock):
    texted_lead_then_stop(svc, handler_actor)
    (text,) = texts(svc)
    with svc.uow() as uow:  # a worker died after claiming it: the gateway never got it
        uow.session.execute(update(sms_messages).values(status="submitting", attempts=1,
                                                        submitted_at=clock.now(), next_attempt_at=clock.now()))
        uow.commit()
    clock.advance(seconds=1)
    gateway = use_gateway(svc, monkeypatch, ScriptedGateway([Submitted("SM1", "queued")], already=None))
    assert sms.send(svc, text.id) == "failed"
    assert gateway.sent == []
    assert texts(svc)[0].error_code == OPTED_OUT_CODE


def test_a_text_queued_for_a_number_that_texted_start_again_is_sent(svc, handler_actor, monkeypatch):
    texted_lead_then_stop(svc, handler_actor)
    (text,) = texts(svc)
    assert reply(svc, lead_of(svc), "START") == ""
    gateway = use_gateway(svc, monkeypatch, ScriptedGateway([Submitted("SM1", "queued")]))
    assert sms.send(svc, text.id) == "queued"
    assert [to for to, _ in gateway.sent] == [lead_of(svc)]


# -- the security log ------------------------------------------------------------------------------------------

def test_a_directory_duty_lead_numbers_stop_and_start_are_logged_with_the_number_masked(svc, handler_actor,
                                                                                       caplog, clock):
    caplog.set_level("DEBUG")
    texted_lead_then_stop(svc, handler_actor)
    clock.advance(minutes=1)
    assert reply(svc, lead_of(svc), "UNSTOP") == ""
    events = [(e.kind, e.actor, e.subject, e.detail) for e in security_log(svc)]
    assert events == [("sms_opt_out", "sms", "+447700******", {"duty_lead_of": ["DN"]}),
                      ("sms_opt_in", "sms", "+447700******", {"duty_lead_of": ["DN"]})]
    digits = lead_of(svc)[-6:]
    assert not [e for e in security_log(svc) if digits in f"{e.subject} {e.detail}"]
    assert digits not in caplog.text
    with svc.uow() as uow:
        assert verify_chain(uow.session, "security")[0] is None


def test_a_supervisors_stop_is_logged_naming_the_user_never_the_number(svc, caplog):
    caplog.set_level("DEBUG")
    supervisor_with_mobile(svc)
    assert reply(svc, SUPERVISOR) == ""
    assert reply(svc, SUPERVISOR) == ""  # a second STOP is a second reply: logged as the professional's is
    events = [(e.kind, e.subject, e.detail) for e in security_log(svc)]
    assert events == [("sms_opt_out", "+447700******", {"users": ["sup.cnh"]})] * 2
    assert SUPERVISOR[-6:] not in caplog.text


def test_the_send_rule_and_the_choice_agree_on_whose_stop_counts(svc, handler_actor):
    """A professional's STOP (on their row) and any other number's (sms_opt_outs) are one rule: opted_out
    says so for both, and leaves out the rest."""
    add_professional(svc, name="Nia", service="DN", mobile=NIA)  # her STOP goes on her row
    add_professional(svc, name="Ned", service="DN", mobile=NED)
    texted_lead_then_stop(svc, handler_actor)
    assert reply(svc, NIA) == ""
    with svc.uow() as uow:
        assert uow.sms.opted_out([NIA, NED, lead_of(svc), SUPERVISOR]) == {NIA, lead_of(svc)}


# -- the rota's people: who is on duty and can be texted -------------------------------------------------------

def test_a_professional_whose_number_texted_stop_before_it_was_theirs_is_counted_as_not_textable(svc, clock):
    """Ned's number texted STOP while it was a supervisor's (sms_opt_outs, not his row): the dashboard's count
    of who can be texted, and Nia's OFF ("nobody else on duty can be texted"), read the one rule as the
    choice of recipients does."""
    supervisor_with_mobile(svc, mobile=NED)
    assert reply(svc, NED) == ""
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    on_duty(svc, "DN", add_professional(svc, name="Ned", service="DN", mobile=NED))
    with svc.uow() as uow:
        assert rotas.on_duty_people(svc, uow, clock.now())["DN"] == [("Nia", True), ("Ned", False)]
        assert rotas.on_duty_counts(svc, uow, clock.now()) == {"DN": 1}
    reply(svc, NIA, "OFF")
    handle_events(svc)
    assert [(t.to, t.template) for t in texts(svc)] == [(lead_of(svc), "availability_off_alone")]


def test_a_duty_lead_whose_number_texted_stop_is_not_told_of_an_off(svc, clock):
    """The duty lead told of an OFF passes rotas.reachable as every text chosen from the rota does."""
    lee = add_professional(svc, name="Lee Lead", service="DN", mobile=REFERRER)
    nia = add_professional(svc, name="Nia", service="DN", mobile=NIA)
    on_duty(svc, "DN", nia, duty_lead=lee)
    assert reply(svc, REFERRER) == ""
    reply(svc, NIA, "OFF")
    handle_events(svc)
    assert texts(svc) == []


def test_a_stop_stays_with_the_number_when_a_professionals_mobile_is_edited(svc, handler_actor):
    nia = add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    assert reply(svc, NIA) == ""
    assert get_professional(svc, nia).opted_out
    assert edit_professional(svc, "admin", nia, mobile="07700 900202") == ["mobile"]
    assert not get_professional(svc, nia).opted_out  # the new number never texted STOP
    with svc.uow() as uow:
        assert uow.sms.opted_out([NIA, NED]) == {NIA}  # the old one still did
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.professional_id) for t in texts(svc, call.ref)] == [(NED, nia)]
    edited = [e.detail for e in security_log(svc) if e.kind == "professional_changed"][-1]
    assert edited["opt_out"] == "kept with the old number" and NIA[-6:] not in str(edited)


def test_the_professionals_list_says_opted_out_when_their_number_texted_stop_before_it_was_theirs(svc):
    supervisor_with_mobile(svc, mobile=NED)
    assert reply(svc, NED) == ""
    ned = add_professional(svc, name="Ned", service="DN", mobile=NED)
    assert get_professional(svc, ned).opted_out


# -- a STOP Twilio heard and ipoa did not ----------------------------------------------------------------------

def test_a_text_twilio_refuses_as_opted_out_records_the_stop_so_the_next_referral_falls_back(svc, handler_actor,
                                                                                             monkeypatch):
    """Twilio honours a STOP even when its webhook to ipoa failed, and never sends that webhook again: its
    21610 refusal is the STOP, recorded so that the next referral goes to someone who can be texted."""
    nia = add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    referred_call(svc, handler_actor)
    handle_events(svc)
    (text,) = texts(svc)
    use_gateway(svc, monkeypatch, ScriptedGateway([PermanentSmsError(OPTED_OUT_CODE, "unsubscribed recipient")]))
    assert sms.send(svc, text.id) == "failed"
    assert get_professional(svc, nia).opted_out
    assert [(e.kind, e.subject, e.detail["reported_by"]) for e in security_log(svc)
            if e.kind == "sms_opt_out"] == [("sms_opt_out", str(nia), "twilio")]
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    assert [(t.to, t.recipient_kind) for t in texts(svc, call.ref)] == [(lead_of(svc), "duty_lead")]


def test_a_delivery_receipt_saying_opted_out_records_the_stop_of_a_number_nobody_is_registered_with(
        svc, handler_actor, monkeypatch):
    referred_call(svc, handler_actor)  # nobody on duty: the directory's DN duty-lead number
    handle_events(svc)
    (text,) = texts(svc)
    use_gateway(svc, monkeypatch, ScriptedGateway([Submitted("SMq1", "queued")]))
    assert sms.send(svc, text.id) == "queued"
    assert sms.record_status(svc, "SMq1", "failed", "21610")
    assert not sms.record_status(svc, "SMq1", "failed", "21610")  # again: nothing more
    with svc.uow() as uow:
        assert uow.sms.opted_out([lead_of(svc)]) == {lead_of(svc)}
    assert [(e.kind, e.subject) for e in security_log(svc)] == [("sms_opt_out", "+447700******")]
