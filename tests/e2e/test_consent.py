"""Consent to share, end to end: the API (refer refused naming consent with nothing stored, the override,
malformed overrides, recording a change of consent, re-routing), the call page and its forms, the
professional's page, reports by sharing basis and the OpenAPI document."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import update

from ipoa.adapters import orm
from ipoa.domain.reporting.period import Period, Scope
from ipoa.service import report_export
from ipoa.service import reports as report_service
from ipoa.service.professionals import link_user
from tests.conftest import DEFAULT_NOW, call_payload, sign_in
from tests.helpers.api import error_of, fire, fire_ok, get_call, log, row_counts
from tests.helpers.clocks import reroute
from tests.helpers.rota import add_on_duty
from tests.helpers.web import block, error_text, form_for, load, post_event, signed_in, tables, text

SAFEGUARDING = {"basis": "safeguarding", "reason": "Unexplained bruising; she is frightened of her carer"}


def triaged(api, consent="refused", **overrides) -> str:
    """A CNH call (urgent community health by day: CRT recommended) in triage at version 2."""
    ref = log(api, consent=consent, **overrides)["ref"]
    fire_ok(api, ref, "start_triage", 1)
    return ref


def history(api, ref: str, **match) -> list[dict]:
    return [e for e in get_call(api, ref)["history"] if all(e[k] == v for k, v in match.items())]


# -- refer: the API ---------------------------------------------------------------------------------

@pytest.mark.parametrize("consent", ["refused", "not_asked"])
def test_refer_to_another_organisation_without_consent_is_422_naming_consent_and_stores_nothing(api, svc, consent):
    ref = triaged(api, consent)
    before = row_counts(svc)
    err = error_of(fire(api, ref, "refer", 2, data={"service": "CRT"}), 422, "guard_failed")
    message = err["fields"]["consent"]
    assert "Clinical Response Team is run by Community NHS trust, not Integrated urgent care provider" in message
    assert ("refused consent" if consent == "refused" else "not been asked") in message
    assert "lawful basis" in message
    assert row_counts(svc) == before
    call = get_call(api, ref)
    assert (call["state"], call["version"], call["referrals"]) == ("in_triage", 2, [])


def test_a_call_logged_before_consent_existed_is_treated_as_not_asked(api, svc):
    ref = triaged(api, "given")
    with svc.uow() as uow:
        uow.session.execute(update(orm.calls).where(orm.calls.c.ref == ref).values(
            consent=None, consent_recorded_by=None, consent_recorded_at=None))
        uow.commit()
    err = error_of(fire(api, ref, "refer", 2, data={"service": "CRT"}), 422, "guard_failed")
    assert "not been asked" in err["fields"]["consent"]
    assert get_call(api, ref)["consent"] is None
    body = fire_ok(api, ref, "refer", 2, data={"service": "CRT", "consent_override": {
        "basis": "vital_interests", "reason": "Unconscious on the floor"}})
    assert body["referrals"][0]["sharing_basis"] == "vital_interests"
    (event,) = history(api, ref, entity="referral", trigger="refer")
    assert event["data"]["sharing"] == {"basis": "vital_interests", "override": True, "consent": "not_asked",
                                        "reason": "Unconscious on the floor"}


def test_the_override_lets_the_referral_go_and_is_recorded(api, svc):
    ref = triaged(api)
    body = fire_ok(api, ref, "refer", 2, data={"service": "CRT", "consent_override": SAFEGUARDING})
    assert body["state"] == "referred"
    assert body["referrals"][0]["sharing_basis"] == "safeguarding"
    call = get_call(api, ref)
    (referral,) = call["referrals"]
    assert (referral["sharing_basis"], referral["sharing_reason"]) == ("safeguarding", SAFEGUARDING["reason"])
    assert call["consent"] == "refused" and call["consent_recorded_by"] == "handler"
    assert call["consent_recorded_at"] == DEFAULT_NOW.isoformat()
    (call_event,) = history(api, ref, entity="call", trigger="refer")
    assert call_event["data"]["consent_override"] == SAFEGUARDING
    (referral_event,) = history(api, ref, entity="referral", trigger="refer")
    assert referral_event["data"]["sharing"] == {"basis": "safeguarding", "override": True, "consent": "refused",
                                                 "reason": SAFEGUARDING["reason"]}


@pytest.mark.parametrize("consent, service, basis, reason", [
    ("given", "CRT", "consent_given", None),
    ("lacks_capacity_best_interests", "CRT", "lacks_capacity_best_interests", None),
    ("refused", "OOHV", "same_organisation", "Known to the out-of-hours team"),  # IUC runs CNH and OOHV
])
def test_the_basis_recorded_without_an_override(api, svc, consent, service, basis, reason):
    ref = triaged(api, consent)
    body = fire_ok(api, ref, "refer", 2, data={"service": service}, reason=reason)
    assert body["referrals"][0]["sharing_basis"] == basis
    (event,) = history(api, ref, entity="referral", trigger="refer")
    assert event["data"]["sharing"] == {"basis": basis, "override": False, "consent": consent}
    assert "consent_override" not in history(api, ref, entity="call", trigger="refer")[0]["data"]


def test_within_the_county_council_a_refusal_needs_no_consent_step(api, svc):
    ref = log(api, as_="handler_asc", centre="ASC", need="social_care_assessment", urgency="routine",
              consent="refused")["ref"]
    fire_ok(api, ref, "start_triage", 1, as_="handler_asc")
    body = fire_ok(api, ref, "refer", 2, data={"service": "SCA"}, as_="handler_asc")
    assert body["referrals"][0]["sharing_basis"] == "same_organisation"


@pytest.mark.parametrize("override, field", [
    (["safeguarding", "reason"], "data.consent_override"),
    (3, "data.consent_override"),
    ("safeguarding", "data.consent_override"),
    ({"basis": "gut_feeling", "reason": "x"}, "data.consent_override.basis"),
    ({"basis": {"nested": 1}, "reason": "x"}, "data.consent_override.basis"),
    ({"basis": "safeguarding"}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": ""}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": ["x"]}, "data.consent_override.reason"),
    ({"basis": "safeguarding", "reason": "x" * 2001}, "data.consent_override.reason"),
], ids=["list", "number", "text", "unknown-basis", "object-basis", "no-reason", "blank-reason", "list-reason",
        "long-reason"])
def test_a_malformed_override_is_422_not_500(api, svc, override, field):
    ref = triaged(api)
    before = row_counts(svc)
    err = error_of(fire(api, ref, "refer", 2, data={"service": "CRT", "consent_override": override}),
                   422, "guard_failed")
    assert field in err["fields"]
    assert row_counts(svc) == before


def test_a_malformed_override_is_refused_even_when_consent_makes_it_unneeded(api, svc):
    ref = triaged(api, "given")
    err = error_of(fire(api, ref, "refer", 2, data={"service": "CRT", "consent_override": 1}), 422, "guard_failed")
    assert set(err["fields"]) == {"data.consent_override"}


# -- a change of consent: the API -------------------------------------------------------------------

def post_consent(api, ref, body, as_="handler"):
    return api("POST", f"/api/v1/calls/{ref}/consent", body, as_=as_)


def test_recording_a_change_of_consent_bumps_the_version_and_is_audited(api, svc, clock):
    ref = triaged(api)
    clock.advance(minutes=5)
    resp = post_consent(api, ref, {"consent": "given", "expected_version": 2, "reason": "Asked again on the phone"},
                        as_="supervisor")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body == {"ref": ref, "state": "in_triage", "version": 3, "consent": "given",
                    "consent_recorded_by": "supervisor", "consent_recorded_at": clock.now().isoformat()}
    (event,) = history(api, ref, trigger="record_consent")
    assert (event["entity"], event["entity_id"], event["from"], event["to"], event["actor"]) == (
        "call", ref, "in_triage", "in_triage", "supervisor")
    assert event["data"] == {"from": "refused", "to": "given"}
    assert event["reason"] == "Asked again on the phone"
    # From now on the consent is the basis.
    assert fire_ok(api, ref, "refer", 3, data={"service": "CRT"})["referrals"][0]["sharing_basis"] == "consent_given"


def test_a_stale_consent_change_is_409_and_changes_nothing(api, svc):
    ref = triaged(api)
    before = row_counts(svc)
    err = error_of(post_consent(api, ref, {"consent": "given", "expected_version": 1}), 409, "version_conflict")
    assert err["current_version"] == 2
    assert row_counts(svc) == before and get_call(api, ref)["consent"] == "refused"


@pytest.mark.parametrize("body, field", [
    ({"consent": "maybe", "expected_version": 2}, "consent"),
    ({"consent": ["given"], "expected_version": 2}, "consent"),
    ({"expected_version": 2}, "consent"),
    ({"consent": "given"}, "expected_version"),
    ({"consent": "given", "expected_version": "2"}, "expected_version"),
    ({"consent": "refused", "expected_version": 2}, "consent"),  # already recorded
    ({"consent": "given", "expected_version": 2, "reason": "x" * 2001}, "reason"),
    ({"consent": "given", "expected_version": 2, "colour": "red"}, "colour"),
])
def test_an_invalid_consent_change_is_422(api, svc, body, field):
    ref = triaged(api)
    before = row_counts(svc)
    err = error_of(post_consent(api, ref, body), 422, "invalid")
    assert field in err["fields"]
    assert "maybe" not in err["fields"][field]  # never echoes what was sent
    assert row_counts(svc) == before


def test_a_consent_change_needs_a_relationship_a_role_a_call_and_json(api, svc, client, tokens):
    ref = triaged(api)
    body = {"consent": "given", "expected_version": 2}
    error_of(post_consent(api, ref, body, as_="handler_asc"), 403, "outside_relationship")
    error_of(post_consent(api, ref, body, as_="professional"), 403, "forbidden")
    error_of(post_consent(api, "ZZZZ-ZZZZ", body), 404, "not_found")
    resp = client.post(f"/api/v1/calls/{ref}/consent", data="given", content_type="text/plain",
                       headers={"Authorization": f"Bearer {tokens['handler']}"})
    error_of(resp, 400, "bad_request")
    assert get_call(api, ref)["version"] == 2


# -- re-route across organisations: the API ---------------------------------------------------------

def referred_within_the_hub(api) -> tuple[str, str]:
    """A refused-consent CNH call referred to OOHV (the hub's own organisation): needs no basis."""
    ref = triaged(api)
    body = fire_ok(api, ref, "refer", 2, data={"service": "OOHV"}, reason="Known to the out-of-hours team")
    return ref, body["referrals"][0]["id"]


def test_a_supervisor_reroutes_across_organisations_only_with_a_lawful_basis(api, svc):
    ref, rid = referred_within_the_hub(api)
    before = row_counts(svc)
    body = {"service": "DN", "reason": "OOHV full", "expected_version": 1}
    err = error_of(reroute(api, ref, rid, body), 422, "guard_failed")
    assert "Community (district) nursing is run by Community NHS trust" in err["fields"]["consent"]
    assert row_counts(svc) == before
    assert [r["state"] for r in get_call(api, ref)["referrals"]] == ["sent"]

    bad = error_of(reroute(api, ref, rid, {**body, "consent_override": [1]}), 422, "invalid")
    assert set(bad["fields"]) == {"consent_override"}
    bad = error_of(reroute(api, ref, rid, {**body, "consent_override": {"basis": "x"}}), 422, "invalid")
    assert set(bad["fields"]) == {"consent_override.basis", "consent_override.reason"}
    assert row_counts(svc) == before

    resp = reroute(api, ref, rid, {**body, "consent_override": SAFEGUARDING})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["referral"]["sharing_basis"] == "safeguarding"
    new = get_call(api, ref)["referrals"][1]
    assert (new["service"], new["sharing_basis"], new["sharing_reason"]) == ("DN", "safeguarding",
                                                                            SAFEGUARDING["reason"])


# -- OpenAPI ------------------------------------------------------------------------------------------

def test_openapi_documents_consent_the_override_break_glass_and_the_access_log(api):
    doc = api("GET", "/api/v1/openapi.json").get_json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    log_call = schemas["LogCall"]
    assert "consent" in log_call["required"]
    assert set(log_call["properties"]["consent"]["enum"]) == {"given", "refused", "not_asked",
                                                              "lacks_capacity_best_interests"}
    assert "other organisations" in log_call["properties"]["consent"]["description"]
    data = schemas["FireTrigger"]["properties"]["data"]
    assert "consent_override" in data["description"]
    assert data["properties"]["consent_override"] == {"$ref": "#/components/schemas/ConsentOverride"}
    override = schemas["ConsentOverride"]
    assert override["required"] == ["basis", "reason"]
    assert override["properties"]["basis"]["enum"] == ["vital_interests", "safeguarding", "legal_duty"]
    assert "consent_override" in schemas["RerouteReferral"]["properties"]
    assert "'consent'" in paths["/calls/{ref}/events"]["post"]["description"]

    consent = paths["/calls/{ref}/consent"]["post"]
    assert consent["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecordConsent"}
    assert set(schemas["RecordConsent"]["required"]) == {"consent", "expected_version"}
    assert {"200", "400", "403", "404", "409", "422"} <= set(consent["responses"])

    glass = paths["/calls/{ref}/break-glass"]["post"]
    assert {"201", "403", "404", "422"} <= set(glass["responses"])
    assert set(schemas["BreakGlass"]["properties"]["reason"]["enum"]) == {
        "immediate_risk_to_life", "safeguarding_concern", "transfer_in_progress",
        "continuity_of_care_out_of_hours", "other"}
    assert set(schemas["BreakGlassGranted"]["required"]) == {"ref", "grant_id", "reason", "expires_at"}

    access_log = paths["/calls/{ref}/access-log"]["get"]
    assert "outside_relationship" in access_log["description"]
    view = schemas["AccessLog"]["properties"]["views"]["items"]["properties"]
    assert set(view) == {"at", "username", "name", "role", "centre", "route", "why", "referral_id"}

    read = paths["/calls/{ref}"]["get"]
    assert "outside_relationship" in read["responses"]["403"]["description"]
    assert "break_glass" in schemas["Error"]["properties"]["error"]["properties"]
    assert {"consent", "consent_recorded_by", "consent_recorded_at"} <= set(schemas["Call"]["properties"])


# -- the call page ------------------------------------------------------------------------------------

def page_of(client, ref: str) -> str:
    resp = client.get(f"/calls/{ref}")
    assert resp.status_code == 200
    return text(resp)


def test_the_call_page_shows_consent_and_says_a_refusal_is_respected(client, users, api, svc):
    refused_ref = triaged(api)
    given_ref = triaged(api, "given", subject={"nhs_number": None})
    signed_in(client)
    page = page_of(client, refused_ref)
    assert "Consent refused, recorded by Handler (handler, CNH) Mon 23 Nov 2026 10:00" in block(
        page, 'id="consent-status"', "<dd")
    notice = block(page, 'id="consent-notice"', "<section")
    assert "The person refused consent to share their details" in notice
    assert "Referrals to services run by Integrated urgent care provider need no consent step" in notice
    assert "needs a lawful basis" in notice and "their refusal is respected" in notice
    # The recommended CRT is another organisation's: the accept form carries the optional basis.
    accept = form_for(page, 'id="accept-route"')
    assert 'name="consent_basis"' in accept and 'name="consent_reason"' in accept
    assert '<label class="nhsuk-label" for="accept-consent-basis">Lawful basis</label>' in accept
    override = form_for(page, 'id="override-route"')
    assert "Refer to DN – Community (district) nursing (another organisation: needs a lawful basis)" in override
    assert "Refer to OOHV – Out-of-hours home visiting (closed now)</option>" in override  # its own organisation
    assert 'id="override-consent-basis"' in override

    page = page_of(client, given_ref)
    assert 'id="consent-notice"' not in page and 'name="consent_basis"' not in page
    assert "Consent given to share" in block(page, 'id="consent-status"', "<dd")


def test_accepting_a_cross_organisation_referral_without_a_basis_shows_the_error_beside_the_fields(
        client, users, api, svc):
    ref = triaged(api)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, trigger="refer", service="CRT")
    assert resp.status_code == 422
    page = text(resp)
    accept = form_for(page, 'id="accept-route"')
    assert '<details class="lawful-basis" id="accept-lawful-basis" open>' in accept
    error = block(accept, 'id="accept-consent-error"', "<p")
    assert "Clinical Response Team is run by Community NHS trust" in error
    assert 'aria-invalid="true" aria-describedby="accept-lawful-basis-hint accept-consent-error"' in accept
    assert 'id="override-consent-error"' not in page  # only beside the form that was sent
    assert load(svc, ref).state == "in_triage"

    resp = post_event(client, token, ref, 2, trigger="refer", service="CRT", consent_basis="safeguarding",
                      consent_reason="")
    assert resp.status_code == 422
    accept = form_for(text(resp), 'id="accept-route"')
    assert "Enter the reason for sharing without consent" in error_text(accept, "accept-consent-reason")
    assert '<option value="safeguarding" selected>' in accept  # what was chosen is kept

    resp = post_event(client, token, ref, 2, trigger="refer", service="CRT", consent_basis="safeguarding",
                      consent_reason=SAFEGUARDING["reason"])
    assert resp.status_code == 302
    referral = load(svc, ref).referrals[0]
    assert (referral.service, referral.sharing_basis, referral.sharing_reason) == (
        "CRT", "safeguarding", SAFEGUARDING["reason"])
    history = tables(page_of(client, ref))[-1]
    assert any(row[2].startswith("call refer (CRT), shared without consent: Safeguarding") for row in history)
    assert any(row[2] == "referral refer (CRT), shared on: Safeguarding: Care Act 2014 section 42 duty"
               for row in history)


def test_choosing_another_route_across_organisations_shows_errors_in_that_form(client, users, api, svc):
    ref = triaged(api)
    token = signed_in(client)
    resp = post_event(client, token, ref, 2, route_choice="refer:DN", reason="Known to district nurses",
                      consent_basis="because", consent_reason="x")
    assert resp.status_code == 422
    page = text(resp)
    override = form_for(page, 'id="override-route"')
    assert "Select the lawful basis for sharing without consent" in error_text(override, "override-consent-basis")
    assert 'id="accept-consent-basis-error"' not in page
    assert "Known to district nurses" in override
    resp = post_event(client, token, ref, 2, route_choice="refer:DN", reason="Known to district nurses",
                      consent_basis="vital_interests", consent_reason="Not eating or drinking")
    assert resp.status_code == 302
    assert load(svc, ref).referrals[0].sharing_basis == "vital_interests"


def test_recording_a_change_of_consent_from_the_call_page(client, users, api, svc):
    ref = triaged(api)
    token = signed_in(client)
    page = page_of(client, ref)
    form = form_for(page, 'id="record-consent"')
    assert f'action="/calls/{ref}/consent"' in form and '<option value="refused" selected>' in form
    url = f"/calls/{ref}/consent"
    assert client.post(url, data={"consent": "given", "expected_version": "2"}).status_code == 400  # no CSRF

    resp = client.post(url, data={"csrf_token": token, "consent": "refused", "expected_version": "2"})
    assert resp.status_code == 422
    form = form_for(text(resp), 'id="record-consent"')
    assert "Consent is already recorded as" in error_text(form, "consent-change-consent")
    assert '<details class="consent-change" id="consent-change" open>' in text(resp)

    assert client.post(url, data={"csrf_token": token, "consent": "given", "expected_version": "1"}).status_code == 409
    resp = client.post(url, data={"csrf_token": token, "consent": "given", "expected_version": "2",
                                  "consent_note": "Asked again once her daughter arrived"})
    assert resp.status_code == 302
    call = load(svc, ref)
    assert (call.consent, call.consent_recorded_by, call.version) == ("given", "handler", 3)
    page = page_of(client, ref)
    assert 'id="consent-notice"' not in page
    row = next(r for r in tables(page)[-1] if r[2].startswith("call record consent"))
    assert row[2] == "call record consent: Consent refused → Consent given to share"
    assert row[4] == "Asked again once her daughter arrived"


def test_no_consent_form_for_a_user_who_may_only_see_the_call(client, users, api, svc):
    ref = log(api, consent="refused")["ref"]
    fire_ok(api, ref, "transfer", 1, data={"centre": "ASC"}, reason="Social care need")
    token = signed_in(client)  # the CNH handler: may see a call transferred away, not change it
    page = page_of(client, ref)
    assert 'id="consent-status"' in page and 'id="record-consent"' not in page
    resp = client.post(f"/calls/{ref}/consent", data={"csrf_token": token, "consent": "given",
                                                      "expected_version": "2"})
    assert resp.status_code == 403 and load(svc, ref).consent == "refused"


def test_the_supervisors_reroute_form_takes_a_lawful_basis(client, users, api, svc):
    ref, rid = referred_within_the_hub(api)
    token = signed_in(client, "supervisor")
    url = f"/calls/{ref}/referrals/{rid}/reroute"
    resp = client.post(url, data={"csrf_token": token, "service": "DN", "reason": "OOHV full",
                                  "expected_version": "1"})
    assert resp.status_code == 422
    form = form_for(text(resp), f'id="reroute-{rid}"')
    assert "Community (district) nursing is run by Community NHS trust" in error_text(form, f"{rid}-reroute-consent")
    resp = client.post(url, data={"csrf_token": token, "service": "DN", "reason": "OOHV full",
                                  "expected_version": "1", "consent_basis": "legal_duty", "consent_reason": ""})
    assert resp.status_code == 422
    form = form_for(text(resp), f'id="reroute-{rid}"')
    assert "Enter the reason for sharing without consent" in error_text(form, f"{rid}-reroute-consent-reason")
    assert '<option value="legal_duty" selected>' in form
    resp = client.post(url, data={"csrf_token": token, "service": "DN", "reason": "OOHV full",
                                  "expected_version": "1", "consent_basis": "legal_duty",
                                  "consent_reason": "Court of Protection order"})
    assert resp.status_code == 302
    assert [(r.service, r.sharing_basis) for r in load(svc, ref).referrals] == [
        ("OOHV", "same_organisation"), ("DN", "legal_duty")]


# -- the receiving professional's page ------------------------------------------------------------------

def test_the_professional_sees_the_consent_and_the_basis(client, users, api, svc):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    link_user(svc, "07700 900201", users["professional"].id)
    ref = triaged(api, need="community_nursing")
    rid = fire_ok(api, ref, "refer", 2, data={"service": "DN", "consent_override": SAFEGUARDING})["referrals"][0]["id"]
    sign_in(client, "professional")
    page = text(client.get(f"/my/referrals/{rid}"))
    # The handler who recorded it by name, role and centre (as the page names the referrer), not a username.
    assert "Consent refused, recorded by Handler (handler, CNH) Mon 23 Nov 2026" in block(
        page, 'id="consent-status"', "<dd")
    basis = block(page, 'id="sharing-basis"', "<dd")
    assert "Safeguarding: Care Act 2014 section 42 duty: “" + SAFEGUARDING["reason"] + "”" in basis


# -- reports --------------------------------------------------------------------------------------------

def test_reports_count_referrals_by_sharing_basis(client, users, api, svc):
    for consent, service, data_extra, reason in [
        ("given", "CRT", {}, None), ("given", "DN", {}, "Known to DN"),
        ("refused", "CRT", {"consent_override": SAFEGUARDING}, None),
        ("refused", "OOHV", {}, "Known to the out-of-hours team"),
    ]:
        ref = triaged(api, consent, subject={"nhs_number": None})
        fire_ok(api, ref, "refer", 2, data={"service": service, **data_extra}, reason=reason)
    report = report_service.build_report(svc, Period(DEFAULT_NOW.date(), DEFAULT_NOW.date()), Scope())
    counts = dict(report.shared_by_basis)
    assert list(counts) == ["same_organisation", "consent_given", "lacks_capacity_best_interests",
                            "vital_interests", "safeguarding", "legal_duty"]
    assert counts == {"same_organisation": 1, "consent_given": 2, "lacks_capacity_best_interests": 0,
                      "vital_interests": 0, "safeguarding": 1, "legal_duty": 0}
    one_service = report_service.build_report(svc, Period(DEFAULT_NOW.date(), DEFAULT_NOW.date()), Scope(service="CRT"))
    assert dict(one_service.shared_by_basis)["safeguarding"] == 1
    assert dict(one_service.shared_by_basis)["consent_given"] == 1

    signed_in(client, "supervisor")
    page = text(client.get("/reports/?from=2026-11-23&to=2026-11-23"))
    section = block(page, 'id="sharing-title"', "<section")
    rows = {row[0]: row[1] for row in tables(section)[0][1:]}
    assert rows["Consent given"] == "2" and rows["Safeguarding: Care Act 2014 section 42 duty"] == "1"
    assert rows["Same organisation: no consent step"] == "1" and rows["Legal duty"] == "0"
    measures = {row[0] for row in tables(page)[0][1:]}
    assert not any(m.startswith("Shared: ") for m in measures)  # in their own table, not twice

    body = client.get("/reports/export.csv?from=2026-11-23&to=2026-11-23").get_data(as_text=True)
    csv_rows = list(csv.reader(io.StringIO(body)))
    measures = {row[0]: row[1:] for row in csv_rows[csv_rows.index(["measure", "value", "detail"]) + 1:] if row}
    assert measures["Shared: Consent given"] == ["2", "consent_given"]
    assert measures["Shared: Safeguarding: Care Act 2014 section 42 duty"] == ["1", "safeguarding"]
    assert measures["Shared: Vital interests: risk to life or of serious harm"] == ["0", "vital_interests"]


def test_referrals_sent_before_the_basis_was_recorded_are_counted_apart(api, svc):
    ref = triaged(api, "given")
    fire_ok(api, ref, "refer", 2, data={"service": "CRT"})
    with svc.uow() as uow:
        uow.session.execute(update(orm.referrals).values(sharing_basis=None))
        uow.commit()
    report = report_service.build_report(svc, Period(DEFAULT_NOW.date(), DEFAULT_NOW.date()), Scope())
    assert dict(report.shared_by_basis)[None] == 1
    assert ("Shared: Not recorded (sent before the basis was recorded)", "1", "") in report_export.measure_rows(report)


def test_intake_without_consent_is_refused_on_the_api_and_the_form(api, client, users, svc):
    body = call_payload()
    del body["consent"]
    err = error_of(api("POST", "/api/v1/calls", body), 422, "invalid")
    assert "consent" in err["fields"]
    assert row_counts(svc)["calls"] == 0
