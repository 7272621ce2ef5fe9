"""Need-to-know, break-glass and the access log, over HTTP (web pages and API): a handler sees their
centre's calls and those transferred to or from it; anything else is a 403 that says why and offers
break-glass; every view of a record is in the access log, with why the viewer could see it."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.adapters.audit_store import verify_chain
from ipoa.service import calls as call_service
from ipoa.service import records
from ipoa.service.calls import Actor
from ipoa.service.professionals import link_user
from tests.conftest import call_payload, csrf_token, make_token, make_user
from tests.helpers.rota import add_on_duty
from tests.helpers.web import signed_in, text

CNH = Actor("setup.cnh", "handler", "CNH")
ASC = Actor("setup.asc", "handler", "ASC")
SECRET = {"given_name": "Philippa", "family_name": "Unseenworth", "nhs_number": "9990000018",
          "date_of_birth": "1936-02-29", "postcode": "LE15 6RR"}


def cnh_call(svc, **subject) -> str:
    payload = call_payload(subject={**SECRET, **subject}, summary="Private-summary-text")
    return call_service.log_call(svc, CNH, payload, allow_duplicate=True).ref


def leaks(body: str) -> list[str]:
    return [v for v in (*SECRET.values(), "Private-summary-text") if v in body]


def access_rows(svc, ref: str) -> list:
    with svc.uow() as uow:
        return uow.session.execute(select(orm.access_events).where(orm.access_events.c.call_ref == ref)
                                   .order_by(orm.access_events.c.seq)).all()


def api(client, token, method, url, json=None):
    return client.open(url, method=method, json=json, headers={"Authorization": f"Bearer {token}"})


# -- outside the relationship: 403, saying why, nothing identifiable ----------------------------------

def test_another_centres_call_is_refused_on_the_page_and_the_api(client, svc, users, tokens):
    ref = cnh_call(svc)
    signed_in(client, "handler.asc")
    resp = client.get(f"/calls/{ref}")
    assert resp.status_code == 403
    page = text(resp)
    assert "not one of yours" in page and "break-glass" in page and 'id="bg-reason"' in page
    assert leaks(page) == []
    body = api(client, tokens["handler_asc"], "GET", f"/api/v1/calls/{ref}")
    assert body.status_code == 403
    err = body.get_json()["error"]
    assert err["code"] == "outside_relationship" and err["break_glass"].endswith("/break-glass with a reason")
    assert leaks(body.get_data(as_text=True)) == []
    assert access_rows(svc, ref) == []  # a refusal is not a view


def test_acting_on_another_centres_call_is_a_403_on_the_web_too(client, svc, users):
    ref = cnh_call(svc)
    token = signed_in(client, "handler.asc")
    resp = client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "start_triage",
                                                     "expected_version": "1"})
    assert resp.status_code == 403 and leaks(text(resp)) == []
    assert call_service.get_call(svc, ref)[0].state == "logged"


def test_another_centres_queue_and_texts_are_not_shown(client, svc, users):
    ref = cnh_call(svc)
    mine = call_service.log_call(svc, ASC, call_payload(centre="ASC"), allow_duplicate=True).ref
    signed_in(client, "handler.asc")
    resp = client.get("/queue?centre=CNH")
    assert resp.status_code == 403 and ref not in text(resp)
    assert mine in text(client.get("/queue"))
    # Texts: refer both calls; the ASC handler's messages page lists only the ASC call's.
    for actor, r in ((CNH, ref), (ASC, mine)):
        call = call_service.get_call(svc, r)[0]
        call_service.fire_call_trigger(svc, actor, r, {"trigger": "start_triage", "expected_version": call.version})
    from ipoa.service import outbox
    add_on_duty(svc, name="Sue", service="SCA", mobile="07700 900206")
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call_service.fire_call_trigger(svc, ASC, mine, {"trigger": "refer", "expected_version": 2,
                                                    "data": {"service": "SCA"}, "reason": "test"})
    call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "refer", "expected_version": 2,
                                                   "data": {"service": "DN"}, "reason": "test"})
    outbox.relay_once(svc, outbox.rq_send_queue(svc), block_seconds=0)
    page = text(client.get("/messages"))
    assert mine in page and ref not in page


def test_a_duplicate_elsewhere_says_only_that_it_exists(client, svc, users, tokens):
    ref = cnh_call(svc)
    body = call_payload(centre="ASC", subject=SECRET)
    resp = api(client, tokens["handler_asc"], "POST", "/api/v1/calls", body)
    assert resp.status_code == 409
    (other,) = resp.get_json()["error"]["open_calls"]
    assert set(other) == {"ref", "centre", "state", "logged_at"} and other["ref"] == ref
    # Within the relationship the handler sees what it is about.
    resp = api(client, tokens["handler"], "POST", "/api/v1/calls", call_payload(subject=SECRET))
    (mine,) = resp.get_json()["error"]["open_calls"]
    assert mine["need"] == "urgent_community_health" and mine["urgency"] == "urgent"
    # And on the web form: no need, urgency or link for the other centre's call.
    token = signed_in(client, "handler.asc")
    form = {"csrf_token": token, "caller_type": "carer", "nhs_number": SECRET["nhs_number"], "given_name": "A",
            "family_name": "B", "need": "urgent_community_health", "urgency": "urgent", "summary": "x",
            "consent": "given"}
    page = text(client.post("/calls/new", data=form))
    warning = page[page.index('id="dup-title"'):page.index("</section>", page.index('id="dup-title"'))]
    assert ref in warning and "ASC" not in warning.split(ref)[0]
    assert "Urgent" not in warning and "urgent" not in warning and f'href="/calls/{ref}"' not in warning


def test_a_duplicate_elsewhere_is_in_that_calls_access_log(client, svc, users, tokens):
    """The warning tells someone outside the call's relationship that this NHS number has a call there, where
    and in what state: that goes in the call's access log, once a warning, as a view would; a warning
    within the relationship is not a view of anything new."""
    ref = cnh_call(svc)
    before = len(access_rows(svc, ref))
    for _ in range(2):
        assert api(client, tokens["handler_asc"], "POST", "/api/v1/calls",
                   call_payload(centre="ASC", subject=SECRET)).status_code == 409
    rows = access_rows(svc, ref)[before:]
    assert [(r.username, r.centre, r.purpose) for r in rows] == [("handler.asc", "ASC", "duplicate_check")] * 2
    assert api(client, tokens["handler"], "POST", "/api/v1/calls", call_payload(subject=SECRET)).status_code == 409
    assert len(access_rows(svc, ref)) == before + 2


# -- transfers: the centre it came from may read, not change ---------------------------------------------

def test_a_transferred_call_stays_readable_by_the_centre_it_left(client, svc, users):
    ref = cnh_call(svc)
    call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "transfer", "expected_version": 1,
                                                   "data": {"centre": "ASC"}, "reason": "social care"})
    token = signed_in(client, "handler")
    assert client.get(f"/calls/{ref}").status_code == 200
    assert access_rows(svc, ref)[-1].purpose == "transferred"
    resp = client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "start_triage",
                                                     "expected_version": "2"})
    assert resp.status_code == 403
    # The receiving centre owns it now.
    assert call_service.fire_call_trigger(svc, ASC, ref, {"trigger": "start_triage", "expected_version": 2}).state \
        == "in_triage"


# -- the access log ---------------------------------------------------------------------------------------

def test_every_view_is_logged_with_who_what_where_and_why(client, svc, users, tokens):
    ref = cnh_call(svc)
    signed_in(client, "handler")
    assert client.get(f"/calls/{ref}").status_code == 200
    assert api(client, tokens["supervisor"], "GET", f"/api/v1/calls/{ref}").status_code == 200
    rows = access_rows(svc, ref)
    assert [(r.username, r.role, r.centre, r.route, r.purpose) for r in rows] == [
        ("handler", "handler", "CNH", "GET /calls/<ref>", "own_centre"),
        ("supervisor", "supervisor", "CNH", "GET /api/v1/calls/<ref>", "own_centre")]
    # No identifier in the events themselves.
    for r in rows:
        assert leaks(" ".join(str(v) for v in r)) == []
    assert verify_chain_ok(svc, "access")


def verify_chain_ok(svc, chain: str) -> bool:
    with svc.uow() as uow:
        problem, _ = verify_chain(uow.session, chain)
    return problem is None


def test_supervisors_see_who_has_viewed_a_record(client, svc, users, tokens):
    ref = cnh_call(svc)
    signed_in(client, "handler")
    client.get(f"/calls/{ref}")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})
    signed_in(client, "supervisor")
    page = text(client.get(f"/calls/{ref}"))
    assert "Who has viewed this record" in page and "Handler" in page
    log = api(client, tokens["supervisor"], "GET", f"/api/v1/calls/{ref}/access-log").get_json()
    assert [v["username"] for v in log["views"]][:1] == ["handler"]
    assert {v["why"] for v in log["views"]} == {"own_centre"}
    # Handlers do not see the log: it is for supervisors (and subject access requests).
    assert api(client, tokens["handler"], "GET", f"/api/v1/calls/{ref}/access-log").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})
    signed_in(client, "handler")
    assert "Who has viewed this record" not in text(client.get(f"/calls/{ref}"))


def test_a_professional_sees_referrals_to_their_own_service_only(client, svc, users):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)
    ref = cnh_call(svc)
    call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "refer", "expected_version": 2,
                                                          "data": {"service": "DN"}, "reason": "test"})
    other = cnh_call(svc, nhs_number="9990000026")
    call_service.fire_call_trigger(svc, CNH, other, {"trigger": "start_triage", "expected_version": 1})
    theirs = call_service.fire_call_trigger(svc, CNH, other, {"trigger": "refer", "expected_version": 2,
                                                             "data": {"service": "CRT"}, "reason": "test"})
    signed_in(client, "professional")
    assert client.get(f"/my/referrals/{call.referrals[0].id}").status_code == 200
    assert access_rows(svc, ref)[-1].purpose == "own_service"
    assert access_rows(svc, ref)[-1].referral_id == call.referrals[0].id
    refused = client.get(f"/my/referrals/{theirs.referrals[0].id}")
    assert refused.status_code == 403 and leaks(text(refused)) == []
    assert client.get(f"/calls/{ref}").status_code == 403  # the handlers' page is not theirs


def test_admins_see_no_patient_details(client, svc, users, tokens):
    ref = cnh_call(svc)
    signed_in(client, "admin")
    for url in (f"/calls/{ref}", "/queue", "/messages", "/supervisor"):
        resp = client.get(url)
        assert resp.status_code == 403, url
        assert leaks(text(resp)) == []
    resp = client.get(f"/calls/{ref}")
    assert 'id="bg-reason"' not in text(resp)  # no break-glass for administrators
    assert api(client, tokens["admin"], "GET", f"/api/v1/calls/{ref}").status_code == 403
    assert api(client, tokens["admin"], "POST", f"/api/v1/calls/{ref}/break-glass",
               {"reason": "other", "note": "curious"}).status_code == 403


# -- break-glass -------------------------------------------------------------------------------------------

def test_break_glass_opens_one_record_for_an_hour_and_is_recorded(client, svc, users, clock):
    ref = cnh_call(svc)
    other = cnh_call(svc, nhs_number="9990000026")
    token = signed_in(client, "handler.asc")
    # A reason is required; 'other' needs a note.
    resp = client.post(f"/calls/{ref}/break-glass", data={"csrf_token": token, "reason": ""})
    assert resp.status_code == 422 and 'id="bg-reason-error"' in text(resp)
    resp = client.post(f"/calls/{ref}/break-glass", data={"csrf_token": token, "reason": "other", "note": " "})
    assert resp.status_code == 422 and 'id="bg-note-error"' in text(resp)
    resp = client.post(f"/calls/{ref}/break-glass", data={"csrf_token": token, "reason": "transfer_in_progress",
                                                          "note": "Caller rang ASC about this call"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{ref}")
    page = text(client.get(f"/calls/{ref}"))
    assert "You are viewing this record by break-glass" in page
    assert "Opened by break-glass" in page and "Transfer in progress" in page and "Asha" not in page
    assert "Handler.Asc" in page or "handler.asc" in page
    assert SECRET["family_name"] in page
    # One record only.
    assert client.get(f"/calls/{other}").status_code == 403
    # Both the opening and the view are access events, marked break-glass with the grant.
    rows = access_rows(svc, ref)
    assert [(r.route, r.purpose) for r in rows] == [("POST /calls/<ref>/break-glass", "break_glass"),
                                                    ("GET /calls/<ref>", "break_glass")]
    assert rows[0].grant_id is not None and rows[0].grant_id == rows[1].grant_id
    # For a limited time.
    clock.advance(minutes=61)
    assert client.get(f"/calls/{ref}").status_code == 403


def test_break_glass_does_not_let_a_handler_transfer_the_call(client, svc, users, clock):
    """Break-glass opens one record for an hour (docs/information-governance.md, section 4): a transfer
    would make the grant-holder's centre the call's own for good, so it is refused under a grant, with
    what to do instead; the grant's other changes are still allowed."""
    ref = cnh_call(svc)
    token = signed_in(client, "handler.asc")
    assert client.post(f"/calls/{ref}/break-glass", data={"csrf_token": token, "reason": "transfer_in_progress",
                                                          "note": "Caller rang ASC"}).status_code == 302
    page = text(client.get(f"/calls/{ref}"))
    assert 'id="action-transfer"' not in page and 'id="action-start_triage"' in page  # no button it would refuse
    for centre in ("ASC", "FCP"):  # to the grant-holder's centre or any other
        resp = client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "transfer",
                                                         "centre": centre, "reason": "Mine now",
                                                         "expected_version": "1"})
        assert resp.status_code == 403
        assert "You opened this call by break-glass: ask a supervisor at CNH to transfer it" in text(resp)
    try:
        call_service.fire_call_trigger(svc, Actor("handler.asc", "handler", "ASC"), ref, {
            "trigger": "transfer", "expected_version": 1, "data": {"centre": "ASC"}, "reason": "x"},
            effect="move_centre")
        raise AssertionError("transferred under break-glass")
    except call_service.OutsideRelationship as exc:
        assert not exc.break_glass
    assert call_service.get_call(svc, ref)[0].centre == "CNH"
    # Other changes under the grant go ahead; after the hour the call is CNH's alone.
    assert client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "start_triage",
                                                     "expected_version": "1"}).status_code == 302
    clock.advance(minutes=61)
    assert client.get(f"/calls/{ref}").status_code == 403


def test_refusals_and_links_do_not_name_a_call_the_user_may_not_see(client, svc, users):
    """A professional refused another service's referral is not told its call's reference; a handler
    following a text's old-style link to another centre's call is refused there and then, not redirected
    to a URL (kept in access logs) that carries the reference."""
    from ipoa.service.sms import link_token

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)
    ref = cnh_call(svc)
    call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "start_triage", "expected_version": 1})
    call = call_service.fire_call_trigger(svc, CNH, ref, {"trigger": "refer", "expected_version": 2,
                                                          "data": {"service": "CRT"}, "reason": "test"})
    referral = call.referrals[0]
    token = signed_in(client, "professional")
    refused = client.get(f"/my/referrals/{referral.id}")
    assert refused.status_code == 403 and ref not in text(refused)
    assert "You can see the referrals to your own service" in text(refused)
    acted = client.post(f"/my/referrals/{referral.id}", data={"csrf_token": token, "trigger": "accept",
                                                              "expected_version": "1"})
    assert acted.status_code == 403 and ref not in text(acted)
    asc = client.application.test_client()
    signed_in(asc, "handler.asc")
    resp = asc.get(f"/r/{link_token(referral.id)}")
    assert resp.status_code == 403 and "Location" not in resp.headers
    assert ref not in text(resp) and leaks(text(resp)) == []
    assert access_rows(svc, ref) == []
    # The call's own centre is taken to it, as before.
    cnh = client.application.test_client()
    signed_in(cnh, "handler")
    resp = cnh.get(f"/r/{link_token(referral.id)}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{ref}")


def test_break_glass_through_the_api(client, svc, users, tokens, clock):
    ref = cnh_call(svc)
    token = tokens["handler_asc"]
    bad = api(client, token, "POST", f"/api/v1/calls/{ref}/break-glass", {"reason": "because"})
    assert bad.status_code == 422 and "reason" in bad.get_json()["error"]["fields"]
    made = api(client, token, "POST", f"/api/v1/calls/{ref}/break-glass",
               {"reason": "immediate_risk_to_life", "note": "Caller says he has collapsed"})
    assert made.status_code == 201
    body = made.get_json()
    assert body["reason"] == "immediate_risk_to_life"
    assert body["expires_at"] == (clock.now() + timedelta(minutes=60)).isoformat()
    got = api(client, token, "GET", f"/api/v1/calls/{ref}")
    assert got.status_code == 200 and got.get_json()["access"]["relationship"] == "break_glass"
    # Someone who can already see it does not need it.
    assert api(client, tokens["handler"], "POST", f"/api/v1/calls/{ref}/break-glass",
               {"reason": "other", "note": "x"}).status_code == 403


def test_the_centres_supervisor_reviews_each_break_glass_access(client, svc, users):
    ref = cnh_call(svc)
    grant = records.break_glass(svc, ASC, ref, {"reason": "safeguarding_concern", "note": "s.42 enquiry"},
                                route="test")
    make_user(svc, "supervisor.asc", "supervisor", "ASC")
    # Another centre's supervisor does not review CNH's calls.
    token = signed_in(client, "supervisor.asc")
    assert ref not in text(client.get("/supervisor/break-glass"))
    resp = client.post(f"/supervisor/break-glass/{grant.id}/review", data={"csrf_token": token, "comment": "ok"})
    assert resp.status_code == 403
    client.post("/logout", data={"csrf_token": token})
    token = signed_in(client, "supervisor")
    page = text(client.get("/supervisor/break-glass"))
    assert ref in page and "Safeguarding concern" in page and "s.42 enquiry" in page
    resp = client.post(f"/supervisor/break-glass/{grant.id}/review", data={"csrf_token": token, "comment": " "})
    assert resp.status_code == 302
    with svc.uow() as uow:
        assert uow.session.scalar(select(orm.break_glass_grants.c.reviewed_at)) is None
    resp = client.post(f"/supervisor/break-glass/{grant.id}/review",
                       data={"csrf_token": token, "comment": "Checked with the ASC team: needed for the enquiry."})
    assert resp.status_code == 302
    assert ref not in text(client.get("/supervisor/break-glass"))  # reviewed: off the to-do list
    assert "Checked with the ASC team" in text(client.get("/supervisor/break-glass?show=all"))
    with svc.uow() as uow:
        events = uow.session.execute(select(orm.security_events.c.kind, orm.security_events.c.actor,
                                            orm.security_events.c.detail)
                                     .where(orm.security_events.c.kind == "break_glass_reviewed")).all()
    assert [(e.kind, e.actor, e.detail["grant_id"]) for e in events] == [
        ("break_glass_reviewed", "supervisor", grant.id)]
    assert verify_chain_ok(svc, "security")
    # The record says it was reviewed.
    assert "reviewed by Supervisor (supervisor, CNH)" in text(client.get(f"/calls/{ref}"))


def test_a_supervisor_does_not_review_their_own_break_glass_access(client, svc, users):
    """A supervisor of ASC opens a CNH call by break-glass, then moves to CNH: the opening is reviewed by
    another CNH supervisor, never by its own holder."""
    ref = cnh_call(svc)
    make_user(svc, "supervisor.asc", "supervisor", "ASC")
    grant = records.break_glass(svc, Actor("supervisor.asc", "supervisor", "ASC"), ref,
                                {"reason": "transfer_in_progress"}, route="test")
    with svc.uow() as uow:
        uow.session.execute(orm.users.update().where(orm.users.c.username == "supervisor.asc")
                            .values(centre="CNH"))
        uow.commit()
    token = signed_in(client, "supervisor.asc")
    resp = client.post(f"/supervisor/break-glass/{grant.id}/review", data={"csrf_token": token, "comment": "fine"})
    assert resp.status_code == 403 and "is yours" in text(resp)
    with svc.uow() as uow:
        assert uow.session.scalar(select(orm.break_glass_grants.c.reviewed_at)) is None
    client.post("/logout", data={"csrf_token": token})
    token = signed_in(client, "supervisor")  # another CNH supervisor
    resp = client.post(f"/supervisor/break-glass/{grant.id}/review", data={"csrf_token": token, "comment": "fine"})
    assert resp.status_code == 302


def test_the_centres_calls_export_logs_each_call(client, svc, users, clock):
    refs = [cnh_call(svc), cnh_call(svc, nhs_number="9990000026")]
    elsewhere = call_service.log_call(svc, ASC, call_payload(centre="ASC"), allow_duplicate=True).ref
    signed_in(client, "supervisor")
    resp = client.get("/supervisor/calls.csv")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    body = resp.get_data(as_text=True)
    assert all(r in body for r in refs) and elsewhere not in body and SECRET["family_name"] in body
    for r in refs:
        assert [(a.route, a.purpose) for a in access_rows(svc, r)] == [("GET /supervisor/calls.csv", "own_centre")]
    assert access_rows(svc, elsewhere) == []
    assert client.get("/supervisor/calls.csv?from=2026-01-01&to=2026-11-23").status_code == 400
    assert client.get("/supervisor/calls.csv?from=yesterday").status_code == 400
    client.post("/logout", data={"csrf_token": csrf_token(client, "/no-access")})
    signed_in(client, "handler")
    assert client.get("/supervisor/calls.csv").status_code == 403


def test_the_centres_calls_export_never_starts_a_cell_with_a_formula(client, svc, users):
    """A summary or an address typed as a formula is exported as text (docs/security.md, "Exports")."""
    payload = call_payload(subject={**SECRET, "address_line_1": "@SUM(1+1)", "town": "-Oakham"},
                           summary='=HYPERLINK("http://example.invalid","Open")')
    ref = call_service.log_call(svc, CNH, payload, allow_duplicate=True).ref
    signed_in(client, "supervisor")
    rows = list(csv.reader(io.StringIO(client.get("/supervisor/calls.csv").get_data(as_text=True), newline="")))
    header, row = rows[0], next(r for r in rows[1:] if r[0] == ref)
    exported = dict(zip(header, row))
    assert (exported["summary"], exported["address_line_1"], exported["town"]) == (
        "'=HYPERLINK(\"http://example.invalid\",\"Open\")", "'@SUM(1+1)", "'-Oakham")
    assert exported["family_name"] == SECRET["family_name"]  # the other cells as typed
    assert not [cell for r in rows for cell in r if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_the_centre_of_a_record_is_not_guessable_from_refusals(client, svc, users, tokens):
    # An unknown ref is a 404 and a known one outside the relationship a 403; neither says whose it is.
    ref = cnh_call(svc)
    missing = api(client, tokens["handler_asc"], "GET", "/api/v1/calls/ZZZZ-ZZZZ")
    refused = api(client, tokens["handler_asc"], "GET", f"/api/v1/calls/{ref}")
    assert (missing.status_code, refused.status_code) == (404, 403)
    assert not re.search(r"\bCNH\b", refused.get_json()["error"]["message"])


def test_tokens_of_other_roles_are_refused_for_break_glass_review(client, svc, users):
    make_token(svc, users["handler"])
    signed_in(client, "handler")
    assert client.get("/supervisor/break-glass").status_code == 403
