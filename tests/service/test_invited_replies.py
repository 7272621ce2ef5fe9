"""SMS replies from a number ipoa texted an invitation to reply (a duty lead), against the fakes
(ipoa/service/replies.py; the webhook end to end is tests/integration/test_duty_lead_replies.py)."""
from __future__ import annotations

from ipoa.domain.sms.delivery import SmsMessage
from ipoa.domain.sms.recipients import Recipient
from ipoa.service import calls as call_service
from ipoa.service import professionals, replies
from tests.helpers.scenarios import SUPERVISOR, referred, summary

LEAD = "+447700900101"


def texted(svc, db, ref, referral_id, *, to=LEAD, kind="duty_lead", template="referral_sent", status="queued"):
    text = SmsMessage(call_ref=ref, referral_id=referral_id, recipient=Recipient(kind, to), template=template,
                      body="(as sent)", created_at=svc.clock.now())
    text.status = status
    db.texts.append(text)


def test_the_duty_lead_texted_a_referral_accepts_it_for_the_service(svc, db):
    ref, rid = referred(svc)
    texted(svc, db, ref, rid)
    assert "now accepted" in replies.handle(svc, provider_sid="SM1", from_number=LEAD, body=f"ACCEPT {ref}")
    assert summary(svc, ref)["referrals"] == [("CRT", "accepted", 2, None)]
    (accept,) = [e for e in db.audit if e.trigger == "accept"]
    assert (accept.actor, accept.data) == ("sms-duty-lead:CRT",
                                           {"service": "CRT", "acting_for": "CRT", "texted_as": "duty_lead"})
    assert (db.sms_replies["SM1"]["outcome"], db.sms_replies["SM1"]["call_ref"]) == ("accept", ref)


def test_a_text_to_a_professional_on_duty_lets_nobody_act_once_they_are_not_registered(svc, db):
    ref, rid = referred(svc)
    texted(svc, db, ref, rid, kind="on_duty")
    answer = replies.handle(svc, provider_sid="SM1", from_number=LEAD, body=f"ACCEPT {ref}")
    assert "could not act" in answer and ref not in answer
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]
    assert (db.sms_replies["SM1"]["outcome"], db.sms_replies["SM1"]["call_ref"]) == ("unknown_number", None)


def test_a_professional_texted_as_another_services_duty_lead_acts_on_its_open_referral(svc, db):
    """Pat works for CRT and leads DN's duty: the call's CRT referral was re-routed to DN (CRT's withdrawn,
    closed) and DN's texted to Pat as its duty lead. ACCEPT acts on the open DN referral, for DN."""
    ref, rid = referred(svc)
    pat = professionals.add_professional(svc, name="Pat Nurse", service="CRT", mobile=LEAD)
    _, dn = call_service.reroute_referral(svc, SUPERVISOR, ref, rid, {
        "service": "DN", "reason": "CRT at capacity", "expected_version": 1})
    texted(svc, db, ref, dn.id)
    assert "now accepted" in replies.handle(svc, provider_sid="SM1", from_number=LEAD, body=f"ACCEPT {ref}")
    assert [(r[0], r[1]) for r in summary(svc, ref)["referrals"]] == [("CRT", "withdrawn"), ("DN", "accepted")]
    (accept,) = [e for e in db.audit if e.trigger == "accept"]
    assert (accept.actor, accept.data["acting_for"], accept.data["professional_id"]) == ("sms-duty-lead:DN", "DN", pat)


def test_a_professional_acts_on_their_own_services_open_referral_first(svc, db):
    ref, rid = referred(svc)
    professionals.add_professional(svc, name="Pat Nurse", service="CRT", mobile=LEAD)
    texted(svc, db, ref, rid)  # texted to Pat as a duty lead too
    assert "now accepted" in replies.handle(svc, provider_sid="SM1", from_number=LEAD, body=f"ACCEPT {ref}")
    assert [e.actor for e in db.audit if e.trigger == "accept"] == ["sms:Pat Nurse"]
