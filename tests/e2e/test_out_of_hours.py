"""A recommended service that is closed now (issue 12, item 10): the call page says when it opens and that a
referral sent now waits, and offers the routing table's out-of-hours alternative (workflows/routing.yaml,
out_of_hours) when one is open, referred to in one action without a typed reason: audited as such, consent
to share checked as for Accept, and a claim the table does not make now refused with 400, nothing stored."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ipoa.service import calls as call_service
from tests.helpers.api import error_of, fire, fire_ok, get_call, log, row_counts
from tests.helpers.web import actor_for, block, history_len, load, logged, signed_in, tables, text

THURSDAY_NIGHT = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)  # Thu 03 Dec, 22:00 UK time: ILT closed, OOHV open
SATURDAY_NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # ILT and OOHV both closed
THURSDAY_NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # ILT open
GENERATED = ("ILT closed now (opens Fri 04 Dec 08:00): the routing table's out-of-hours alternative, OOHV")


def words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" .", ".")


def notice(page: str) -> str:
    """The closed-service notice inside the recommendation, as words."""
    start = page.index(">", page.index('id="out-of-hours"')) + 1
    return words(page[start:page.index("</div>", start)])


def ltc_call(svc, clock, at: datetime, urgency: str = "urgent", centre: str = "CNH", **overrides) -> str:
    """A long-term condition call (row 15: ILT of the person's locality) in triage at version 2."""
    clock.set(at)
    ref = logged(svc, centre=centre, need="long_term_condition", urgency=urgency, **overrides)
    call_service.fire_call_trigger(svc, actor_for(centre), ref, {"trigger": "start_triage", "expected_version": 1})
    return ref


def post_out_of_hours(client, token: str, ref: str, version: int = 2, **fields):
    return client.post(f"/calls/{ref}/out-of-hours", data={
        "csrf_token": token, "expected_version": str(version), "trigger": "refer", "service": "OOHV", **fields})


# -- the call page --------------------------------------------------------------------------------------

def test_a_closed_ilt_at_night_says_when_it_opens_and_offers_oohv(client, users, svc, clock):
    ref = ltc_call(svc, clock, THURSDAY_NIGHT)
    token = signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    recommendation = block(page, 'id="out-of-hours"', '<div class="recommendation"')
    assert "Recommended: refer to ILT (Integrated Locality Team)" in recommendation
    assert notice(page) == ("Information: Integrated Locality Team is closed now. It opens Fri 4 Dec at 08:00. "
                            "A referral sent now waits until then. "
                            "Out of hours: Out-of-hours home visiting (OOHV) is open now.")
    # The notice comes after the heading and before "Why this route?"; the one-click form beside it.
    assert page.index("Recommended: refer to ILT") < page.index('id="out-of-hours"') < page.index("Why this route?")
    form = page[page.index('<form method="post" action="/calls/' + ref + '/out-of-hours"'):]
    form = form[:form.index("</form>")]
    assert 'name="service" value="OOHV"' in form and 'name="trigger" value="refer"' in form
    assert 'name="reason"' not in form  # no reason to type: the table sanctions it
    assert "Refer to Out-of-hours home visiting instead" in form
    assert "lawful-basis" not in form  # OOHV is run by the hub's own organisation
    assert "Accept: refer to ILT" in recommendation  # the recommendation itself is unchanged
    assert token


@pytest.mark.parametrize("urgency, at", [("routine", THURSDAY_NIGHT), ("urgent", SATURDAY_NOON)],
                         ids=["routine-waits", "oohv-closed-too"])
def test_a_closed_service_without_an_open_alternative_says_only_when_it_opens(client, users, svc, clock,
                                                                              urgency, at):
    ref = ltc_call(svc, clock, at, urgency)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    opens = "Fri 4 Dec at 08:00" if at == THURSDAY_NIGHT else "Mon 7 Dec at 08:00"
    assert notice(page) == (f"Information: Integrated Locality Team is closed now. It opens {opens}. "
                            "A referral sent now waits until then.")
    assert "Out of hours:" not in page and "/out-of-hours" not in page
    assert "Accept: refer to ILT" in page


def test_no_notice_while_the_recommended_service_is_open(client, users, svc, clock):
    ref = ltc_call(svc, clock, THURSDAY_NOON)
    signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    assert "Accept: refer to ILT" in page
    assert 'id="out-of-hours"' not in page and "is closed now" not in page


# -- the one-click alternative --------------------------------------------------------------------------

def test_refer_to_the_alternative_in_one_action_is_audited_without_a_typed_reason(client, users, svc, clock):
    ref = ltc_call(svc, clock, THURSDAY_NIGHT)
    token = signed_in(client)
    resp = post_out_of_hours(client, token, ref)
    assert resp.status_code == 302, text(resp)
    call = load(svc, ref)
    assert call.state == "referred" and [r.service for r in call.referrals] == ["OOHV"]
    assert call.route["service"] == "OOHV" and call.route["out_of_hours_alternative"] is True
    assert call.route["overridden"] is True and call.route["override_reason"] == GENERATED
    with svc.uow() as uow:
        event = [e for e in uow.calls.history(ref) if e.entity == "call"][-1]
    assert event.trigger == "refer" and event.reason == GENERATED
    assert event.data["out_of_hours_alternative"] is True and event.data["override"] is True
    assert event.data["recommended"] == "refer to ILT" and event.data["rule"] == "15"

    page = text(client.get(resp.headers["Location"]))
    assert "Referred to Out-of-hours home visiting" in page
    history = next(t for t in tables(page) if t[0] == ["When", "Who", "What", "From → to", "Why"])
    refer_row = next(row for row in history if row[2].startswith("call refer"))
    assert refer_row[2] == "call refer (OOHV) override" and refer_row[4] == GENERATED


@pytest.mark.parametrize("service", ["CRS", "ILT", ""])
def test_a_forged_post_for_another_service_is_400_naming_the_field_and_stores_nothing(client, users, svc, clock,
                                                                                        service):
    ref = ltc_call(svc, clock, THURSDAY_NIGHT)
    token = signed_in(client)
    before, events = row_counts(svc), history_len(svc, ref)
    resp = post_out_of_hours(client, token, ref, service=service)
    assert resp.status_code == 400
    page = text(resp)
    summary = page[page.index('id="error-summary"'):page.index("</ul>", page.index('id="error-summary"'))]
    assert 'href="#recommendation"' in summary
    assert "is not the routing table's out-of-hours alternative now" in summary
    assert row_counts(svc) == before and history_len(svc, ref) == events
    call = load(svc, ref)
    assert (call.state, call.version, call.referrals) == ("in_triage", 2, [])


def test_the_alternative_is_refused_once_the_table_no_longer_offers_it(client, users, svc, clock):
    ref = ltc_call(svc, clock, THURSDAY_NIGHT, urgency="routine")  # a routine call: none offered
    token = signed_in(client)
    before = row_counts(svc)
    resp = post_out_of_hours(client, token, ref)
    assert resp.status_code == 400
    assert "OOHV is not an out-of-hours alternative now (the routing table offers none)" in text(resp)
    assert row_counts(svc) == before and load(svc, ref).state == "in_triage"


def test_sharing_with_another_organisation_needs_a_lawful_basis_as_for_accept(client, users, svc, clock):
    # An ASC call (county council); OOHV is run by the integrated urgent care provider; consent refused.
    ref = ltc_call(svc, clock, THURSDAY_NIGHT, centre="ASC", consent="refused")
    token = signed_in(client, "handler.asc")
    page = text(client.get(f"/calls/{ref}"))
    assert 'id="out-of-hours-lawful-basis"' in page
    before = row_counts(svc)
    resp = post_out_of_hours(client, token, ref)
    assert resp.status_code == 422
    page = text(resp)
    assert 'href="#out-of-hours-consent-basis"' in page
    assert "Out-of-hours home visiting is run by Integrated urgent care provider" in page
    assert 'id="out-of-hours-consent-error"' in page and 'id="accept-consent-error"' not in page
    assert row_counts(svc) == before
    resp = post_out_of_hours(client, token, ref, consent_basis="vital_interests",
                             consent_reason="Lives alone, breathless tonight")
    assert resp.status_code == 302, text(resp)
    call = load(svc, ref)
    assert call.referrals[0].service == "OOHV" and call.referrals[0].sharing_basis == "vital_interests"
    assert call.route["out_of_hours_alternative"] is True


# -- the JSON API -----------------------------------------------------------------------------------------

def test_the_api_decides_with_the_alternative_and_takes_it_without_a_reason(api, svc, clock):
    clock.set(THURSDAY_NIGHT)
    body = {"need": "long_term_condition", "urgency": "urgent", "at": THURSDAY_NIGHT.isoformat(),
            "postcode": "LE11 3AB"}
    got = api("POST", "/api/v1/routing/decide", body).get_json()
    assert (got["service"], got["rule"]) == ("ILT", "15")
    assert got["out_of_hours"] == {"service": "OOHV", "open_now": True}
    assert "out_of_hours" not in api("POST", "/api/v1/routing/decide", {**body, "urgency": "routine"}).get_json()

    ref = log(api, need="long_term_condition")["ref"]
    fire_ok(api, ref, "start_triage", 1)
    # Without the marker, OOHV is an ordinary override: a reason is needed.
    error_of(fire(api, ref, "refer", 2, data={"service": "OOHV"}), 422, "guard_failed")
    done = fire_ok(api, ref, "refer", 2, data={"service": "OOHV", "out_of_hours_alternative": True})
    assert [r["service"] for r in done["referrals"]] == ["OOHV"]
    event = next(e for e in get_call(api, ref)["history"] if e["entity"] == "call" and e["trigger"] == "refer")
    assert event["data"]["out_of_hours_alternative"] is True and event["reason"] == GENERATED


@pytest.mark.parametrize("data, field", [
    ({"service": "CRS", "out_of_hours_alternative": True}, "data.service"),
    ({"service": "OOHV", "out_of_hours_alternative": "yes"}, "data.out_of_hours_alternative"),
])
def test_the_api_refuses_a_claim_the_table_does_not_make_with_400(api, svc, clock, data, field):
    clock.set(THURSDAY_NIGHT)
    ref = log(api, need="long_term_condition")["ref"]
    fire_ok(api, ref, "start_triage", 1)
    before = row_counts(svc)
    err = error_of(fire(api, ref, "refer", 2, data=data, reason="A reason does not make it the alternative"),
                   400, "not_offered")
    assert list(err["fields"]) == [field]
    assert row_counts(svc) == before
    assert get_call(api, ref)["state"] == "in_triage"


def test_a_logged_call_takes_its_triage_step_and_the_alternative_in_one_action(client, users, svc, clock):
    clock.set(THURSDAY_NIGHT)
    ref = logged(svc, need="long_term_condition")
    token = signed_in(client)
    page = text(client.get(f"/calls/{ref}"))
    form = page[page.index(f'action="/calls/{ref}/out-of-hours"'):]
    form = form[:form.index("</form>")]
    assert 'name="step_first" value="1"' in form  # as the Accept form of a logged call
    resp = post_out_of_hours(client, token, ref, version=1, step_first="1")
    assert resp.status_code == 302, text(resp)
    call = load(svc, ref)
    assert call.state == "referred" and call.route["out_of_hours_alternative"] is True
