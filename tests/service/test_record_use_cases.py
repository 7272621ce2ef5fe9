"""Reading a record (ipoa/service/records.py) and professionals' SMS replies (ipoa/service/replies.py)
against the fakes."""
from __future__ import annotations

import pytest

from ipoa.service import professionals, records, replies
from ipoa.service.errors import OutsideRelationship
from tests.helpers.scenarios import HANDLER, HANDLER_ASC, PROFESSIONAL_MOBILE, referred, summary


def test_viewing_a_call_leaves_an_access_event_and_outsiders_see_nothing(svc, db):
    ref, _ = referred(svc)
    view = records.view_call(svc, HANDLER, ref, "GET /calls/x")
    assert view.call.ref == ref and view.may_act and view.access.relationship == "own_centre"
    assert [(e.username, e.call_ref, e.purpose) for e in db.access_events()] == [("handler", ref, "own_centre")]
    with pytest.raises(OutsideRelationship) as refused:
        records.view_call(svc, HANDLER_ASC, ref, "GET /calls/x")
    assert refused.value.break_glass  # a handler may open it by break-glass, and is told so
    assert len(db.access_events()) == 1


def test_break_glass_opens_a_call_outside_the_relationship_for_a_while(svc, db):
    ref, _ = referred(svc)
    grant = records.break_glass(svc, HANDLER_ASC, ref, {"reason": "other", "note": "Caller rang ASC"}, "POST")
    view = records.view_call(svc, HANDLER_ASC, ref, "GET /calls/x")
    assert view.access.relationship == "break_glass" and view.access.grant_id == grant.id
    assert view.may_act  # a handler's break-glass covers acting too (domain/access.py)
    assert [(g.username, g.centre, g.reason) for g in db.grants] == [("handler.asc", "CNH", "other")]
    assert [e.purpose for e in db.access_events()] == ["break_glass", "break_glass"]
    svc.clock.set(grant.expires_at)
    with pytest.raises(OutsideRelationship):
        records.view_call(svc, HANDLER_ASC, ref, "GET /calls/x")


def _crt_professional(svc) -> None:
    professionals.add_professional(svc, name="Pat Nurse", service="CRT", mobile="07700 900123")


def test_an_sms_accept_from_the_services_professional_accepts_the_referral_once(svc, db):
    ref, rid = referred(svc)
    _crt_professional(svc)
    answer = replies.handle(svc, provider_sid="SM1", from_number=PROFESSIONAL_MOBILE, body=f"accept {ref}")
    assert ref in answer and "accepted" in answer
    assert summary(svc, ref)["referrals"] == [("CRT", "accepted", 2, None)]
    assert [e.actor for e in db.audit if e.trigger == "accept"] == ["sms:Pat Nurse"]
    # The same webhook again: the same answer, nothing done twice.
    assert replies.handle(svc, provider_sid="SM1", from_number=PROFESSIONAL_MOBILE, body=f"accept {ref}") == answer
    assert [e.trigger for e in db.audit].count("accept") == 1
    assert db.sms_replies["SM1"]["outcome"] == "accept"


def test_a_deactivated_professional_acts_on_nothing_by_text(svc, db):
    """Deactivated (left the service): their ACCEPT of an old text is a stranger's, nothing changes; their
    STOP is still their number's wish and is recorded."""
    ref, _ = referred(svc)
    _crt_professional(svc)
    (prof,) = db.professionals
    prof.active = False
    answer = replies.handle(svc, provider_sid="SM1", from_number=PROFESSIONAL_MOBILE, body=f"ACCEPT {ref}")
    assert answer == svc.sms_templates.render("reply_unknown")
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]
    assert "accept" not in [e.trigger for e in db.audit]
    replies.handle(svc, provider_sid="SM2", from_number=PROFESSIONAL_MOBILE, body="STOP")
    assert prof.opted_out_at == svc.clock.now()


def test_an_sms_from_an_unknown_number_changes_nothing_and_reveals_nothing(svc, db):
    ref, _ = referred(svc)
    _crt_professional(svc)
    answer = replies.handle(svc, provider_sid="SM2", from_number="+447700900999", body=f"ACCEPT {ref}")
    assert answer == svc.sms_templates.render("reply_unknown")
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]
    assert db.sms_replies["SM2"]["outcome"] == "unknown_number"
    # A professional of another service is told no more than a stranger.
    professionals.add_professional(svc, name="Dee Nurse", service="DN", mobile="07700 900456")
    assert replies.handle(svc, provider_sid="SM3", from_number="+447700900456", body=f"ACCEPT {ref}") == answer
    assert summary(svc, ref)["referrals"] == [("CRT", "sent", 1, None)]


def test_stop_opts_the_professional_out_and_is_in_the_security_log(svc, db):
    _crt_professional(svc)
    assert replies.handle(svc, provider_sid="SM4", from_number=PROFESSIONAL_MOBILE, body="STOP") == ""
    (prof,) = db.professionals
    assert prof.opted_out_at == svc.clock.now()
    assert [(e.kind, e.subject) for e in db.events if hasattr(e, "kind")] == [
        ("professional_changed", str(prof.id)), ("sms_opt_out", str(prof.id))]  # added, then opted out
