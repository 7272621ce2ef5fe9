"""Who an SMS reply may act as, who escalations are texted to, and what a reply is told (service/replies.py,
service/sms.py; docs/domain.md, "SMS to professionals" and "Rotas"). Each test here is a regression test of
a finding of a hostile probe of the SMS channel: a deactivated professional acting through an old text, escalations
ignoring the rota and opt-outs, the loser of a race told a stale state, a duplicate webhook's record, a
service's access after its referral closed, a supervisor's STOP, a referring supervisor accepting for a service."""
from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select, update

from ipoa.adapters.orm import audit_events, referrals, sms_inbound, sms_messages, users
from ipoa.service import replies, rotas
from ipoa.service.professionals import add_professional, deactivate_professional
from tests.conftest import make_user
from tests.helpers.clocks import breach
from tests.helpers.rota import add_on_duty, on_duty
from tests.helpers.sms import handle_events, referred_call

NIA, NED, LENA = "+447700900201", "+447700900202", "+447700900250"
SUPERVISOR = "+447700900301"
NEUTRAL = "IPOA could not act on this message"
_sid = itertools.count(1)


def reply(svc, body, from_=NIA, sid=None):
    return replies.handle(svc, provider_sid=sid or f"SMr{next(_sid):031d}", from_number=from_, body=body)


def state(svc, rid):
    with svc.uow() as uow:
        return uow.session.scalar(select(referrals.c.state).where(referrals.c.id == rid))


def texts(svc):
    with svc.uow() as uow:
        return uow.session.execute(select(sms_messages).order_by(sms_messages.c.created_at)).all()


def mark_delivered(svc):
    with svc.uow() as uow:
        uow.session.execute(update(sms_messages).values(status="delivered"))
        uow.commit()


def supervisor_with_mobile(svc, username="sup.cnh", mobile=SUPERVISOR, centre="CNH"):
    make_user(svc, username, "supervisor", centre)
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.username == username).values(mobile=mobile))
        uow.commit()


def escalations_to(svc, number):
    return [t for t in texts(svc) if t.to == number and t.template in ("escalation", "escalation_digest")]


# -- 1. a deactivated professional acts for no service, whatever was texted to their number -----------------

def test_a_deactivated_professional_texted_as_duty_lead_cannot_act_on_the_old_text(svc, handler_actor):
    lead = svc.directory.services["CRT"].duty_lead
    pid = add_professional(svc, name="Lee Lead", service="CRT", mobile=lead)
    call = referred_call(svc, handler_actor, service="CRT")  # nobody on duty: the duty lead is texted
    handle_events(svc)
    (text,) = texts(svc)
    assert (text.to, text.recipient_kind) == (lead, "duty_lead")
    mark_delivered(svc)
    deactivate_professional(svc, "admin", pid)
    rid = call.referrals[0].id
    for body in (f"ACCEPT {call.ref}", f"DECLINE {call.ref} no capacity", f"DONE {call.ref}",
                 f"STATUS {call.ref}"):
        answer = reply(svc, body, from_=lead)
        assert NEUTRAL in answer and call.ref not in answer, (body, answer)
    assert state(svc, rid) == "sent"
    with svc.uow() as uow:
        assert not uow.session.scalar(select(func.count()).select_from(audit_events).where(
            audit_events.c.call_ref == call.ref, audit_events.c.actor.like("sms%")))


# -- 2. escalations follow the rota's duty leads and skip opted-out and deactivated people -------------------

def _breached_dn_referral(svc, handler_actor, clock):
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    breach(svc, clock, call.ref, "acceptance", call.referrals[0].id)
    handle_events(svc)
    return call


def test_escalations_go_to_the_rotas_shift_duty_lead(svc, handler_actor, clock):
    nia = add_professional(svc, name="Nia", service="DN", mobile=NIA)
    lena = add_professional(svc, name="Lena Lead", service="DN", mobile=LENA)
    on_duty(svc, "DN", nia, duty_lead=lena)
    _breached_dn_referral(svc, handler_actor, clock)
    esc = [(t.to, t.recipient_kind, t.professional_id) for t in texts(svc) if t.template == "escalation"]
    assert (LENA, "duty_lead", lena) in esc
    assert not escalations_to(svc, svc.directory.services["DN"].duty_lead)


def test_escalations_go_to_the_standing_duty_lead_when_no_shift_names_one(svc, handler_actor, clock):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    lena = add_professional(svc, name="Lena Lead", service="DN", mobile=LENA)
    rotas.set_standing_duty_lead(svc, "admin", "DN", lena)
    _breached_dn_referral(svc, handler_actor, clock)
    assert [t.recipient_kind for t in escalations_to(svc, LENA)] == ["duty_lead"]
    assert not escalations_to(svc, svc.directory.services["DN"].duty_lead)


def test_escalations_still_fall_back_to_the_directorys_duty_lead(svc, handler_actor, clock):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    _breached_dn_referral(svc, handler_actor, clock)
    lead = svc.directory.services["DN"].duty_lead
    assert [t.recipient_kind for t in escalations_to(svc, lead)] == ["duty_lead"]


def test_an_opted_out_duty_lead_is_not_texted_escalations(svc, handler_actor, clock):
    lead = svc.directory.services["DN"].duty_lead
    add_professional(svc, name="Lee Lead", service="DN", mobile=lead)
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    assert reply(svc, "STOP", from_=lead) == ""
    _breached_dn_referral(svc, handler_actor, clock)
    assert not escalations_to(svc, lead)


def test_a_deactivated_duty_lead_is_not_texted_escalations(svc, handler_actor, clock):
    lead = svc.directory.services["DN"].duty_lead
    deactivate_professional(svc, "admin", add_professional(svc, name="Lee Lead", service="DN", mobile=lead))
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    _breached_dn_referral(svc, handler_actor, clock)
    assert not escalations_to(svc, lead)


def test_an_escalation_nobody_can_be_texted_about_is_on_the_exceptions_panel(svc, handler_actor, clock):
    from ipoa.service import dashboard

    lead = svc.directory.services["DN"].duty_lead
    deactivate_professional(svc, "admin", add_professional(svc, name="Lee Lead", service="DN", mobile=lead))
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)  # the referral is texted; its breach can be nobody's
    call = _breached_dn_referral(svc, handler_actor, clock)
    assert not [t for t in texts(svc) if t.template == "escalation"]
    untexted = [(u.call_ref, u.service) for u in dashboard.exceptions(svc).untexted]
    assert (call.ref, "DN") in untexted


# -- 3. the loser of a race is told where the referral stands now -------------------------------------------

def test_the_loser_of_a_race_is_told_the_referral_is_already_accepted(svc, handler_actor, monkeypatch):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Ned", service="DN", mobile=NED)
    call = referred_call(svc, handler_actor)
    real, fired = replies._target, []

    def matched_then_ned_accepts(*args, **kwargs):
        found = real(*args, **kwargs)
        if not fired:  # Ned's ACCEPT commits after Nia's reply was matched, before her trigger fires
            fired.append(1)
            assert "now accepted" in reply(svc, f"ACCEPT {call.ref}", from_=NED)
        return found

    monkeypatch.setattr(replies, "_target", matched_then_ned_accepts)
    answer = reply(svc, f"ACCEPT {call.ref}")
    assert state(svc, call.referrals[0].id) == "accepted"
    assert ": accepted." in answer and ": sent." not in answer, answer
    with svc.uow() as uow:
        outcomes = uow.session.execute(select(sms_inbound.c.outcome, sms_inbound.c.reply)).all()
    assert sorted(o for o, _ in outcomes) == ["accept", "not_allowed"]


def _together(fns):
    barrier = threading.Barrier(len(fns))
    out, errors = [None] * len(fns), []

    def go(i, fn):
        barrier.wait()
        try:
            out[i] = fn()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i, f)) for i, f in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out, errors


@pytest.mark.parametrize("second", ["ACCEPT {ref}", "DECLINE {ref} no capacity"])
def test_two_replies_at_once_the_refused_one_is_told_the_new_state(svc, handler_actor, second):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    add_on_duty(svc, name="Ned", service="DN", mobile=NED)
    for _ in range(3):
        call = referred_call(svc, handler_actor)
        ref = call.ref
        out, errors = _together([lambda ref=ref: reply(svc, f"ACCEPT {ref}"),
                                 lambda ref=ref: reply(svc, second.format(ref=ref), from_=NED)])
        assert not errors, errors
        final = state(svc, call.referrals[0].id)
        assert final in ("accepted", "declined")
        # (Declining an accepted referral is a transition of its own: both may act, one after the other.)
        assert any(" now " in o for o in out), out
        for refused in [o for o in out if " now " not in o]:
            assert f": {final}." in refused, (refused, final)


# -- 4. the same MessageSid delivered at once acts once and is recorded as what it did -----------------------

def test_the_same_reply_delivered_at_once_acts_once_and_its_record_says_so(svc, handler_actor):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    for n in range(8):
        call = referred_call(svc, handler_actor)
        sid = f"SMs{n:031d}"
        out, errors = _together([lambda ref=call.ref, sid=sid: reply(svc, f"ACCEPT {ref}", sid=sid)] * 3)
        assert not errors, errors
        assert state(svc, call.referrals[0].id) == "accepted"
        with svc.uow() as uow:
            (row,) = uow.session.execute(select(sms_inbound.c.outcome, sms_inbound.c.reply)
                                         .where(sms_inbound.c.provider_sid == sid)).all()
            accepts = uow.session.scalar(select(func.count()).select_from(audit_events).where(
                audit_events.c.call_ref == call.ref, audit_events.c.trigger == "accept"))
        assert accepts == 1
        assert row.outcome == "accept" and "now accepted" in row.reply, row
        # Each delivery is told what the reply did, or nothing (Twilio sends the first's answer).
        assert set(out) <= {row.reply, ""}, out
        assert reply(svc, "ACCEPT whatever", sid=sid) == row.reply  # a later retry: the recorded answer


def test_a_duplicate_delivered_while_the_first_is_acting_neither_acts_nor_records(svc, handler_actor,
                                                                                  monkeypatch):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    sid = "SM" + "7" * 32
    real, inner = replies._act, []

    def act_while_a_duplicate_arrives(*args, **kwargs):
        if not inner:
            inner.append(reply(svc, f"DONE {call.ref}", sid=sid))  # the same webhook again, mid-act
        return real(*args, **kwargs)

    monkeypatch.setattr(replies, "_act", act_while_a_duplicate_arrives)
    monkeypatch.setattr(replies, "WAIT_FOR_FIRST_SECONDS", 0.0)
    answer = reply(svc, f"ACCEPT {call.ref}", sid=sid)
    assert "now accepted" in answer
    assert inner == [""]  # the duplicate did nothing and said nothing
    with svc.uow() as uow:
        (row,) = uow.session.execute(select(sms_inbound.c.outcome, sms_inbound.c.reply)
                                     .where(sms_inbound.c.provider_sid == sid)).all()
    assert (row.outcome, row.reply) == ("accept", answer)
    assert state(svc, call.referrals[0].id) == "accepted"


# -- D2. a service's access by text ends with its access to the referral ---------------------------------------

def test_status_of_a_referral_closed_more_than_72_hours_ago_is_the_neutral_answer(svc, handler_actor, clock):
    add_on_duty(svc, name="Nia", service="DN", mobile=NIA)
    call = referred_call(svc, handler_actor)
    assert "now accepted" in reply(svc, f"ACCEPT {call.ref}")
    assert "now completed" in reply(svc, f"DONE {call.ref}")
    clock.advance(hours=71)
    assert ": completed." in reply(svc, f"STATUS {call.ref}")  # still within the window
    clock.advance(hours=2)
    for body in (f"STATUS {call.ref}", f"ACCEPT {call.ref}", f"DONE {call.ref}"):
        answer = reply(svc, body)
        assert NEUTRAL in answer and call.ref not in answer and "/r/" not in answer, (body, answer)


# -- D3. STOP from any number ipoa texts is honoured ------------------------------------------------------

def test_a_supervisor_who_texted_stop_is_not_texted_until_start(svc, handler_actor, clock):
    lead = svc.directory.services["DN"].duty_lead
    deactivate_professional(svc, "admin", add_professional(svc, name="Lee Lead", service="DN", mobile=lead))
    supervisor_with_mobile(svc)
    assert reply(svc, "STOP", from_=SUPERVISOR) == ""
    _breached_dn_referral(svc, handler_actor, clock)  # nobody on duty, no duty lead: supervisors next
    assert not [t for t in texts(svc) if t.to == SUPERVISOR]
    assert reply(svc, "START", from_=SUPERVISOR) == ""
    referred_call(svc, handler_actor)
    handle_events(svc)
    assert [t.template for t in texts(svc) if t.to == SUPERVISOR] == ["referral_relay"]


# -- D1. a referring centre's supervisor relays; they do not act for the service ------------------------------

def test_a_referring_supervisor_texted_a_referral_cannot_accept_it_for_the_service(svc, handler_actor):
    lead = svc.directory.services["DN"].duty_lead
    deactivate_professional(svc, "admin", add_professional(svc, name="Lee Lead", service="DN", mobile=lead))
    supervisor_with_mobile(svc)
    call = referred_call(svc, handler_actor)
    handle_events(svc)
    (text,) = texts(svc)
    assert (text.to, text.recipient_kind) == (SUPERVISOR, "supervisor")
    mark_delivered(svc)
    answer = reply(svc, f"ACCEPT {call.ref}", from_=SUPERVISOR)
    assert NEUTRAL in answer
    assert state(svc, call.referrals[0].id) == "sent"
