"""Visible SLA clocks, breaches, due callbacks and the supervisor's one-step re-route, end to end: the
API, the call and queue pages, and the supervisor page, with the FixedClock moved by hand and timers
fired as the worker would (ipoa.service.timers.fire)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ipoa.adapters import orm
from ipoa.service import work_queues as queue_service
from tests.helpers.api import error_of, fire_ok, get_call, log, referred
from tests.helpers.clocks import breach, reroute, running_timers
from tests.helpers.web import REF_LINK, block, error_text, fire_as_service, signed_in, tables, text

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


# -- clocks in the API ----------------------------------------------------------------------------

def test_api_shows_the_triage_clock_counting_down_and_then_overdue(api, clock):
    ref = log(api)["ref"]  # urgent: triage within 15 min of logging
    body = get_call(api, ref)
    assert body["breach"] is None and body["breached_at"] is None
    (c,) = body["clocks"]
    assert c == {"clock": "triage", "due_at": (MONDAY_10 + timedelta(minutes=15)).isoformat(),
                 "due_local": "Mon 23 Nov 10:15", "remaining": "due in 15 min", "overdue": False,
                 "seconds_left": 900, "rule": "urgent: 15 min", "referral_id": None, "breached": False}
    clock.advance(minutes=3)
    assert get_call(api, ref)["clocks"][0]["remaining"] == "due in 12 min"
    clock.advance(minutes=15)  # 10:18
    (c,) = get_call(api, ref)["clocks"]
    assert (c["remaining"], c["overdue"], c["seconds_left"], c["breached"]) == (
        "overdue by 3 min", True, -180, False)


def test_api_shows_the_referral_clocks_with_their_referral(api, svc, clock):
    ref, rid = referred(api)  # the triage clock stops; the referral's acceptance clock starts
    body = get_call(api, ref)
    assert [(c["clock"], c["referral_id"], c["remaining"], c["rule"]) for c in body["clocks"]] == [
        ("acceptance", rid, "due in 30 min", "urgent: 30 min")]
    assert body["referrals"][0]["breach"] is None and body["referrals"][0]["breached_at"] is None
    clock.advance(minutes=10)
    fire_as_service(svc, ref, rid, "accept")
    (c,) = get_call(api, ref)["clocks"]
    assert (c["clock"], c["referral_id"], c["remaining"]) == ("response", rid, "due in 2 h")


def test_a_closed_call_has_no_running_clock(api):
    ref = log(api)["ref"]
    fire_ok(api, ref, "cancel", 1, reason="rang off")
    assert get_call(api, ref)["clocks"] == []


def test_a_breached_call_shows_in_the_api(api, svc, clock):
    ref = log(api)["ref"]
    breach(svc, clock, ref, "triage", late_minutes=1)  # 10:16
    clock.advance(minutes=4)  # 10:20
    body = get_call(api, ref)
    assert body["breach"] == "triage"
    assert body["breached_at"] == (MONDAY_10 + timedelta(minutes=16)).isoformat()
    assert body["version"] == 1  # a breach is not a change the handler must reconcile
    (c,) = body["clocks"]
    assert (c["clock"], c["breached"], c["remaining"]) == ("triage", True, "overdue by 5 min")
    assert any(e["trigger"] == "sla_breach" for e in body["history"])


def test_a_breached_referral_shows_in_the_api(api, svc, clock):
    ref, rid = referred(api)
    breach(svc, clock, ref, "acceptance", rid)
    body = get_call(api, ref)
    assert body["breach"] is None
    assert body["referrals"][0]["breach"] == "acceptance" and body["referrals"][0]["breached_at"]
    assert [(c["clock"], c["referral_id"], c["breached"]) for c in body["clocks"]] == [("acceptance", rid, True)]


# -- the call page and the queue ------------------------------------------------------------------

def test_call_page_shows_each_running_clock(client, users, api, svc, clock):
    ref = log(api)["ref"]
    signed_in(client)
    clock.advance(minutes=3)
    clocks = block(text(client.get(f"/calls/{ref}")), 'id="clocks-title"', "<section")
    plain = " ".join(re.sub(r"<[^>]+>", "", clocks).split())  # the words, without the tags around them
    assert "Triage: due in 12 min (urgent: 15 min)" in plain
    assert "Breached" not in clocks
    clock.advance(minutes=15)
    clocks = block(text(client.get(f"/calls/{ref}")), 'id="clocks-title"', "<section")
    assert "overdue by 3 min" in clocks and "Overdue" in clocks and "Breached" not in clocks


def test_call_page_marks_a_breach_in_words(client, users, api, svc, clock):
    ref, rid = referred(api)
    breach(svc, clock, ref, "acceptance", rid, late_minutes=2)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    clocks = block(page, 'id="clocks-title"', "<section")
    assert "Acceptance" in clocks and "(CRT referral)" in clocks and "overdue by 2 min" in clocks
    assert "Breached" in clocks
    assert "SLA breached: acceptance" in block(page, 'id="referrals-title"', "<section")


def test_queue_shows_the_most_urgent_clock_of_each_call(client, users, api, svc, clock):
    routine = log(api, urgency="routine", subject={"nhs_number": None})["ref"]
    urgent = log(api, subject={"nhs_number": None})["ref"]
    clock.advance(minutes=20)  # the urgent call's triage clock ran out 5 min ago
    signed_in(client)
    page = text(client.get("/queue"))
    header, *rows = tables(page)[0]
    clock_col = header.index("Clock")
    cells = {row[0]: row[clock_col] for row in rows}
    assert cells[urgent] == "Triage: overdue by 5 min Overdue"
    assert cells[routine].startswith("Triage: due in ")
    breach(svc, clock, urgent, "triage", late_minutes=5)
    rows = tables(text(client.get("/queue")))[0][1:]
    assert {row[0]: row[clock_col] for row in rows}[urgent] == "Triage: overdue by 5 min Breached"


# -- callbacks ------------------------------------------------------------------------------------

def test_a_due_callback_rises_to_the_top_of_the_queue(client, users, api, svc, clock):
    promised = log(api, urgency="routine", subject={"nhs_number": None})["ref"]
    fire_ok(api, promised, "promise_callback", 1,
            data={"callback_at": (MONDAY_10 + timedelta(minutes=30)).isoformat()})
    # More urgent than the promise, with a triage clock (1 h) that does not run out here: a call whose clock
    # has run out would rise above both (tests/integration/test_queue_order.py).
    urgent = log(api, urgency="same_day", subject={"nhs_number": None})["ref"]
    signed_in(client)
    assert REF_LINK.findall(text(client.get("/queue"))) == [urgent, promised]
    assert [c.ref for c in queue_service.centre_queue(svc, "CNH")] == [urgent, promised]

    clock.advance(minutes=31)  # the promised time has passed
    page = text(client.get("/queue"))
    assert REF_LINK.findall(page) == [promised, urgent]
    assert [c.ref for c in queue_service.centre_queue(svc, "CNH")] == [promised, urgent]
    rows = {r.call.ref: r for r in queue_service.centre_queue_rows(svc, "CNH")}
    assert rows[promised].callback_due and not rows[urgent].callback_due
    first = tables(page)[0][1]
    assert first[0] == promised and "Callback due" in first[3] and "promised 10:30" in first[3]
    assert "Callback: due in 14 min" in first[5]  # escalates 15 min after the promised time

    # 15 minutes overdue it escalates: the timer breaches and the queue says so in words.
    breach(svc, clock, promised, "callback", late_minutes=0)
    page = text(client.get("/queue"))
    first = tables(page)[0][1]
    assert first[0] == promised and "Callback due" in first[3] and "Breached" in first[5]
    assert get_call(api, promised)["breach"] == "callback"


def test_a_callback_not_yet_due_keeps_its_place(api, svc, clock):
    promised = log(api, urgency="routine", subject={"nhs_number": None})["ref"]
    fire_ok(api, promised, "promise_callback", 1,
            data={"callback_at": (MONDAY_10 + timedelta(hours=2)).isoformat()})
    urgent = log(api, subject={"nhs_number": None})["ref"]
    clock.advance(minutes=90)
    rows = queue_service.centre_queue_rows(svc, "CNH")
    assert [r.call.ref for r in rows] == [urgent, promised]
    assert not any(r.callback_due for r in rows)


def test_a_callback_made_leaves_the_top(api, svc, clock):
    promised = log(api, urgency="routine", subject={"nhs_number": None})["ref"]
    fire_ok(api, promised, "promise_callback", 1,
            data={"callback_at": (MONDAY_10 + timedelta(minutes=30)).isoformat()})
    urgent = log(api, subject={"nhs_number": None})["ref"]
    clock.advance(minutes=35)
    fire_ok(api, promised, "call_back", 2)
    rows = queue_service.centre_queue_rows(svc, "CNH")
    assert [r.call.ref for r in rows] == [urgent, promised] and not any(r.callback_due for r in rows)


# -- the supervisor's "Breached now" --------------------------------------------------------------

def test_supervisor_page_lists_breached_calls_and_referrals(client, users, api, svc, clock):
    called = log(api, subject={"nhs_number": None})["ref"]
    ref, rid = referred(api)
    breach(svc, clock, called, "triage", late_minutes=1)   # 10:16
    breach(svc, clock, ref, "acceptance", rid, late_minutes=1)  # 10:31
    clock.advance(minutes=9)  # 10:40
    signed_in(client, "supervisor")
    page = text(client.get("/supervisor"))
    section = block(page, 'id="breaches-title"', "<section")
    assert f'href="/calls/{called}"' in section and f'href="/calls/{ref}"' in section
    header, *rows = tables(section)[0]
    assert header == ["Call", "Clock", "Centre / service", "Urgency", "Due", "Overdue"]
    assert rows == [
        [called, "Triage", "CNH", "urgent", "23 Nov 10:15", "overdue by 25 min"],
        [ref, "Acceptance (referral)", "CNH → CRT", "urgent", "23 Nov 10:30", "overdue by 10 min"],
    ]


def test_a_breach_whose_clock_stopped_stays_listed_while_open_and_goes_when_closed(
        client, users, api, svc, clock):
    ref = log(api)["ref"]
    breach(svc, clock, ref, "triage", late_minutes=2)  # 10:17
    fire_ok(api, ref, "start_triage", 1)
    clock.advance(minutes=3)  # 10:20: triage still running
    fire_ok(api, ref, "refer", 2, data={"service": "CRT"})  # stops the triage clock, 5 min late
    signed_in(client, "supervisor")
    section = block(text(client.get("/supervisor")), 'id="breaches-title"', "<section")
    (row,) = tables(section)[0][1:]
    assert row[:2] == [ref, "Triage"] and row[5] == "was 5 min late; clock stopped 23 Nov 10:20"
    rows = queue_service.breached_now(svc)
    assert [(b.ref, b.clock, b.running, b.late_seconds) for b in rows] == [(ref, "triage", False, 300)]
    # The call closes when its referral completes: off the list.
    rid = get_call(api, ref)["referrals"][0]["id"]
    for trigger in ("accept", "complete"):
        fire_as_service(svc, ref, rid, trigger)
    assert get_call(api, ref)["state"] == "closed"
    section = block(text(client.get("/supervisor")), 'id="breaches-title"', "<section")
    assert "No open call or referral is in breach." in section


def test_supervisor_page_with_no_breach(client, users):
    signed_in(client, "supervisor")
    assert "No open call or referral is in breach." in text(client.get("/supervisor"))


# -- re-route in one action: the API ---------------------------------------------------------------

def test_supervisor_reroutes_an_unaccepted_referral(api, svc, clock):
    ref, rid = referred(api)  # to CRT, call version 3
    clock.advance(minutes=20)
    resp = reroute(api, ref, rid, {"service": "DN", "reason": "CRT at capacity, DN can visit today",
                                   "expected_version": 1})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["ref"] == ref and body["state"] == "referred" and body["version"] == 5
    assert body["withdrawn"] == {"id": rid, "service": "CRT", "state": "withdrawn", "version": 2}
    new = body["referral"]
    assert (new["service"], new["state"], new["version"]) == ("DN", "sent", 1)

    call = get_call(api, ref)
    assert [(r["service"], r["state"]) for r in call["referrals"]] == [("CRT", "withdrawn"), ("DN", "sent")]
    assert call["referrals"][0]["outcome_reason"] == "CRT at capacity, DN can visit today"
    assert call["route"]["service"] == "DN"
    steps = [(e["entity"], e["trigger"], e["from"], e["to"], e["actor"]) for e in call["history"]][-4:]
    assert steps == [
        ("referral", "withdraw", "sent", "withdrawn", "supervisor"),
        ("call", "referral_withdrawn", "referred", "in_triage", "supervisor"),
        ("call", "refer", "in_triage", "referred", "supervisor"),
        ("referral", "refer", None, "sent", "supervisor"),
    ]
    refer = call["history"][-2]
    assert refer["reason"] == "CRT at capacity, DN can visit today"
    assert refer["data"]["reroute"] == {"from_referral": rid, "from_service": "CRT"}
    # Clocks: the old acceptance clock stopped, the new one runs; no triage clock was left running.
    assert running_timers(svc, ref) == [("acceptance", new["id"])]
    assert [(c["clock"], c["referral_id"], c["remaining"]) for c in call["clocks"]] == [
        ("acceptance", new["id"], "due in 30 min")]
    # One transaction, one set of outbox events: the new service is told about its referral.
    with svc.uow() as uow:
        topics = list(uow.session.scalars(select(orm.outbox.c.topic).order_by(orm.outbox.c.created_at)))
    assert topics.count("referral.sent") == 2


def test_admin_may_not_reroute(api):
    # Administrators configure the service and its users: no patient records (domain/access.py).
    ref, rid = referred(api)
    error_of(reroute(api, ref, rid, {"service": "DN", "reason": "x", "expected_version": 1}, as_="admin"),
             403, "forbidden")
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["sent"]


def test_handler_may_not_reroute(api):
    ref, rid = referred(api)
    error_of(reroute(api, ref, rid, {"service": "DN", "reason": "x", "expected_version": 1},
                     as_="handler"), 403, "forbidden")
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["sent"]


def test_reroute_with_a_stale_version_is_409_and_changes_nothing(api):
    ref, rid = referred(api)
    err = error_of(reroute(api, ref, rid, {"service": "DN", "reason": "x", "expected_version": 7}),
                   409, "version_conflict")
    assert (err["expected_version"], err["current_version"]) == (7, 1)
    call = get_call(api, ref)
    assert call["state"] == "referred" and [r["state"] for r in call["referrals"]] == ["sent"]


def test_reroute_of_an_accepted_referral_is_refused(api, svc):
    ref, rid = referred(api)
    fire_as_service(svc, ref, rid, "accept")
    err = error_of(reroute(api, ref, rid, {"service": "DN", "reason": "x", "expected_version": 2}),
                   422, "trigger_not_allowed")
    assert err["state"] == "accepted"
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["accepted"]


def test_reroute_fields_are_validated(api):
    ref, rid = referred(api)
    err = error_of(reroute(api, ref, rid, {"service": "DN", "expected_version": 1}), 422, "invalid")
    assert set(err["fields"]) == {"reason"}
    err = error_of(reroute(api, ref, rid, {"service": "DN", "reason": "  ", "expected_version": 1}),
                   422, "invalid")
    assert err["fields"] == {"reason": "Enter a reason"}
    err = error_of(reroute(api, ref, rid, {"service": "NOPE", "reason": "x", "expected_version": 1}),
                   422, "invalid")
    assert err["fields"] == {"service": "Select a service from the list"}
    err = error_of(reroute(api, ref, rid, {}), 422, "invalid")
    assert set(err["fields"]) == {"service", "reason", "expected_version"}
    err = error_of(reroute(api, ref, rid, {"service": "CRT", "reason": "x", "expected_version": 1}),
                   422, "invalid")
    assert set(err["fields"]) == {"service"}  # already there
    call = get_call(api, ref)
    assert call["state"] == "referred" and [r["state"] for r in call["referrals"]] == ["sent"]


def test_reroute_unknown_referral_is_404_and_body_must_be_json(api, client, tokens):
    ref, _ = referred(api)
    error_of(reroute(api, ref, "nope", {"service": "DN", "reason": "x", "expected_version": 1}),
             404, "not_found")
    resp = client.post(f"/api/v1/calls/{ref}/referrals/x/reroute", data="x", content_type="text/plain",
                       headers={"Authorization": f"Bearer {tokens['supervisor']}"})
    error_of(resp, 400, "bad_request")


def test_openapi_documents_clocks_and_reroute(api):
    doc = api("GET", "/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    path = doc["paths"]["/calls/{ref}/referrals/{referral_id}/reroute"]["post"]
    assert set(path["responses"]) >= {"200", "403", "409", "422"}
    assert set(schemas["RerouteReferral"]["required"]) == {"service", "reason", "expected_version"}
    assert {"clocks", "breach", "breached_at"} <= set(schemas["Call"]["properties"])
    assert {"clock", "remaining", "overdue", "referral_id", "breached"} <= set(schemas["Clock"]["properties"])


# -- re-route in one action: the call page ---------------------------------------------------------

def test_supervisor_reroutes_from_the_call_page(client, users, api, svc):
    ref, rid = referred(api)
    token = signed_in(client, "supervisor")
    page = text(client.get(f"/calls/{ref}"))
    referrals = block(page, 'id="referrals-title"', "<section")
    assert f'action="/calls/{ref}/referrals/{rid}/reroute"' in referrals
    assert "Withdraw and re-route" in referrals
    at = referrals.index(f'<select id="{rid}-reroute-service"')
    options = referrals[at:referrals.index("</select>", at)]
    assert '<option value="DN"' in options and '<option value="CRT"' not in options  # not where it is

    url = f"/calls/{ref}/referrals/{rid}/reroute"
    assert client.post(url, data={"service": "DN", "reason": "x", "expected_version": "1"}).status_code == 400
    resp = client.post(url, data={"csrf_token": token, "service": "DN", "reason": "", "expected_version": "1"})
    assert resp.status_code == 422
    page = text(resp)
    assert "Enter a reason" in error_text(page, f"{rid}-reroute-reason")
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["sent"]

    resp = client.post(url, data={"csrf_token": token, "service": "DN", "reason": "CRT full",
                                  "expected_version": "1"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{ref}")
    call = get_call(api, ref)
    assert [(r["service"], r["state"]) for r in call["referrals"]] == [("CRT", "withdrawn"), ("DN", "sent")]
    page = text(client.get(f"/calls/{ref}"))
    assert "Referral to Clinical Response Team withdrawn. Referred to Community (district) nursing: " in page
    # The stale form (the old referral's version) is a conflict, and the withdrawn one offers no re-route.
    assert client.post(url, data={"csrf_token": token, "service": "SCA", "reason": "x",
                                  "expected_version": "1"}).status_code == 409
    assert f'action="/calls/{ref}/referrals/{rid}/reroute"' not in page


def test_handler_sees_no_reroute_form_and_may_not_post_it(client, users, api):
    ref, rid = referred(api)
    token = signed_in(client, "handler")
    assert "Withdraw and re-route" not in text(client.get(f"/calls/{ref}"))
    resp = client.post(f"/calls/{ref}/referrals/{rid}/reroute",
                       data={"csrf_token": token, "service": "DN", "reason": "x", "expected_version": "1"})
    assert resp.status_code == 403
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["sent"]
