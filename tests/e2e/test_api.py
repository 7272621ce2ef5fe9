"""The JSON API, /api/v1, end to end through the Flask test client with Bearer tokens."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ipoa.domain.errors import GuardFailed
from ipoa.service import calls as call_service
from tests.conftest import call_payload
from tests.helpers.api import (
    auth,
    error_of,
    fire,
    fire_ok,
    fire_referral,
    get_call,
    in_triage,
    log,
    referred,
    row_counts,
)
from tests.helpers.web import fire_as_service

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CENTRES = {"CNH", "FCP", "ASC", "EDT", "CHS", "MHA", "HFD"}
SERVICES = {"CRT", "OOHV", "CRS", "DN", "ILT", "SCA", "EDT", "SG", "REA", "MHCR", "LB", "FCPW"}


# -- POST /calls ----------------------------------------------------------------------------------

def test_log_call_returns_201_with_route_and_location(api, svc):
    resp = api("POST", "/api/v1/calls", call_payload())
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["state"] == "logged" and body["version"] == 1
    assert len(body["ref"]) == 9 and body["ref"][4] == "-"
    assert resp.headers["Location"] == f"/api/v1/calls/{body['ref']}"
    route = body["recommended_route"]
    assert {k: route[k] for k in ("tier", "service", "outcome", "locality", "rule")} == {
        "tier": 2, "service": "CRT", "outcome": None, "locality": "Charnwood", "rule": "5"}
    # Stored: the call, its audit event and its outbox message, and it can be read back.
    assert row_counts(svc) == {"calls": 1, "referrals": 0, "audit_events": 1, "outbox": 1}
    call = get_call(api, body["ref"])
    assert call["subject"]["nhs_number"] == "9990000026"
    assert call["caller"]["phone"] == "+447911123456"  # stored in E.164
    assert call["logged_by"] == "handler" and call["centre"] == "CNH"


def test_log_call_non_json_body_is_400(client, tokens, svc):
    resp = client.post("/api/v1/calls", data="centre=CNH", content_type="text/plain",
                       headers=auth(tokens["handler"]))
    error_of(resp, 400, "bad_request")
    assert row_counts(svc)["calls"] == 0


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer not-a-real-token"}, {"Authorization": "Bearer "},
    {"Authorization": "Basic aGFuZGxlcjpwdw=="},
], ids=["none", "bad-token", "empty-token", "basic-scheme"])
def test_log_call_without_a_valid_token_is_401(client, tokens, svc, headers):
    resp = client.post("/api/v1/calls", json=call_payload(), headers=headers)
    error_of(resp, 401, "unauthorised")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert row_counts(svc)["calls"] == 0


def test_log_call_as_professional_is_403(api, svc):
    error_of(api("POST", "/api/v1/calls", call_payload(), as_="professional"), 403, "forbidden")
    assert row_counts(svc)["calls"] == 0


def test_handler_cannot_log_into_another_centre(api, svc):
    error_of(api("POST", "/api/v1/calls", call_payload(centre="ASC")), 403, "forbidden")
    # Nor may a supervisor (need-to-know: a call belongs to the centre that logs it), nor an admin.
    error_of(api("POST", "/api/v1/calls", call_payload(centre="ASC"), as_="supervisor"), 403, "forbidden")
    error_of(api("POST", "/api/v1/calls", call_payload(centre="ASC"), as_="admin"), 403, "forbidden")
    assert row_counts(svc) == {"calls": 0, "referrals": 0, "audit_events": 0, "outbox": 0}
    assert log(api, as_="handler_asc", centre="ASC")["state"] == "logged"


BAD_FIELDS = [
    ("subject.nhs_number", {"subject": {"nhs_number": "9990000027"}}),  # fails Modulus 11
    ("subject.nhs_number", {"subject": {"nhs_number": "12345"}}),
    ("caller.phone", {"caller": {"phone": "0123"}}),
    ("caller.phone", {"caller": {"phone": "+1 212 555 0100"}}),  # not a UK number
    ("subject.postcode", {"subject": {"postcode": "LE11 ZZZ"}}),
    ("need", {"need": "astrology"}),
    ("urgency", {"urgency": "whenever"}),
    ("centre", {"centre": "XYZ"}),
    ("shoe_size", {"shoe_size": 9}),
    ("subject.shoe_size", {"subject": {"shoe_size": 9}}),
    ("subject.given_name", {"subject": {"given_name": ""}}),
    ("subject.date_of_birth", {"subject": {"date_of_birth": "2026-11-24"}}),  # tomorrow
    ("summary", {"summary": ""}),
    ("caller.type", {"caller": {"type": "alien"}}),
]


@pytest.mark.parametrize("field,overrides", BAD_FIELDS,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)])
def test_log_call_invalid_field_is_422_naming_it_and_stores_nothing(api, svc, field, overrides):
    resp = api("POST", "/api/v1/calls", call_payload(**overrides))
    err = error_of(resp, 422, "invalid")
    assert field in err["fields"], err
    assert err["fields"][field]
    assert row_counts(svc) == {"calls": 0, "referrals": 0, "audit_events": 0, "outbox": 0}
    totals = api("GET", "/api/v1/queues").get_json()
    assert sum(c["total"] for c in totals["centres"]) == 0


def test_log_call_missing_given_name_is_422(api, svc):
    body = call_payload()
    del body["subject"]["given_name"]
    err = error_of(api("POST", "/api/v1/calls", body), 422, "invalid")
    assert "subject.given_name" in err["fields"]
    assert row_counts(svc)["calls"] == 0


def test_log_call_reports_every_bad_field_at_once(api, svc):
    body = call_payload(subject={"nhs_number": "9990000027", "postcode": "nonsense"},
                        caller={"phone": "12"}, need="astrology", urgency="whenever")
    err = error_of(api("POST", "/api/v1/calls", body), 422, "invalid")
    assert {"subject.nhs_number", "subject.postcode", "caller.phone", "need", "urgency"} <= set(err["fields"])
    assert row_counts(svc)["calls"] == 0


def test_log_call_json_array_is_422_not_500(api, svc):
    err = error_of(api("POST", "/api/v1/calls", [call_payload()]), 422, "invalid")
    assert "body" in err["fields"]


def test_open_call_for_same_nhs_number_is_possible_duplicate(api, svc):
    first = log(api)["ref"]
    resp = api("POST", "/api/v1/calls", call_payload(need="community_nursing"))
    err = error_of(resp, 409, "possible_duplicate")
    assert [c["ref"] for c in err["open_calls"]] == [first]
    assert err["open_calls"][0]["centre"] == "CNH" and err["open_calls"][0]["state"] == "logged"
    assert row_counts(svc)["calls"] == 1
    # The caller saw it and insists.
    second = log(api, query="?allow_duplicate=true", need="community_nursing")
    assert second["ref"] != first
    assert row_counts(svc)["calls"] == 2
    # Both are now listed for a third attempt.
    err = error_of(api("POST", "/api/v1/calls", call_payload()), 409, "possible_duplicate")
    assert {c["ref"] for c in err["open_calls"]} == {first, second["ref"]}


def test_calls_without_nhs_number_are_never_duplicates(api):
    log(api, subject={"nhs_number": None})
    log(api, subject={"nhs_number": None})


def test_cancelled_call_is_not_a_duplicate(api):
    ref = log(api)["ref"]
    assert fire_ok(api, ref, "cancel", 1, reason="Caller rang off")["state"] == "cancelled"
    log(api)


def test_closed_call_is_not_a_duplicate(api):
    ref = in_triage(api, need="information_advice", urgency="routine")
    fire_ok(api, ref, "resolve", 2)
    assert fire_ok(api, ref, "close", 3)["state"] == "closed"
    log(api)


def test_resolved_but_not_closed_call_is_still_open(api):
    ref = in_triage(api, need="information_advice", urgency="routine")
    fire_ok(api, ref, "resolve", 2)
    err = error_of(api("POST", "/api/v1/calls", call_payload()), 409, "possible_duplicate")
    assert [c["ref"] for c in err["open_calls"]] == [ref]


# -- GET /calls/{ref} -----------------------------------------------------------------------------

def test_get_call_has_referrals_history_and_allowed_triggers(api, clock):
    ref, referral_id = referred(api)
    call = get_call(api, ref)
    assert call["state"] == "referred" and call["version"] == 3
    assert [(r["id"], r["service"], r["state"], r["version"]) for r in call["referrals"]] == [
        (referral_id, "CRT", "sent", 1)]
    assert call["allowed_triggers"] == []  # only internal triggers leave "referred"
    history = call["history"]
    assert [(h["entity"], h["trigger"], h["from"], h["to"]) for h in history] == [
        ("call", "log", None, "logged"),
        ("call", "start_triage", "logged", "in_triage"),
        ("call", "refer", "in_triage", "referred"),
        ("referral", "refer", None, "sent"),
    ]
    for h in history:
        assert h["actor"] == "handler"
        assert datetime.fromisoformat(h["at"]) == clock.now()
        assert "reason" in h


def test_get_call_allowed_triggers_follow_the_state(api):
    ref = log(api)["ref"]
    allowed = set(get_call(api, ref)["allowed_triggers"])
    assert allowed == {"start_triage", "divert_999", "transfer", "promise_callback", "cancel"}
    fire_ok(api, ref, "start_triage", 1)
    allowed = set(get_call(api, ref)["allowed_triggers"])
    assert {"resolve", "refer", "tier3_review", "transfer", "cancel"} <= allowed
    assert "start_triage" not in allowed and "close" not in allowed
    assert not allowed & {"referral_declined", "referral_withdrawn", "referral_completed"}


def test_get_call_has_clocks_and_breaches(api):
    ref, rid = referred(api)
    body = get_call(api, ref)
    assert body["breach"] is None and body["breached_at"] is None
    assert [(r["breach"], r["breached_at"]) for r in body["referrals"]] == [(None, None)]
    assert [(c["clock"], c["referral_id"], c["overdue"]) for c in body["clocks"]] == [("acceptance", rid, False)]


def test_get_unknown_call_is_404(api):
    error_of(api("GET", "/api/v1/calls/ZZZZ-ZZZZ"), 404, "not_found")


def test_get_call_needs_a_token_and_a_role(api, client):
    ref = log(api)["ref"]
    error_of(client.get(f"/api/v1/calls/{ref}"), 401, "unauthorised")
    error_of(client.get(f"/api/v1/calls/{ref}", headers=auth("wrong")), 401, "unauthorised")
    error_of(api("GET", f"/api/v1/calls/{ref}", as_="professional"), 403, "forbidden")
    assert get_call(api, ref, as_="supervisor")["ref"] == ref


# -- POST /calls/{ref}/events ---------------------------------------------------------------------

def test_fire_trigger_returns_new_state_and_version(api):
    ref = log(api)["ref"]
    body = fire_ok(api, ref, "start_triage", 1)
    assert (body["ref"], body["state"], body["version"]) == (ref, "in_triage", 2)
    assert get_call(api, ref)["version"] == 2


def test_stale_expected_version_is_409_and_changes_nothing(api, svc):
    ref = in_triage(api)
    before = row_counts(svc)
    err = error_of(fire(api, ref, "cancel", 1, reason="duplicate"), 409, "version_conflict")
    assert err["current_version"] == 2 and err["expected_version"] == 1
    assert get_call(api, ref)["state"] == "in_triage"
    assert row_counts(svc) == before


def test_trigger_not_allowed_lists_the_allowed_ones(api):
    ref = log(api)["ref"]
    err = error_of(fire(api, ref, "close", 1), 422, "trigger_not_allowed")
    assert err["state"] == "logged"
    assert set(err["allowed"]) == {"start_triage", "divert_999", "transfer", "promise_callback", "cancel"}
    assert "trigger" in err["fields"]
    error_of(fire(api, ref, "no_such_trigger", 1), 422, "trigger_not_allowed")
    assert get_call(api, ref)["version"] == 1


def test_events_on_unknown_call_is_404(api):
    error_of(fire(api, "ZZZZ-ZZZZ", "start_triage", 1), 404, "not_found")


def test_events_need_a_token_and_a_role(api, client):
    ref = log(api)["ref"]
    body = {"trigger": "start_triage", "expected_version": 1}
    error_of(client.post(f"/api/v1/calls/{ref}/events", json=body), 401, "unauthorised")
    error_of(api("POST", f"/api/v1/calls/{ref}/events", body, as_="professional"), 403, "forbidden")
    assert get_call(api, ref)["state"] == "logged"


def test_events_body_must_be_json(client, tokens, api):
    ref = log(api)["ref"]
    resp = client.post(f"/api/v1/calls/{ref}/events", data="trigger=start_triage",
                       headers=auth(tokens["handler"]))
    error_of(resp, 400, "bad_request")


@pytest.mark.parametrize("body,field", [
    ({"trigger": "start_triage"}, "expected_version"),
    ({"trigger": "start_triage", "expected_version": 0}, "expected_version"),
    ({"trigger": "start_triage", "expected_version": "one"}, "expected_version"),
    ({"expected_version": 1}, "trigger"),
    ({"trigger": "start_triage", "expected_version": 1, "colour": "red"}, "colour"),
])
def test_events_body_is_validated(api, body, field):
    ref = log(api)["ref"]
    err = error_of(api("POST", f"/api/v1/calls/{ref}/events", body), 422, "invalid")
    assert field in err["fields"]
    assert get_call(api, ref)["state"] == "logged"


def test_override_without_reason_is_refused_with_reason_field(api, svc):
    ref = in_triage(api)  # recommended: refer to CRT
    before = row_counts(svc)
    err = error_of(fire(api, ref, "refer", 2, data={"service": "DN"}), 422, "guard_failed")
    assert "reason" in err["fields"] and "CRT" in err["fields"]["reason"]
    err = error_of(fire(api, ref, "refer", 2, data={"service": "DN"}, reason="   "), 422, "guard_failed")
    assert "reason" in err["fields"]
    # A different route kind is an override too.
    err = error_of(fire(api, ref, "tier3_review", 2), 422, "guard_failed")
    assert "reason" in err["fields"]
    call = get_call(api, ref)
    assert (call["state"], call["version"], call["referrals"]) == ("in_triage", 2, [])
    assert row_counts(svc) == before


def test_refer_needs_a_known_service(api):
    ref = in_triage(api)
    err = error_of(fire(api, ref, "refer", 2, reason="x"), 422, "guard_failed")
    assert "data.service" in err["fields"]
    err = error_of(fire(api, ref, "refer", 2, data={"service": "NOPE"}, reason="x"), 422, "guard_failed")
    assert "data.service" in err["fields"]


@pytest.mark.parametrize("trigger,data,field", [
    ("refer", {"service": ["CRT"]}, "data.service"),
    ("refer", {"service": {"code": "CRT"}}, "data.service"),
    ("transfer", {"centre": ["ASC"]}, "data.centre"),
    ("promise_callback", {"callback_at": ["2026-11-23T12:00:00Z"]}, "data.callback_at"),
    ("promise_callback", {"callback_at": 1795000000}, "data.callback_at"),
])
def test_malformed_trigger_data_is_422_not_500(api, trigger, data, field):
    ref = in_triage(api)
    err = error_of(fire(api, ref, trigger, 2, data=data, reason="x"), 422, "guard_failed")
    assert field in err["fields"]
    assert get_call(api, ref)["version"] == 2


def test_override_with_reason_succeeds_and_is_audited(api):
    ref = in_triage(api)
    body = fire_ok(api, ref, "refer", 2, data={"service": "DN"}, reason="Known to the district nurses")
    assert body["state"] == "referred" and body["referrals"][0]["service"] == "DN"
    call = get_call(api, ref)
    assert call["route"]["overridden"] is True
    assert call["route"]["override_reason"] == "Known to the district nurses"
    assert call["route"]["service"] == "DN" and call["route"]["recommended"] == "refer to CRT"
    entry = next(h for h in call["history"] if h["entity"] == "call" and h["trigger"] == "refer")
    assert entry["data"]["override"] is True
    assert entry["reason"] == "Known to the district nurses"
    assert entry["data"]["service"] == "DN"


def test_accepting_the_recommendation_is_not_an_override(api):
    ref, _ = referred(api)
    call = get_call(api, ref)
    assert call["route"]["overridden"] is False and call["route"]["override_reason"] is None
    entry = next(h for h in call["history"] if h["entity"] == "call" and h["trigger"] == "refer")
    assert entry["data"]["override"] is False


def test_transfer_needs_a_reason(api):
    ref = log(api)["ref"]
    err = error_of(fire(api, ref, "transfer", 1, data={"centre": "ASC"}), 422, "guard_failed")
    assert "reason" in err["fields"]
    assert get_call(api, ref)["centre"] == "CNH"


def test_transfer_to_the_same_centre_is_refused(api):
    ref = log(api)["ref"]
    err = error_of(fire(api, ref, "transfer", 1, data={"centre": "CNH"}, reason="x"), 422, "guard_failed")
    assert "data.centre" in err["fields"]
    err = error_of(fire(api, ref, "transfer", 1, reason="x"), 422, "guard_failed")
    assert "data.centre" in err["fields"]
    err = error_of(fire(api, ref, "transfer", 1, data={"centre": "XYZ"}, reason="x"), 422, "guard_failed")
    assert "data.centre" in err["fields"]
    assert get_call(api, ref)["state"] == "logged"


def test_transfer_to_a_closed_centre_is_refused(api, clock):
    clock.set(SATURDAY_10)
    ref = log(api)["ref"]
    err = error_of(fire(api, ref, "transfer", 1, data={"centre": "FCP"}, reason="Wellbeing"),
                   422, "guard_failed")
    assert "closed" in err["fields"]["data.centre"]
    call = get_call(api, ref)
    assert (call["centre"], call["state"]) == ("CNH", "logged")
    # The same transfer on a weekday morning goes through.
    clock.set(MONDAY_10)
    body = fire_ok(api, ref, "transfer", 1, data={"centre": "FCP"}, reason="Wellbeing")
    assert body["state"] == "transferred"


def test_transfer_moves_the_call_and_it_is_triaged_there(api, clock):
    ref = in_triage(api)
    clock.advance(minutes=5)
    body = fire_ok(api, ref, "transfer", 2, data={"centre": "ASC"}, reason="Social care matter")
    assert (body["state"], body["version"]) == ("transferred", 3)
    call = get_call(api, ref)
    assert (call["centre"], call["origin_centre"]) == ("ASC", "CNH")
    assert datetime.fromisoformat(call["queued_at"]) == clock.now()
    entry = call["history"][-1]
    assert (entry["trigger"], entry["from"], entry["to"], entry["reason"]) == (
        "transfer", "in_triage", "transferred", "Social care matter")
    assert entry["data"]["centre"] == "ASC"
    queues = {c["code"]: c for c in api("GET", "/api/v1/queues").get_json()["centres"]}
    assert queues["ASC"]["counts"] == {"transferred": 1} and queues["CNH"]["total"] == 0
    body = fire_ok(api, ref, "start_triage", 3, as_="handler_asc")
    assert (body["state"], body["version"]) == ("in_triage", 4)


def test_promise_callback_in_the_past_is_refused(api, clock):
    ref = log(api)["ref"]
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    err = error_of(fire(api, ref, "promise_callback", 1, data={"callback_at": past}), 422, "guard_failed")
    assert "data.callback_at" in err["fields"]
    err = error_of(fire(api, ref, "promise_callback", 1, data={"callback_at": clock.now().isoformat()}),
                   422, "guard_failed")
    assert "data.callback_at" in err["fields"]
    naive = "2026-11-23T12:00:00"
    err = error_of(fire(api, ref, "promise_callback", 1, data={"callback_at": naive}), 422, "guard_failed")
    assert "data.callback_at" in err["fields"]
    assert get_call(api, ref)["callback_due"] is None


def test_promise_callback_then_call_back(api, clock):
    ref = log(api)["ref"]
    at = clock.now() + timedelta(hours=1)
    body = fire_ok(api, ref, "promise_callback", 1, data={"callback_at": at.isoformat()})
    assert body["state"] == "awaiting_callback"
    call = get_call(api, ref)
    assert datetime.fromisoformat(call["callback_due"]) == at
    assert set(call["allowed_triggers"]) == {"call_back", "cancel"}
    clock.set(at)
    body = fire_ok(api, ref, "call_back", 2)
    assert (body["state"], body["version"]) == ("in_triage", 3)
    assert get_call(api, ref)["callback_due"] is None


def test_cancel_needs_a_reason_and_records_it(api):
    ref = log(api)["ref"]
    err = error_of(fire(api, ref, "cancel", 1), 422, "guard_failed")
    assert "reason" in err["fields"]
    body = fire_ok(api, ref, "cancel", 1, reason="Caller called 999 themselves")
    assert (body["state"], body["version"]) == ("cancelled", 2)
    call = get_call(api, ref)
    assert call["closed_at"] is not None and call["allowed_triggers"] == []
    assert call["history"][-1]["reason"] == "Caller called 999 themselves"
    error_of(fire(api, ref, "start_triage", 2), 422, "trigger_not_allowed")


def test_divert_999_from_logged_for_an_emergency(api):
    ref = log(api, urgency="emergency")["ref"]
    assert fire_ok(api, ref, "divert_999", 1)["state"] == "diverted_999"
    assert fire_ok(api, ref, "close", 2)["state"] == "closed"
    call = get_call(api, ref)
    assert call["route"]["kind"] == "divert_999" and call["route"]["overridden"] is False


@pytest.mark.parametrize("internal", ["referral_declined", "referral_withdrawn", "referral_completed"])
def test_internal_triggers_are_refused(api, svc, internal):
    ref, _ = referred(api)
    before = row_counts(svc)
    err = error_of(fire(api, ref, internal, 3, reason="sneaky"), 422, "trigger_not_allowed")
    assert internal not in err["allowed"]
    assert get_call(api, ref)["state"] == "referred"
    assert row_counts(svc) == before


# -- referral events ------------------------------------------------------------------------------

def test_the_receiving_services_triggers_are_refused_to_the_referrer_through_the_api(api, svc):
    """Accept, decline, start and complete are the receiving service's (its professionals act on their own
    page or by SMS): a handler's API call is refused with 403 and stores nothing, as on the call page."""
    ref, rid = referred(api)
    before = row_counts(svc)
    for trigger, reason in (("accept", None), ("decline", "No capacity"), ("start", None), ("complete", None)):
        err = error_of(fire_referral(api, ref, rid, trigger, 1, reason=reason), 403, "forbidden")
        assert "receiving service" in err["message"] and "CRT" in err["message"]
    assert row_counts(svc) == before
    assert get_call(api, ref)["referrals"][0]["state"] == "sent"


def test_the_services_accept_start_complete_close_the_call_as_the_api_shows(api, svc):
    ref, rid = referred(api)
    fire_as_service(svc, ref, rid, "accept")
    call = get_call(api, ref)
    assert (call["state"], call["referrals"][0]["state"], call["referrals"][0]["version"]) == \
        ("referred", "accepted", 2)
    fire_as_service(svc, ref, rid, "start")
    fire_as_service(svc, ref, rid, "complete")
    call = get_call(api, ref)
    assert call["referrals"][0]["state"] == "completed"
    assert (call["state"], call["version"]) == ("closed", 4)
    assert call["closed_at"] is not None
    assert call["history"][-1]["trigger"] == "referral_completed"


def test_a_decline_needs_a_reason_and_returns_the_call_to_triage_for_rerouting_through_the_api(api, svc):
    ref, rid = referred(api)
    with pytest.raises(GuardFailed) as exc:
        fire_as_service(svc, ref, rid, "decline")
    assert "reason" in exc.value.errors
    assert get_call(api, ref)["referrals"][0]["state"] == "sent"
    fire_as_service(svc, ref, rid, "decline", reason="No capacity this afternoon")
    call = get_call(api, ref)
    assert call["referrals"][0]["state"] == "declined"
    assert call["state"] == "in_triage" and call["version"] == 4
    assert call["referrals"][0]["outcome_reason"] == "No capacity this afternoon"
    assert "refer" in call["allowed_triggers"]
    # Re-route to another service: a second referral, the first stays declined.
    body = fire_ok(api, ref, "refer", 4, data={"service": "DN"}, reason="CRT declined")
    assert body["state"] == "referred"
    assert [(r["service"], r["state"]) for r in body["referrals"]] == [("CRT", "declined"), ("DN", "sent")]


def test_referral_withdraw(api, svc):
    ref, rid = referred(api)
    fire_as_service(svc, ref, rid, "accept")
    body = fire_referral(api, ref, rid, "withdraw", 2, reason="Family now caring").get_json()
    assert body["referral"]["state"] == "withdrawn" and body["state"] == "in_triage"


def test_referral_trigger_not_allowed(api):
    ref, rid = referred(api)
    assert fire_referral(api, ref, rid, "withdraw", 1, reason="Family now caring").status_code == 200
    err = error_of(fire_referral(api, ref, rid, "withdraw", 2, reason="Again"), 422, "trigger_not_allowed")
    assert err["allowed"] == []


def test_unknown_referral_is_404(api):
    ref, _ = referred(api)
    error_of(fire_referral(api, ref, "nope", "withdraw", 1), 404, "not_found")
    error_of(fire_referral(api, "ZZZZ-ZZZZ", "nope", "withdraw", 1), 404, "not_found")


def test_stale_referral_version_is_409(api, svc):
    ref, rid = referred(api)
    fire_as_service(svc, ref, rid, "accept")
    err = error_of(fire_referral(api, ref, rid, "withdraw", 1, reason="x"), 409, "version_conflict")
    assert err["current_version"] == 2
    assert get_call(api, ref)["referrals"][0]["state"] == "accepted"


# -- time-dependent routing -----------------------------------------------------------------------

@pytest.mark.parametrize("at,service", [
    (datetime(2026, 11, 23, 19, 59, tzinfo=UTC), "CRT"),   # 19:59 GMT
    (datetime(2026, 11, 23, 20, 0, tzinfo=UTC), "OOHV"),   # 20:00 GMT
    (datetime(2026, 11, 24, 7, 59, tzinfo=UTC), "OOHV"),   # 07:59 GMT
    (datetime(2026, 11, 24, 8, 0, tzinfo=UTC), "CRT"),     # 08:00 GMT
    (datetime(2026, 7, 1, 18, 59, tzinfo=UTC), "CRT"),     # 19:59 BST
    (datetime(2026, 7, 1, 19, 30, tzinfo=UTC), "OOHV"),    # 20:30 BST
    (datetime(2026, 7, 1, 7, 30, tzinfo=UTC), "CRT"),      # 08:30 BST
], ids=["1959-gmt", "2000-gmt", "0759-gmt", "0800-gmt", "1959-bst", "2030-bst", "0830-bst"])
def test_urgent_community_health_routes_by_london_time(api, clock, at, service):
    clock.set(at)
    route = log(api)["recommended_route"]
    assert (route["tier"], route["service"], route["rule"]) == (2, service, "5" if service == "CRT" else "6")


def test_recommendation_is_recomputed_when_the_route_is_chosen(api, clock):
    clock.set(datetime(2026, 11, 23, 19, 50, tzinfo=UTC))
    ref = in_triage(api)
    clock.set(datetime(2026, 11, 23, 20, 5, tzinfo=UTC))
    # By now the table says OOHV: referring to CRT is an override needing a reason.
    err = error_of(fire(api, ref, "refer", 2, data={"service": "CRT"}), 422, "guard_failed")
    assert "OOHV" in err["fields"]["reason"]
    assert fire_ok(api, ref, "refer", 2, data={"service": "OOHV"})["state"] == "referred"


# -- GET /queues ----------------------------------------------------------------------------------

def test_queues_list_every_centre_and_service(api):
    body = api("GET", "/api/v1/queues").get_json()
    assert {c["code"] for c in body["centres"]} == CENTRES and len(body["centres"]) == 7
    assert {s["code"] for s in body["services"]} == SERVICES and len(body["services"]) == 12
    for entry in body["centres"] + body["services"]:
        assert entry["counts"] == {} and entry["total"] == 0 and entry["oldest_wait_seconds"] is None
        assert isinstance(entry["open_now"], bool)


def test_queues_count_by_state_and_oldest_wait(api, svc, clock):
    first = log(api)["ref"]
    clock.advance(minutes=10)
    second = log(api, query="?allow_duplicate=true")["ref"]
    fire_ok(api, second, "start_triage", 1)
    clock.advance(minutes=5)
    call_service.log_call(svc, call_service.Actor("handler.mha", "handler", "MHA"),
                          call_payload(centre="MHA", need="mental_health"), allow_duplicate=True)
    fire_ok(api, first, "start_triage", 1)
    fire_ok(api, first, "refer", 2, data={"service": "CRT"})
    clock.advance(minutes=20)

    body = api("GET", "/api/v1/queues").get_json()
    centres = {c["code"]: c for c in body["centres"]}
    services = {s["code"]: s for s in body["services"]}
    assert centres["CNH"]["counts"] == {"referred": 1, "in_triage": 1}
    assert centres["CNH"]["total"] == 2
    # "referred" is not a waiting state: the oldest wait is the call in triage, logged 25 min ago.
    assert centres["CNH"]["oldest_wait_seconds"] == 25 * 60
    assert centres["MHA"]["counts"] == {"logged": 1} and centres["MHA"]["oldest_wait_seconds"] == 20 * 60
    assert services["CRT"]["counts"] == {"sent": 1} and services["CRT"]["oldest_wait_seconds"] == 20 * 60
    assert centres["ASC"]["total"] == 0 and services["DN"]["total"] == 0

    clock.advance(hours=1)
    body = api("GET", "/api/v1/queues").get_json()
    centres = {c["code"]: c for c in body["centres"]}
    assert centres["CNH"]["oldest_wait_seconds"] == 85 * 60
    assert datetime.fromisoformat(body["generated_at"]) == clock.now()


def test_queues_drop_closed_calls_and_show_opening(api, clock):
    ref = log(api)["ref"]
    fire_ok(api, ref, "cancel", 1, reason="wrong number")
    clock.set(SATURDAY_10)
    body = api("GET", "/api/v1/queues").get_json()
    centres = {c["code"]: c for c in body["centres"]}
    assert centres["CNH"]["total"] == 0
    assert centres["CNH"]["open_now"] is True and centres["FCP"]["open_now"] is False
    assert centres["EDT"]["open_now"] is True and centres["ASC"]["open_now"] is False


def test_queues_need_a_token_and_a_role(api, client):
    error_of(client.get("/api/v1/queues"), 401, "unauthorised")
    error_of(api("GET", "/api/v1/queues", as_="professional"), 403, "forbidden")


# -- POST /routing/decide -------------------------------------------------------------------------

def decide(api, **body):
    body.setdefault("at", MONDAY_10.isoformat())
    return api("POST", "/api/v1/routing/decide", body)


@pytest.mark.parametrize("body,expected", [
    ({"need": "mental_health", "urgency": "emergency"},
     {"tier": 1, "outcome": "divert_999", "service": None, "rule": "1"}),
    ({"need": "information_advice", "urgency": "routine"},
     {"tier": 1, "outcome": "resolved_at_first_contact", "service": None, "rule": "2"}),
    ({"need": "long_term_condition", "urgency": "routine", "postcode": "NG1 1AA"},
     {"tier": 3, "service": None, "outcome": None, "rule": "out_of_area", "out_of_area": True}),
    ({"need": "long_term_condition", "urgency": "routine"},
     {"tier": 3, "service": None, "outcome": None, "locality": None, "out_of_area": False}),
    ({"need": "long_term_condition", "urgency": "routine", "postcode": "le113ab"},
     {"tier": 2, "service": "ILT", "locality": "Charnwood", "rule": "15"}),
    ({"need": "safeguarding_concern", "urgency": "urgent", "postcode": "LE15 6AB"},
     {"tier": 2, "service": "SG", "alert_supervisor": True, "locality": "Rutland"}),
    ({"need": "safeguarding_concern", "urgency": "urgent", "at": SATURDAY_10.isoformat()},
     {"tier": 2, "service": "EDT", "rule": "10", "alert_supervisor": True}),
    ({"need": "social_care_assessment", "urgency": "routine", "at": SATURDAY_10.isoformat()},
     {"tier": 2, "service": "SCA", "rule": "13"}),
    ({"need": "other", "urgency": "urgent"}, {"tier": 3, "service": None, "rule": "18"}),
], ids=["divert-999", "info-advice", "out-of-area", "ilt-no-postcode", "ilt-charnwood", "sg-open",
        "sg-closed", "sca-routine-weekend", "other"])
def test_routing_decide(api, svc, body, expected):
    resp = decide(api, **body)
    assert resp.status_code == 200, resp.get_json()
    got = resp.get_json()
    assert {k: got[k] for k in expected} == expected
    assert got["reason"]
    assert row_counts(svc) == {"calls": 0, "referrals": 0, "audit_events": 0, "outbox": 0}


def test_routing_decide_gives_next_open_for_a_closed_service(api):
    got = decide(api, need="social_care_assessment", urgency="routine",
                 at=SATURDAY_10.isoformat()).get_json()
    assert datetime.fromisoformat(got["next_open"]) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("body,field", [
    ({"need": "housing", "urgency": "routine", "at": "2026-11-23T10:00:00"}, "at"),
    ({"need": "housing", "urgency": "routine", "at": "yesterday"}, "at"),
    ({"need": "astrology", "urgency": "routine"}, "need"),
    ({"need": "housing", "urgency": "soon"}, "urgency"),
    ({"need": "housing", "urgency": "routine", "postcode": "LE1"}, "postcode"),
    ({"need": "housing", "urgency": "routine", "centre": "XYZ"}, "centre"),
    ({"need": "housing", "urgency": "routine", "extra": 1}, "extra"),
], ids=["naive-at", "bad-at", "unknown-need", "bad-urgency", "bad-postcode", "bad-centre", "extra"])
def test_routing_decide_invalid_is_422(api, svc, body, field):
    err = error_of(decide(api, **body), 422, "invalid")
    assert field in err["fields"]
    assert row_counts(svc)["calls"] == 0


def test_routing_decide_needs_a_token_and_a_role(api, client):
    body = {"need": "housing", "urgency": "routine", "at": MONDAY_10.isoformat()}
    error_of(client.post("/api/v1/routing/decide", json=body), 401, "unauthorised")
    error_of(api("POST", "/api/v1/routing/decide", body, as_="professional"), 403, "forbidden")


# -- OpenAPI and probes ---------------------------------------------------------------------------

def test_openapi_document(api, client):
    error_of(client.get("/api/v1/openapi.json"), 401, "unauthorised")
    resp = api("GET", "/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    paths = {"/calls", "/calls/{ref}", "/calls/{ref}/events", "/queues", "/routing/decide",
             "/calls/{ref}/referrals/{referral_id}/reroute", "/calls/{ref}/consent",
             "/calls/{ref}/break-glass", "/calls/{ref}/access-log"}
    assert paths <= set(doc["paths"])
    assert "post" in doc["paths"]["/calls"] and "get" in doc["paths"]["/calls/{ref}"]
    schemas = doc["components"]["schemas"]
    assert {"LogCall", "FireTrigger", "DecideRoute", "RerouteReferral", "Clock", "Call"} <= set(schemas)
    log_fields = {"centre", "caller", "subject", "need", "urgency", "summary", "consent"}
    assert log_fields <= set(schemas["LogCall"]["properties"])
    assert "consent" in schemas["LogCall"]["required"]
    assert {"RecordConsent", "ConsentOverride", "BreakGlass", "AccessLog"} <= set(schemas)
    assert "expected_version" in schemas["FireTrigger"]["required"]
    # Every $ref points at a schema the document defines.
    refs = {r.rsplit("/", 1)[1] for r in _refs(doc)}
    assert refs <= set(schemas), refs - set(schemas)


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_health_probes_need_no_sign_in(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "ready"
    assert set(resp.get_json()["checks"].values()) == {"ok"}
