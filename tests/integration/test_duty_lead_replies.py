"""A duty lead's SMS replies over the signed Twilio webhook (issue 13: with nobody on duty for CRT, the duty
lead texted "reply ACCEPT or DECLINE with the ref" replied and was told "IPOA could not act on this
message"). Any recipient a text invited to reply can reply; their ACCEPT / DECLINE / DONE acts for the
referral's service and is audited as such; anything else stays refused with the same neutral answer.

"Nobody on duty" is a service with no professional added (service/replies.py, domain/sms/invitations.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from ipoa.adapters.orm import audit_events, referrals, sms_inbound, sms_messages, users
from ipoa.service.professionals import add_professional
from tests.conftest import make_user
from tests.helpers.clocks import breach
from tests.helpers.sms import drain, handle_events, referred_call
from tests.helpers.web import signed_in, tables
from tests.integration import test_twilio_sms as twilio

# The app served on a live local server, signing its webhooks as Twilio does, and the Twilio API emulator.
twilio_app, emulator, inbound = twilio.twilio_app, twilio.emulator, twilio.inbound
NEUTRAL = "IPOA could not act on this message"
SUPERVISOR = "+447700900301"


def duty_lead(svc, service="CRT"):
    return svc.directory.services[service].duty_lead


def referral(svc, referral_id):
    with svc.uow() as uow:
        return uow.session.execute(select(referrals.c.state, referrals.c.version)
                                   .where(referrals.c.id == referral_id)).one()


def audited(svc, ref):
    with svc.uow() as uow:
        return uow.session.execute(select(audit_events).where(audit_events.c.call_ref == ref,
                                                              audit_events.c.entity == "referral")
                                   .order_by(audit_events.c.seq)).all()


def texted_crt_referral(twilio_app, svc, emulator, handler_actor):
    """A call referred to CRT, where nobody is on duty: its text went to the directory's duty lead."""
    call = referred_call(svc, handler_actor, service="CRT")
    drain(twilio_app, svc)
    (text,) = emulator.wait_for(1)
    assert text.to == duty_lead(svc) and f"Reply ACCEPT {call.ref}" in text.body
    return call, call.referrals[0].id


def test_the_duty_lead_accepts_for_the_service_and_the_history_says_so(
        twilio_app, svc, emulator, handler_actor, users, client):
    call, rid = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    status, answer = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=duty_lead(svc), sid="SM" + "d" * 32)
    assert status == 200 and f"{call.ref} now accepted" in answer
    assert referral(svc, rid).state == "accepted"
    (accept,) = [e for e in audited(svc, call.ref) if e.trigger == "accept"]
    assert accept.actor == "sms-duty-lead:CRT"
    assert accept.data == {"service": "CRT", "acting_for": "CRT", "texted_as": "duty_lead"}

    # Twilio delivers the same webhook again: the same answer, nothing more done.
    assert inbound(emulator, svc, f"ACCEPT {call.ref}", from_=duty_lead(svc), sid="SM" + "d" * 32) == (status, answer)
    assert [e.trigger for e in audited(svc, call.ref)].count("accept") == 1
    assert referral(svc, rid).version == 2

    signed_in(client, "handler")
    page = client.get(f"/calls/{call.ref}").get_data(as_text=True)
    history = next(t for t in tables(page) if t[0][:2] == ["When", "Who"])
    assert [row[1:3] for row in history if row[2].startswith("referral accept")] == [
        ["SMS reply from the CRT duty lead", "referral accept (CRT)"]]


def test_the_duty_lead_declines_with_a_reason(twilio_app, svc, emulator, handler_actor):
    call, rid = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    _, answer = inbound(emulator, svc, f"DECLINE {call.ref}", from_=duty_lead(svc))
    assert NEUTRAL in answer and referral(svc, rid).state == "sent"  # a decline needs its reason
    _, answer = inbound(emulator, svc, f"DECLINE {call.ref} no capacity tonight", from_=duty_lead(svc))
    assert f"{call.ref} now declined" in answer and referral(svc, rid).state == "declined"
    (decline,) = [e for e in audited(svc, call.ref) if e.trigger == "decline"]
    assert (decline.actor, decline.reason, decline.data["acting_for"]) == (
        "sms-duty-lead:CRT", "no capacity tonight", "CRT")


def test_the_duty_lead_completes_what_they_accepted_and_asks_its_status(
        twilio_app, svc, emulator, handler_actor):
    call, rid = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    _, answer = inbound(emulator, svc, f"STATUS {call.ref}", from_=duty_lead(svc))
    assert f"{call.ref} for CRT: sent" in answer
    inbound(emulator, svc, f"ACCEPT {call.ref}", from_=duty_lead(svc))
    _, answer = inbound(emulator, svc, f"DONE {call.ref}", from_=duty_lead(svc))
    assert f"{call.ref} now completed" in answer and referral(svc, rid).state == "completed"
    assert [(e.trigger, e.actor) for e in audited(svc, call.ref)][-2:] == [
        ("accept", "sms-duty-lead:CRT"), ("complete", "sms-duty-lead:CRT")]
    # Already completed: where it stands, nothing changed.
    _, answer = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=duty_lead(svc))
    assert f"{call.ref} for CRT: completed" in answer


def test_a_professional_of_another_service_texted_as_its_duty_lead_acts_for_it(
        twilio_app, svc, emulator, handler_actor):
    dara = add_professional(svc, name="Dara Nurse", service="DN", mobile=duty_lead(svc))
    call, rid = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    _, answer = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=duty_lead(svc))
    assert f"{call.ref} now accepted" in answer and referral(svc, rid).state == "accepted"
    (accept,) = [e for e in audited(svc, call.ref) if e.trigger == "accept"]
    assert accept.actor == "sms-duty-lead:CRT"
    assert accept.data == {"service": "CRT", "acting_for": "CRT", "texted_as": "duty_lead", "professional_id": dara}


@pytest.mark.parametrize("case", ["stranger", "another_call", "no_such_ref", "not_yet_sent"])
def test_anything_else_is_refused_with_the_neutral_answer_and_changes_nothing(
        twilio_app, svc, emulator, handler_actor, case):
    if case == "not_yet_sent":  # its text recorded, not yet handed to Twilio
        call = referred_call(svc, handler_actor, service="CRT")
        handle_events(svc)
        target = call.referrals[0].id
    else:
        call, target = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    sender, ref = duty_lead(svc), call.ref
    if case == "stranger":
        sender = "+447700900555"
    elif case == "another_call":  # the duty lead was texted about `call`, not this one
        other = referred_call(svc, handler_actor, service="DN")
        drain(twilio_app, svc)
        ref, target = other.ref, other.referrals[0].id
    elif case == "no_such_ref":
        ref = "ABCD-2345"
    before = audited(svc, call.ref), audited(svc, ref)
    status, answer = inbound(emulator, svc, f"ACCEPT {ref}", from_=sender)
    assert status == 200 and NEUTRAL in answer and ref not in answer
    assert referral(svc, target) == ("sent", 1)
    _, answer = inbound(emulator, svc, f"STATUS {ref}", from_=sender)
    assert NEUTRAL in answer and ref not in answer
    assert (audited(svc, call.ref), audited(svc, ref)) == before


def test_a_text_that_did_not_invite_a_reply_lets_nobody_act(twilio_app, svc, emulator, handler_actor, clock):
    """The CNH supervisor is texted the referral's escalation ("Follow up: <link>"), which invites no reply."""
    make_user(svc, "sup.cnh", "supervisor", "CNH")
    with svc.uow() as uow:
        uow.session.execute(update(users).where(users.c.username == "sup.cnh").values(mobile=SUPERVISOR))
        uow.commit()
    call, rid = texted_crt_referral(twilio_app, svc, emulator, handler_actor)
    breach(svc, clock, call.ref, "acceptance", rid)
    drain(twilio_app, svc)
    with svc.uow() as uow:
        escalations = uow.session.execute(select(sms_messages.c.to, sms_messages.c.status).where(
            sms_messages.c.template == "escalation")).all()
    assert (SUPERVISOR, "queued") in escalations
    status, answer = inbound(emulator, svc, f"ACCEPT {call.ref}", from_=SUPERVISOR)
    assert status == 200 and NEUTRAL in answer and call.ref not in answer
    assert referral(svc, rid).state == "sent"
    with svc.uow() as uow:
        outcomes = uow.session.scalars(select(sms_inbound.c.outcome)).all()
    assert outcomes == ["unknown_number"]
