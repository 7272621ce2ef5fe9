"""The supervisor's live dashboard (/supervisor, its polled fragment and the drill-down lists), through the
Flask test client: figures per centre and per service for a seeded mix, RAG in words, the calls behind a
figure and the actions taken from there, the exceptions panel (texts not delivered or failed, failed RQ
jobs and their requeue), role checks, and `users.last_seen_at` behind "Handlers signed in"."""
from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from ipoa.adapters import orm
from ipoa.adapters.rq_queue import QUEUE_NAME
from ipoa.service import calls as call_service
from ipoa.service import dashboard as dashboard_service
from ipoa.service.professionals import add_professional
from tests.conftest import csrf_token, make_user
from tests.helpers.clocks import breach
from tests.helpers.rota import add_on_duty
from tests.helpers.web import (
    actor_for,
    block,
    error_text,
    form_for,
    in_triage,
    load,
    logged,
    service_fires,
    signed_in,
    table_by_first_cell,
    tables,
    text,
)

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CALL_LINK = re.compile(r'<td(?: class="[^"]*")?><a href="/calls/([0-9A-Z]{4}-[0-9A-Z]{4})">')


# -- helpers --------------------------------------------------------------------------------------

def refer(svc, service: str = "CRT", **overrides) -> tuple[str, str]:
    ref = in_triage(svc, **overrides)
    call = load(svc, ref)
    call_service.fire_call_trigger(svc, actor_for(), ref, {"trigger": "refer", "expected_version": call.version,
                                                           "data": {"service": service},
                                                           "reason": "Known to this service"})
    return ref, load(svc, ref).referrals[0].id


def accept(svc, ref: str, rid: str) -> None:
    service_fires(svc, ref, rid, {"trigger": "accept", "expected_version": 1})


@pytest.fixture
def mix(svc, clock):
    """CNH logs a (waiting) at 10:00; at 10:01 b (in triage), c (referred, CRT not yet accepted) and d
    (referred, CRT accepted), and MHA logs m. a's triage clock is then breached (10:16). It is now 10:30."""
    a = logged(svc)
    clock.advance(minutes=1)
    b = in_triage(svc)
    c, c_rid = refer(svc)
    d, d_rid = refer(svc)
    accept(svc, d, d_rid)
    m = logged(svc, centre="MHA", need="mental_health")
    breach(svc, clock, a, "triage", late_minutes=1)
    clock.set(MONDAY_10 + timedelta(minutes=30))
    return {"a": a, "b": b, "c": c, "c_rid": c_rid, "d": d, "d_rid": d_rid, "m": m}


def dashboard_tables(page: str):
    """(breaches or None, centres, services) from the supervisor page or the fragment, told apart by their
    headers (the phone lines' table, and the exceptions' tables, come between and after them)."""
    found = tables(page)

    def first(*header: str):
        return next((t for t in found if t and tuple(t[0][:len(header)]) == header), None)

    return first("Call", "Clock"), first("Centre", "Status"), first("Service", "Status")


def listed_refs(page: str) -> list[str]:
    if 'id="drill"' not in page:
        assert "None right now." in page
        return []
    return CALL_LINK.findall(block(page, 'id="drill"', "<table"))


def audit(svc, ref: str):
    return call_service.get_call(svc, ref)[1]


# -- figures --------------------------------------------------------------------------------------

def test_figures_per_centre_and_service_for_a_seeded_mix(client, users, svc, mix):
    signed_in(client, "supervisor")
    resp = client.get("/supervisor")
    assert resp.status_code == 200
    _, by_centre, by_service = dashboard_tables(text(resp))
    centres = table_by_first_cell(by_centre)
    assert set(centres) == {"CNH", "FCP", "ASC", "EDT", "CHS", "MHA", "HFD"}
    cnh = centres["CNH"]
    assert {k: cnh[k] for k in ("Waiting", "Logged", "In triage", "Referred", "Total open", "Awaiting acceptance",
                                "Accepted", "Breached now", "Oldest wait")} == {
        "Waiting": "2", "Logged": "1", "In triage": "1", "Referred": "2", "Total open": "4",
        "Awaiting acceptance": "1", "Accepted": "1", "Breached now": "1", "Oldest wait": "30m"}
    assert cnh["Status"] == "Red: 1 breached"
    mha = centres["MHA"]
    assert (mha["Waiting"], mha["Logged"], mha["Breached now"]) == ("1", "1", "0")
    assert mha["Status"] == "Amber: urgent call waiting 29m (over 7m 30s)"
    assert centres["ASC"]["Status"] == "Green: on track"
    assert (centres["ASC"]["Waiting"], centres["ASC"]["Oldest wait"]) == ("0", "–")

    services = table_by_first_cell(by_service)
    assert len(services) == 12
    crt = services["CRT"]
    assert {k: crt[k] for k in ("Sent", "Accepted", "In progress", "Total open", "Breached now",
                                "Oldest awaiting acceptance")} == {
        "Sent": "1", "Accepted": "1", "In progress": "0", "Total open": "2", "Breached now": "0",
        "Oldest awaiting acceptance": "29m"}
    assert crt["Status"] == "Amber: urgent referral unaccepted 29m (over 15m)"
    assert services["DN"]["Status"] == "Green: on track" and services["DN"]["Total open"] == "0"


def test_a_breached_referral_counts_for_its_service_and_the_referring_centre(client, users, svc, clock):
    ref, rid = refer(svc)
    breach(svc, clock, ref, "acceptance", rid, late_minutes=2)
    dash = dashboard_service.figures(svc)
    crt = next(f for f in dash.services if f.code == "CRT")
    cnh = next(f for f in dash.centres if f.code == "CNH")
    assert (crt.breached, crt.rag.text) == (1, "Red: 1 breached")
    assert (cnh.breached, cnh.rag.level) == (1, "red")
    signed_in(client, "supervisor")
    page = text(client.get("/supervisor/calls?service=CRT&measure=breached"))
    assert listed_refs(page) == [ref]


def test_the_figures_read_open_records_only(svc, mix):
    # d's referral completes: the call closes; neither it nor its referral is counted any more.
    service_fires(svc, mix["d"], mix["d_rid"], {"trigger": "complete", "expected_version": 2})
    assert load(svc, mix["d"]).closed_at is not None
    dash = dashboard_service.figures(svc)
    cnh = next(f for f in dash.centres if f.code == "CNH")
    crt = next(f for f in dash.services if f.code == "CRT")
    assert (cnh.total, cnh.counts.get("referred"), cnh.accepted) == (3, 1, 0)
    assert (crt.total, crt.counts, crt.accepted) == (1, {"sent": 1}, 0)


# -- the page and its fragment ---------------------------------------------------------------------

def test_the_fragment_is_the_live_part_of_the_page_and_is_never_cached(client, users, svc, mix):
    signed_in(client, "supervisor")
    page_resp = client.get("/supervisor")
    frag_resp = client.get("/supervisor/dashboard/fragment")
    assert frag_resp.status_code == 200
    for resp in (page_resp, frag_resp):
        assert resp.headers["Cache-Control"] == "no-store"
    page, frag = text(page_resp), text(frag_resp)
    # The fragment is exactly the block the page polls and swaps: same element, same polling.
    opening = re.search(r'<div id="dashboard-live"[^>]*>', frag).group(0)
    assert frag.lstrip().startswith(opening)
    assert 'hx-get="/supervisor/dashboard/fragment"' in opening and 'hx-trigger="every 2s"' in opening
    assert 'hx-swap="outerHTML"' in opening
    assert opening in page
    assert "<html" not in frag and "<nav" not in frag
    assert dashboard_tables(frag) == dashboard_tables(page)
    # Usable without JavaScript: the same tables server-side, and a plain Refresh link.
    assert '<a id="dashboard-refresh" href="/supervisor">Refresh</a>' in page
    # htmx is served from here, with its licence, never from a CDN.
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in page
    assert "https://" not in page.split("<main", 1)[1]
    js = client.get("/static/vendor/htmx.min.js")
    assert js.status_code == 200 and b"htmx" in js.data[:200]
    js.close()
    lic = client.get("/static/vendor/htmx.LICENSE")
    assert lic.status_code == 200 and b"Zero-Clause BSD" in lic.data
    lic.close()


def test_every_figure_links_to_the_calls_behind_it(client, users, svc, mix):
    signed_in(client, "supervisor")
    page = text(client.get("/supervisor"))
    assert 'href="/supervisor/calls?centre=CNH&measure=waiting"' in page
    assert 'id="c-CNH-waiting" href="/supervisor/calls?centre=CNH&measure=waiting"' in page
    assert 'id="c-CNH-breached" href="/supervisor/calls?centre=CNH&measure=breached"' in page
    assert 'id="s-CRT-accepted" href="/supervisor/calls?service=CRT&measure=accepted"' in page
    assert 'id="s-CRT-sent" href="/supervisor/calls?service=CRT&measure=sent"' in page
    # Red and amber say where to look.
    assert '<a id="c-CNH-rag" href="/supervisor/calls?centre=CNH&measure=breached">Red: 1 breached</a>' in page
    assert '<a id="c-MHA-rag" href="/supervisor/calls?centre=MHA&measure=waiting">Amber: ' in page
    # Each linked figure's list matches the figure.
    for link_id, expected in (("c-CNH-waiting", 2), ("c-CNH-in_triage", 1), ("c-CNH-referred", 2),
                              ("c-CNH-open", 4), ("c-CNH-awaiting_acceptance", 1), ("c-CNH-accepted", 1),
                              ("c-CNH-breached", 1), ("c-MHA-logged", 1), ("s-CRT-sent", 1),
                              ("s-CRT-accepted", 1), ("s-CRT-open", 2)):
        href = re.search(rf'id="{link_id}" href="([^"]+)"', page).group(1)
        listed = text(client.get(href))
        assert len(listed_refs(listed)) == expected, link_id


def test_drill_down_lists_the_right_calls(client, users, svc, mix):
    signed_in(client, "supervisor")
    waiting = text(client.get("/supervisor/calls?centre=CNH&measure=waiting"))
    assert listed_refs(waiting) == [mix["a"], mix["b"]]  # longest waiting first
    assert "calls waiting" in waiting
    assert listed_refs(text(client.get("/supervisor/calls?centre=CNH&measure=in_triage"))) == [mix["b"]]
    assert listed_refs(text(client.get("/supervisor/calls?centre=CNH&measure=breached"))) == [mix["a"]]
    assert listed_refs(text(client.get("/supervisor/calls?centre=CNH&measure=awaiting_acceptance"))) == [mix["c"]]
    assert listed_refs(text(client.get("/supervisor/calls?service=CRT&measure=accepted"))) == [mix["d"]]
    assert listed_refs(text(client.get("/supervisor/calls?centre=MHA&measure=open"))) == [mix["m"]]
    assert listed_refs(text(client.get("/supervisor/calls?centre=ASC&measure=open"))) == []
    for bad in ("centre=CNH&measure=nonsense", "centre=XXX&measure=open", "service=CRT&centre=CNH",
                "measure=open", "service=NOPE"):
        assert client.get(f"/supervisor/calls?{bad}").status_code == 404, bad


def test_reassign_from_the_list_transfers_the_call_and_is_audited(client, users, svc, mix):
    token = signed_in(client, "supervisor")
    page = text(client.get("/supervisor/calls?centre=CNH&measure=waiting"))
    assert f'action="/supervisor/calls/{mix["a"]}/transfer"' in page
    form = {"csrf_token": token, "centre": "ASC", "reason": "Social care need, not health",
            "expected_version": str(load(svc, mix["a"]).version), "list_centre": "CNH", "list_measure": "waiting"}
    # Without CSRF: refused, nothing changes.
    resp = client.post(f"/supervisor/calls/{mix['a']}/transfer", data={**form, "csrf_token": "forged"})
    assert resp.status_code == 400 and load(svc, mix["a"]).centre == "CNH"
    resp = client.post(f"/supervisor/calls/{mix['a']}/transfer", data=form)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/supervisor/calls?centre=CNH&measure=waiting"
    call = load(svc, mix["a"])
    assert (call.centre, call.state) == ("ASC", "transferred")
    last = audit(svc, mix["a"])[-1]
    assert (last.trigger, last.actor, last.reason, last.to_state) == (
        "transfer", "supervisor", "Social care need, not health", "transferred")
    after = text(client.get(resp.headers["Location"]))
    assert f"Call {mix['a']} transferred to Adult Social Care Customer Service Centre." in after
    assert listed_refs(after) == [mix["b"]]
    assert listed_refs(text(client.get("/supervisor/calls?centre=ASC&measure=transferred"))) == [mix["a"]]


def test_reassign_errors_are_shown_and_change_nothing(client, users, svc, mix):
    token = signed_in(client, "supervisor")
    version = load(svc, mix["b"]).version
    base = {"csrf_token": token, "list_centre": "CNH", "list_measure": "waiting"}
    resp = client.post(f"/supervisor/calls/{mix['b']}/transfer",
                       data={**base, "centre": "ASC", "reason": "", "expected_version": str(version)})
    assert resp.status_code == 302
    assert "not transferred" in text(client.get(resp.headers["Location"]))
    resp = client.post(f"/supervisor/calls/{mix['b']}/transfer",
                       data={**base, "centre": "ASC", "reason": "x", "expected_version": str(version - 1)})
    assert "changed while you were looking at it" in text(client.get(resp.headers["Location"]))
    # A referred call cannot be transferred: the list offers no form, and a forged post is refused.
    page = text(client.get("/supervisor/calls?centre=CNH&measure=referred"))
    assert f'/supervisor/calls/{mix["c"]}/transfer' not in page
    resp = client.post(f"/supervisor/calls/{mix['c']}/transfer",
                       data={**base, "centre": "ASC", "reason": "x", "expected_version": "3"})
    assert "can no longer be transferred" in text(client.get(resp.headers["Location"]))
    assert (load(svc, mix["b"]).centre, load(svc, mix["c"]).centre) == ("CNH", "CNH")
    resp = client.post("/supervisor/calls/NOPE-NOPE/transfer",
                       data={**base, "centre": "ASC", "reason": "x", "expected_version": "1"})
    assert resp.status_code == 404


def test_reroute_from_the_list(client, users, svc, mix):
    token = signed_in(client, "supervisor")
    page = text(client.get("/supervisor/calls?service=CRT&measure=sent"))
    action = f'/supervisor/calls/{mix["c"]}/referrals/{mix["c_rid"]}/reroute'
    assert f'action="{action}"' in page
    assert "/reroute" not in block(text(client.get("/supervisor/calls?service=CRT&measure=accepted")),
                                   'id="drill"', "<table")
    resp = client.post(action, data={"csrf_token": token, "service": "CRS", "reason": "CRT at capacity",
                                     "expected_version": "1", "list_service": "CRT", "list_measure": "sent"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/supervisor/calls?service=CRT&measure=sent"
    call = load(svc, mix["c"])
    assert [(r.service, r.state) for r in call.referrals] == [("CRT", "withdrawn"), ("CRS", "sent")]
    assert any(e.trigger == "withdraw" and e.actor == "supervisor" for e in audit(svc, mix["c"]))
    assert listed_refs(text(client.get(resp.headers["Location"]))) == []


def test_escalating_a_referral_texts_the_services_duty_lead_and_is_audited(client, users, svc, mix):
    from ipoa.adapters.orm import outbox as outbox_table
    from ipoa.adapters.orm import sms_messages
    from ipoa.service import outbox

    token = signed_in(client, "supervisor")
    action = f'/supervisor/calls/{mix["c"]}/referrals/{mix["c_rid"]}/escalate'
    assert f'action="{action}"' in text(client.get("/supervisor/calls?service=CRT&measure=sent"))
    form = {"csrf_token": token, "list_service": "CRT", "list_measure": "sent"}
    missing = client.post(action, data={**form, "reason": "  "})
    assert missing.status_code == 302 and "not escalated" in text(client.get(missing.headers["Location"]))
    assert not [e for e in audit(svc, mix["c"]) if e.trigger == "escalate"]
    resp = client.post(action, data={**form, "reason": "Family ringing again, no visit booked"})
    assert resp.status_code == 302
    (event,) = [e for e in audit(svc, mix["c"]) if e.trigger == "escalate"]
    assert (event.actor, event.entity, event.from_state, event.to_state) == ("supervisor", "referral", "sent", "sent")
    assert event.reason == "Family ringing again, no visit booked"
    assert load(svc, mix["c"]).referrals[0].version == 1  # nothing the service must reconcile
    with svc.uow() as uow:
        (mid,) = uow.session.scalars(select(outbox_table.c.id).where(outbox_table.c.topic == "referral.escalated"))
    outbox.process(svc, mid)
    with svc.uow() as uow:
        (sms,) = uow.session.execute(select(sms_messages).where(sms_messages.c.outbox_id == mid)).all()
    assert (sms.to, sms.recipient_kind) == (svc.directory.services["CRT"].duty_lead, "duty_lead")
    assert mix["c"] in sms.body and "supervisor escalated" in sms.body and "Family" not in sms.body
    # Handlers cannot; a finished referral has nothing to escalate.
    handler = client.application.test_client()
    handler_token = signed_in(handler, "handler")
    assert handler.post(action, data={**form, "csrf_token": handler_token, "reason": "x"}).status_code == 403
    service_fires(svc, mix["c"], mix["c_rid"], {
        "trigger": "decline", "expected_version": 1, "reason": "Not for us"})
    late = client.post(action, data={**form, "reason": "Chasing"})
    assert "nothing to escalate" in text(client.get(late.headers["Location"]))


def test_escalating_through_the_api(client, svc, tokens, mix):
    url = f'/api/v1/calls/{mix["c"]}/referrals/{mix["c_rid"]}/escalate'
    sup = {"Authorization": f"Bearer {tokens['supervisor']}"}
    assert client.post(url, json={"reason": "x"}, headers={"Authorization": f"Bearer {tokens['handler']}"}
                       ).status_code == 403
    bad = client.post(url, json={"reason": 7}, headers=sup)
    assert bad.status_code == 422 and "reason" in bad.get_json()["error"]["fields"]
    assert client.post(url, json={}, headers=sup).status_code == 422
    assert client.post(f'/api/v1/calls/{mix["c"]}/referrals/nope/escalate', json={"reason": "x"},
                       headers=sup).status_code == 404
    ok = client.post(url, json={"reason": "Chasing a visit"}, headers=sup)
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["referral"] == {"id": mix["c_rid"], "service": "CRT", "state": "sent", "version": 1}
    assert [e.reason for e in audit(svc, mix["c"]) if e.trigger == "escalate"] == ["Chasing a visit"]
    paths = client.get("/api/v1/openapi.json", headers=sup).get_json()["paths"]
    assert "/calls/{ref}/referrals/{referral_id}/escalate" in paths


# -- exceptions -----------------------------------------------------------------------------------

def add_sms(svc, *, minutes_ago: int, status: str, to: str = "+447700900123", error_code: int | None = None,
            ref: str = "AAAA-BBBB", template: str = "referral_sent", kind: str = "on_duty",
            professional_id: int | None = None, referral_id: str | None = None) -> str:
    sid = uuid.uuid4().hex
    created = svc.clock.now() - timedelta(minutes=minutes_ago)
    with svc.uow() as uow:
        uow.session.execute(insert(orm.sms_messages).values(
            id=sid, call_ref=ref, referral_id=referral_id, recipient_kind=kind, professional_id=professional_id,
            to=to, template=template, body=f"{ref} test", status=status, error_code=error_code,
            error_message="Unreachable destination handset" if error_code else None, attempts=1,
            created_at=created, updated_at=created))
        uow.commit()
    return sid


def explode(identifier: str) -> None:
    """A background job that fails (run by the test's worker)."""
    raise RuntimeError("gateway refused the batch\nsecond line: gave up")


def failed_job(svc, queue_name: str = QUEUE_NAME) -> str:
    from rq import Queue, SimpleWorker

    queue = Queue(queue_name, connection=svc.redis())
    job = queue.enqueue("tests.e2e.test_dashboard.explode", "arg-9990000026")
    SimpleWorker([queue], connection=svc.redis()).work(burst=True)
    return job.id


def test_exceptions_panel_lists_late_and_failed_texts(client, users, svc):
    ref, rid = refer(svc)  # to CRT
    nia = add_on_duty(svc, name="Nia Nurse", service="CRT", mobile="07700 900201")
    late = add_sms(svc, minutes_ago=11, status="sent", to="+447700900201", ref=ref, referral_id=rid,
                   professional_id=nia)
    add_sms(svc, minutes_ago=5, status="sent", ref="RCNT-0001")  # not yet 10 minutes
    add_sms(svc, minutes_ago=30, status="delivered", ref="DLVD-0001")
    add_sms(svc, minutes_ago=60 * 25, status="queued", ref="OLDD-0001")  # outside the 24 h window
    failing = logged(svc)  # texts are about calls of the supervisor's centre (CNH): shown whole
    add_sms(svc, minutes_ago=3, status="undelivered", error_code=30003, to="+447700900456", ref=failing,
            kind="duty_lead", template="escalation")
    signed_in(client, "supervisor")
    page = text(client.get("/supervisor"))
    panel = block(page, 'id="exceptions-title"', "<section")
    header, *rows = tables(block(panel, 'id="undelivered"', "<table"))[0]
    assert header == ["Call", "For", "Status", "Age", "Follow-up"]
    (row,) = rows
    # Who it was for in words, their service, and the number to ring; what it was about, no patient details.
    assert row[:4] == [f"{ref} New referral to Clinical Response Team (CRT)",
                       "Nia Nurse On-duty professional, Clinical Response Team (CRT) 07700 900201 (ring Nia Nurse)",
                       "sent", "11m (created 09:49)"]
    assert f'<a id="tel-{late}" href="tel:+447700900201">' in panel
    header, *rows = tables(block(panel, 'id="failed-sms"', "<table"))[0]
    assert header == ["Call", "For", "Status", "Error", "Created", "Follow-up"]
    (row,) = rows
    assert row[:5] == [f"{failing} Escalation: a referral to a service is overdue or was escalated",
                       "Duty lead (name not on record) 07700 900456 (ring Duty lead)", "undelivered",
                       "30003: Unreachable destination handset", "23 Nov 09:57"]
    assert "+447700******" not in page  # the full number, to ring, rather than a masked one
    assert "RCNT-0001" not in panel and "DLVD-0001" not in panel and "OLDD-0001" not in panel
    exc = dashboard_service.exceptions(svc)  # the same lists through the service layer
    assert [m.id for m in exc.undelivered] == [late] and exc.failed_total == 1


def test_a_failed_text_about_no_call_is_listed_without_a_link_to_a_call(client, users, svc):
    """The duty lead's text about a colleague's OFF (service/availability.py) belongs to no call: the row
    says so rather than linking to /calls/."""
    sid = add_sms(svc, minutes_ago=3, status="undelivered", error_code=30003, to="+447700900456", ref="",
                  kind="duty_lead", template="availability_off_alone")
    signed_in(client, "supervisor")
    panel = block(text(client.get("/supervisor")), 'id="exceptions-title"', "<section")
    _, *rows = tables(block(panel, 'id="failed-sms"', "<table"))[0]
    (row,) = rows
    assert row[0] == "Not about a call To the duty lead: a professional texted OFF, nobody else on duty"
    assert f'<span id="sms-{sid}">Not about a call</span>' in panel
    assert 'href="/calls/"' not in panel and "about call <" not in panel


def test_the_panel_names_whoever_a_text_was_for(client, users, svc):
    ref, rid = refer(svc, service="DN")
    with svc.uow() as uow:
        uow.session.execute(update(orm.users).where(orm.users.c.username == "supervisor")
                            .values(mobile="+447700900301"))
        uow.session.execute(update(orm.calls).where(orm.calls.c.ref == ref).values(caller_name="Dr Demo"))
        uow.commit()
    # No professional_id on the row: the number is a professional's all the same.
    add_professional(svc, name="Ned Nurse", service="DN", mobile="07700 900202")
    add_sms(svc, minutes_ago=20, status="sent", to="+447700900202", ref=ref, referral_id=rid)
    add_sms(svc, minutes_ago=19, status="sent", to="+447700900104", ref=ref, referral_id=rid, kind="duty_lead")
    add_sms(svc, minutes_ago=18, status="sent", to="+447700900301", ref=ref, kind="supervisor",
            template="escalation_call")
    add_sms(svc, minutes_ago=17, status="sent", to="+447700900999", ref=ref, referral_id=rid, kind="referrer",
            template="referral_accepted")
    signed_in(client, "supervisor")
    panel = block(text(client.get("/supervisor")), 'id="exceptions-title"', "<section")
    _, *rows = tables(block(panel, 'id="undelivered"', "<table"))[0]
    dn = "Community (district) nursing (DN)"
    assert [r[:2] for r in rows] == [
        [f"{ref} New referral to {dn}", f"Ned Nurse On-duty professional, {dn} 07700 900202 (ring Ned Nurse)"],
        [f"{ref} New referral to {dn}", f"Duty lead, {dn} (name not on record) 07700 900104 (ring Duty lead)"],
        [f"{ref} Escalation: a call's clock ran out", "Supervisor Supervisor, supervisor, CNH 07700 900301 "
                                                      "(ring Supervisor)"],
        [f"{ref} Update to the referrer: referral to {dn} accepted",
         "Referring professional (name and number on the call's page)"]]
    for number in ("+447700900202", "+447700900104", "+447700900301"):
        assert f'href="tel:{number}"' in panel
    # The referrer's name and number are the call's record: on its page, where each view is logged.
    assert "Dr Demo" not in panel and "900999" not in panel
    # Nothing that identifies the patient: the call's reference stands for the call.
    call = load(svc, ref)
    assert call.family_name not in panel and call.nhs_number not in panel


def follow_up_url(sms_id: str) -> str:
    return f"/supervisor/texts/{sms_id}/follow-up"


def test_marking_a_text_followed_up_is_audited_and_takes_it_off_the_panel(client, users, svc, clock):
    from ipoa.service import audit as audit_service

    ref, rid = refer(svc)
    sid = add_sms(svc, minutes_ago=15, status="undelivered", error_code=30003, ref=ref, referral_id=rid)
    token = signed_in(client, "supervisor")
    panel = block(text(client.get("/supervisor")), 'id="exceptions-title"', "<section")
    form = form_for(panel, f'id="followed-up-{sid}"')
    assert f'action="{follow_up_url(sid)}"' in form and 'name="csrf_token"' in form
    assert f'<textarea class="nhsuk-textarea" id="note-{sid}" name="note" rows="2" required maxlength="2000"' in form
    assert 'class="nhsuk-button nhsuk-button--secondary" type="submit"' in form
    assert client.post(follow_up_url(sid), data={"note": "Rang Nia"}).status_code == 400  # CSRF, as every form

    clock.advance(minutes=2)
    resp = client.post(follow_up_url(sid), data={"csrf_token": token, "note": "  Rang Nia: visiting at 3pm  "})
    assert resp.status_code == 302 and resp.headers["Location"] == "/supervisor#exceptions"
    page = text(client.get("/supervisor"))
    assert f"The text about call {ref} is marked followed up" in page
    assert f'id="text-{sid}"' not in page and 'id="no-failures"' in page
    # Kept on the text: by whom, when and the note; and in the audit trail, on the call's record.
    with svc.uow() as uow:
        row = uow.session.execute(select(orm.sms_messages).where(orm.sms_messages.c.id == sid)).one()
    assert (row.followed_up_by, row.followed_up_at, row.follow_up_note) == (
        "supervisor", clock.now(), "Rang Nia: visiting at 3pm")
    (event,) = [e for e in audit(svc, ref) if e.trigger == "followed_up"]
    assert (event.entity, event.entity_id, event.actor, event.reason, event.at) == (
        "text", sid, "supervisor", "Rang Nia: visiting at 3pm", clock.now())
    assert event.data == {"recipient": "on_duty", "template": "referral_sent"}
    assert audit_service.verify_all(svc, "cli:test").ok  # chained like every other event
    # Again (a second supervisor, a double press): nothing to follow up, said plainly, never a 5xx.
    again = client.post(follow_up_url(sid), data={"csrf_token": token, "note": "Rang again"})
    assert again.status_code == 409 and "followed up already" in text(again)
    assert len([e for e in audit(svc, ref) if e.trigger == "followed_up"]) == 1


def test_a_follow_up_without_a_note_is_refused_naming_the_field(client, users, svc):
    ref = logged(svc)
    sid = add_sms(svc, minutes_ago=15, status="failed", ref=ref)
    token = signed_in(client, "supervisor")
    for note, message in (("", "Enter a note: say who you spoke to and what was agreed"),
                          ("   ", "Enter a note: say who you spoke to and what was agreed"),
                          ("x" * 2001, "Enter a note of 2000 characters or fewer")):
        resp = client.post(follow_up_url(sid), data={"csrf_token": token, "note": note})
        assert resp.status_code == 400
        page = text(resp)
        # The NHS.UK error pattern: a summary linking to the field, the message beside it, the text's details.
        assert '<a href="#note">' + message + "</a>" in page and error_text(page, "note") == message
        assert 'aria-invalid="true"' in form_for(page, 'id="note"') and ref in page
        assert page.count('href="tel:+447700900123"') == 1
    still = text(client.get("/supervisor"))
    assert f'id="text-{sid}"' in still
    with svc.uow() as uow:
        assert uow.session.scalar(select(orm.sms_messages.c.followed_up_at)
                                  .where(orm.sms_messages.c.id == sid)) is None


def test_following_up_a_text_not_on_the_panel_is_a_4xx(client, users, svc):
    token = signed_in(client, "supervisor")
    missing = client.post(follow_up_url("0" * 32), data={"csrf_token": token, "note": "Rang them"})
    assert missing.status_code == 404 and "Text not found" in text(missing)
    missing = client.post(follow_up_url("0" * 32), data={"csrf_token": token, "note": ""})
    assert missing.status_code == 404
    delivered = add_sms(svc, minutes_ago=15, status="delivered", ref=logged(svc))
    resp = client.post(follow_up_url(delivered), data={"csrf_token": token, "note": "Rang them"})
    assert resp.status_code == 409 and "This text is now delivered: there is nothing to follow up." in text(resp)
    recent = add_sms(svc, minutes_ago=2, status="sent", ref=logged(svc))  # not late yet
    assert client.post(follow_up_url(recent), data={"csrf_token": token, "note": "Rang"}).status_code == 409


def test_a_supervisor_of_another_centre_cannot_follow_up_its_texts(client, users, svc):
    """Following up a text writes a note on its call's record: acting on a call is for its own centre
    (docs/information-governance.md, section 3), so another centre's supervisor is refused with nothing
    stored, whatever the note, and the panel offers them no form for it."""
    make_user(svc, "supervisor.asc", "supervisor", "ASC")
    ref, rid = refer(svc)  # a CNH call
    sid = add_sms(svc, minutes_ago=15, status="failed", ref=ref, referral_id=rid)
    token = signed_in(client, "supervisor.asc")
    panel = block(text(client.get("/supervisor")), 'id="exceptions-title"', "<section")
    assert f'id="text-{sid}"' in panel  # still listed: references and codes are for every centre
    assert f'id="followed-up-{sid}"' not in panel and f'id="note-{sid}"' not in panel
    assert "For the supervisors of CNH" in panel
    for note in ("Spoke to Mrs Patient at 07700 900999", ""):  # a missing note never shows the text's page
        resp = client.post(follow_up_url(sid), data={"csrf_token": token, "note": note})
        assert resp.status_code == 403
        assert "You can change the calls that are with your own centre" in text(resp)
        assert "07700 900999" not in text(resp) and "tel:" not in text(resp)
    with svc.uow() as uow:
        assert uow.session.scalar(select(orm.sms_messages.c.followed_up_at)
                                  .where(orm.sms_messages.c.id == sid)) is None
    assert [e for e in audit(svc, ref) if e.trigger == "followed_up"] == []
    assert [m.id for m in dashboard_service.exceptions(svc).failed] == [sid]  # still on CNH's panel


def test_who_a_text_was_for_is_shown_only_to_those_who_may_see_its_call(client, users, svc):
    """A referrer's name and number are part of the call's record: the exceptions panel sends the call's own
    centre to the call's page for them (a logged view), and tells every other centre only what kind of
    recipient it was, with no number."""
    make_user(svc, "supervisor.asc", "supervisor", "ASC")
    ref, rid = refer(svc, service="DN")  # a CNH call
    with svc.uow() as uow:
        uow.session.execute(update(orm.calls).where(orm.calls.c.ref == ref)
                            .values(caller_name="Dr Gwendolyn Referrerby"))
        uow.commit()
    referrer = add_sms(svc, minutes_ago=15, status="failed", to="+447911123456", ref=ref, referral_id=rid,
                       kind="referrer", template="referral_accepted")
    add_professional(svc, name="Ned Nurse", service="DN", mobile="07700 900202")
    nurse = add_sms(svc, minutes_ago=20, status="sent", to="+447700900202", ref=ref, referral_id=rid)
    hidden = ("Gwendolyn", "Referrerby", "07911 123456", "+447911123456", "Ned Nurse", "07700 900202",
              "+447700900202", "tel:")
    signed_in(client, "supervisor.asc")
    for url in ("/supervisor", "/supervisor/dashboard/fragment"):
        panel = block(text(client.get(url)), 'id="exceptions-title"', "<section")
        assert f'id="text-{referrer}"' in panel and f'id="text-{nurse}"' in panel
        assert [v for v in hidden if v in panel] == [], url
        rows = {r[0]: r for r in tables(block(panel, 'id="failed-sms"', "<table"))[0][1:]}
        assert rows[f"{ref} Update to the referrer: referral to Community (district) nursing (DN) accepted"][1] \
            == "Referring professional (contact details for CNH only)"
    # The call's own centre rings them.
    cnh = client.application.test_client()
    signed_in(cnh, "supervisor")
    panel = block(text(cnh.get("/supervisor/dashboard/fragment")), 'id="exceptions-title"', "<section")
    assert "Dr Gwendolyn Referrerby" not in panel and "tel:+447911123456" not in panel
    assert f"/calls/{ref}" in panel and "(name and number on the <a" in panel
    assert 'href="tel:+447700900202"' in panel and f'id="followed-up-{referrer}"' in panel
    with svc.uow() as uow:  # the panel itself showed nothing of the record: no view to log
        assert uow.session.execute(select(orm.access_events).where(orm.access_events.c.call_ref == ref)).all() == []


def test_twilios_error_message_never_shows_the_number_it_refused(client, users, svc):
    """Twilio's error text can quote the number ("Invalid 'To' Phone Number: +44..."): the panel shows the
    number only to those who may see it, and so never in the message, to anyone."""
    make_user(svc, "supervisor.asc", "supervisor", "ASC")
    ref, rid = refer(svc, service="DN")
    sms_id = add_sms(svc, minutes_ago=15, status="failed", to="+447911123456", ref=ref, referral_id=rid,
                     kind="referrer", template="referral_accepted")
    with svc.uow() as uow:
        uow.session.execute(update(orm.sms_messages).where(orm.sms_messages.c.id == sms_id).values(
            error_code=21211, error_message="Invalid 'To' Phone Number: +447911123456"))
        uow.commit()
    for who in ("supervisor.asc", "supervisor"):
        viewer = client.application.test_client()
        signed_in(viewer, who)
        panel = block(text(viewer.get("/supervisor")), 'id="exceptions-title"', "<section")
        assert f'id="text-{sms_id}"' in panel and "Invalid 'To' Phone Number" in panel
        assert "7911123456" not in panel and "7911 123456" not in panel, who


def test_a_failed_job_is_listed_and_requeued(client, users, svc):
    from rq import Queue
    from rq.registry import FailedJobRegistry

    job_id = failed_job(svc)
    token = signed_in(client, "supervisor")
    page = text(client.get("/supervisor"))
    panel = block(page, 'id="exceptions-title"', "<section")
    header, *rows = tables(block(panel, 'id="failed-jobs"', "<table"))[0]
    assert header == ["Job", "Function", "Failed at", "Error", "Action"]
    (row,) = rows
    assert row[0] == job_id and row[1] == "tests.e2e.test_dashboard.explode"
    assert row[3] == "RuntimeError: gateway refused the batch second line: gave up"  # no traceback
    assert "arg-9990000026" not in page  # job arguments are never shown
    assert f'action="/supervisor/jobs/{job_id}/requeue"' in panel
    queue = Queue(QUEUE_NAME, connection=svc.redis())
    registry = FailedJobRegistry(queue=queue)
    assert client.post(f"/supervisor/jobs/{job_id}/requeue").status_code == 400  # CSRF
    assert job_id in registry.get_job_ids()
    resp = client.post(f"/supervisor/jobs/{job_id}/requeue", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/supervisor#exceptions"
    assert job_id not in registry.get_job_ids() and job_id in queue.get_job_ids()
    after = text(client.get("/supervisor"))
    assert f"Job {job_id} requeued." in after and 'id="failed-jobs"' not in after
    resp = client.post(f"/supervisor/jobs/{job_id}/requeue", data={"csrf_token": token})
    assert "no longer in the failed jobs" in text(client.get("/supervisor"))


def test_failed_jobs_of_the_timers_queue_are_listed_with_the_texts_newest_first_and_requeued_to_it(
        client, users, svc):
    from rq import Queue

    from ipoa.adapters.rq_queue import TIMERS_QUEUE_NAME

    texts_job = failed_job(svc)
    time.sleep(1.1)  # RQ scores a failure by the second it expires
    timers_job = failed_job(svc, TIMERS_QUEUE_NAME)
    jobs, total = dashboard_service.failed_jobs(svc)
    assert [j.id for j in jobs] == [timers_job, texts_job] and total == 2
    token = signed_in(client, "supervisor")
    resp = client.post(f"/supervisor/jobs/{timers_job}/requeue", data={"csrf_token": token})
    assert resp.status_code == 302
    assert Queue(TIMERS_QUEUE_NAME, connection=svc.redis()).get_job_ids() == [timers_job]
    assert Queue(QUEUE_NAME, connection=svc.redis()).get_job_ids() == []
    assert [j.id for j in dashboard_service.failed_jobs(svc)[0]] == [texts_job]


def test_no_exceptions_says_so(client, users):
    signed_in(client, "supervisor")
    assert 'id="no-failures"' in text(client.get("/supervisor"))


def test_the_dashboard_survives_redis_being_unreachable(client, users, svc, monkeypatch):
    def down():
        raise ConnectionError("redis down")

    signed_in(client, "supervisor")
    monkeypatch.setattr(svc, "redis", down)
    resp = client.get("/supervisor/dashboard/fragment")
    assert resp.status_code == 200
    assert "Background job status is unavailable" in text(resp)


# -- roles ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["handler", "professional"])
def test_only_supervisors_reach_the_dashboard(client, users, svc, username):
    ref = logged(svc)
    job_id = failed_job(svc)
    sms_id = add_sms(svc, minutes_ago=15, status="failed", ref=ref)
    token = signed_in(client, username)
    for url in ("/supervisor", "/supervisor/dashboard/fragment", "/supervisor/calls?centre=CNH&measure=open",
                "/supervisor/calls?service=CRT&measure=sent"):
        assert client.get(url).status_code == 403, url
    for url, form in ((f"/supervisor/calls/{ref}/transfer", {"centre": "ASC", "reason": "x", "expected_version": "1"}),
                      (f"/supervisor/calls/{ref}/referrals/{'0' * 32}/reroute",
                       {"service": "DN", "reason": "x", "expected_version": "1"}),
                      (f"/supervisor/jobs/{job_id}/requeue", {}),
                      (follow_up_url(sms_id), {"note": "Rang them"})):
        assert client.post(url, data={"csrf_token": token, **form}).status_code == 403, url
    assert load(svc, ref).centre == "CNH"
    assert [m.id for m in dashboard_service.exceptions(svc).failed] == [sms_id]  # still to follow up
    from rq import Queue
    from rq.registry import FailedJobRegistry
    assert job_id in FailedJobRegistry(queue=Queue(QUEUE_NAME, connection=svc.redis())).get_job_ids()


def test_admin_does_not_see_the_dashboard(client, users):
    # Administrators configure the service; the live queues are the supervisors' (domain/access.py).
    signed_in(client, "admin")
    assert client.get("/supervisor").status_code == 403
    assert client.get("/supervisor/dashboard/fragment").status_code == 403


def test_signed_out_polling_is_sent_to_sign_in(client, users):
    resp = client.get("/supervisor/dashboard/fragment")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    resp = client.get("/supervisor/dashboard/fragment", headers={"HX-Request": "true"})
    assert resp.status_code == 401
    assert resp.headers["HX-Redirect"] == "/login?next=/supervisor"


# -- last seen, and handlers signed in --------------------------------------------------------------

def last_seen(svc, username: str):
    with svc.uow() as uow:
        return uow.session.scalar(select(orm.users.c.last_seen_at).where(orm.users.c.username == username))


def handlers_signed_in(client) -> dict[str, str]:
    _, by_centre, _ = dashboard_tables(text(client.get("/supervisor/dashboard/fragment")))
    return {code: row["Handlers signed in"] for code, row in table_by_first_cell(by_centre).items()}


def test_last_seen_is_written_at_most_once_a_minute(client, users, svc, clock):
    assert last_seen(svc, "handler") is None
    signed_in(client, "handler")
    assert last_seen(svc, "handler") == MONDAY_10
    clock.advance(seconds=59)
    assert client.get("/queue").status_code == 200
    assert last_seen(svc, "handler") == MONDAY_10
    clock.advance(seconds=1)
    client.get("/queue")
    assert last_seen(svc, "handler") == MONDAY_10 + timedelta(seconds=60)


def test_handlers_signed_in_counts_recent_handlers_of_each_centre(app, users, svc, clock):
    handler, handler_asc, supervisor = app.test_client(), app.test_client(), app.test_client()
    signed_in(handler, "handler")
    signed_in(supervisor, "supervisor")
    counts = handlers_signed_in(supervisor)
    assert (counts["CNH"], counts["ASC"]) == ("1", "0")  # the supervisor is not a handler
    clock.advance(minutes=10)
    signed_in(handler_asc, "handler.asc")
    counts = handlers_signed_in(supervisor)
    assert (counts["CNH"], counts["ASC"]) == ("1", "1")
    clock.advance(minutes=5, seconds=1)  # the CNH handler's last request was 15 min 1 s ago
    counts = handlers_signed_in(supervisor)
    assert (counts["CNH"], counts["ASC"]) == ("0", "1")
    handler.get("/queue")
    assert handlers_signed_in(supervisor)["CNH"] == "1"
    # Signing out takes a handler off the count at once.
    handler.post("/logout", data={"csrf_token": csrf_token(handler, "/queue")})
    assert last_seen(svc, "handler") is None
    assert handlers_signed_in(supervisor)["CNH"] == "0"


def test_a_failing_last_seen_write_never_fails_the_request(client, users, svc, monkeypatch):
    from ipoa.service import presence

    def broken(*a, **kw):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(presence, "record_seen", broken)
    resp = sign_in_and_get(client)
    assert resp.status_code == 200
    assert last_seen(svc, "handler") is None


def sign_in_and_get(client):
    from tests.conftest import sign_in

    sign_in(client, "handler")
    return client.get("/queue")
