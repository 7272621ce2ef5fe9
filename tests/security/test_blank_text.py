"""Text in which nothing shows (domain/validation.looks_blank): only direction marks, joiners, a soft hyphen,
marks with no letter, a Hangul filler or the blank Braille pattern. A call was logged for a person "named"
U+200E, with a summary of U+3164: every page showed them empty. Now 422 naming the field, nothing stored,
on the API and the Log a call form (docs/security.md, "Hostile input")."""
from __future__ import annotations

import pytest

from ipoa.domain.validation import looks_blank
from tests.helpers import call_payload
from tests.security.test_hostile_input import NEW_CALL_FORM, counts, web_sign_in

SHOWS_NOTHING = ["\u200e", "\u200f\u200f", "\u200d", "\u00ad", "\u0301", "\u3164", "\u115f", "\uffa0", "\u2800",
                 "\ufe0f", "\u061c", "\U000e0020", "\u200c \u200e"]


def test_what_looks_blank_and_what_shows():
    for value in SHOWS_NOTHING:
        assert looks_blank(value), repr(value)
    for value in ("Jo", "\u200fJo", "O'Brien", "\u0645\u06cc\u200c\u062e", "\u6771\u4eac", "\u2713", "\U0001F600",
                  "7", ".", "e\u0301"):
        assert not looks_blank(value), repr(value)


@pytest.mark.parametrize("value", SHOWS_NOTHING)
@pytest.mark.parametrize("field, overrides", [
    ("subject.given_name", lambda v: {"subject": {"given_name": v}}),
    ("subject.family_name", lambda v: {"subject": {"family_name": v}}),
    ("summary", lambda v: {"summary": v}),
    ("caller.name", lambda v: {"caller": {"name": v}}),  # optional, but not as a blank-looking name
    ("subject.address_line_1", lambda v: {"subject": {"address_line_1": v}}),
])
def test_intake_refuses_a_field_in_which_nothing_shows(api, svc, field, overrides, value):
    before = counts(svc)
    resp = api("POST", "/api/v1/calls?allow_duplicate=true", call_payload(**overrides(value)))
    assert resp.status_code == 422, resp.get_json()
    assert "only invisible characters" in resp.get_json()["error"]["fields"][field]
    assert counts(svc) == before


def test_a_trigger_reason_in_which_nothing_shows_is_refused(api, svc):
    ref = api("POST", "/api/v1/calls", call_payload()).get_json()["ref"]
    before = counts(svc)
    resp = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "cancel", "expected_version": 1, "reason": "\u3164"})
    assert resp.status_code == 422, resp.get_json()
    assert "reason" in resp.get_json()["error"]["fields"]
    assert counts(svc) == before


@pytest.fixture
def web(app, svc, users):
    """A browser's client without the CSRF token's round trip (CSRF is not what is tested here)."""
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def test_the_log_a_call_form_shows_the_error_beside_the_name(web, svc):
    web_sign_in(web, "handler")
    before = counts(svc)
    resp = web.post("/calls/new", data={**NEW_CALL_FORM, "family_name": "\u200e\u3164"})
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "has only invisible characters" in page and 'href="#family_name"' in page
    assert counts(svc) == before


def test_an_escalation_reason_in_which_nothing_shows_is_refused_and_texts_nobody(api, svc):
    ref = api("POST", "/api/v1/calls", call_payload()).get_json()["ref"]
    api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "start_triage", "expected_version": 1})
    referred = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "refer", "expected_version": 2,
                                                           "data": {"service": "DN"}, "reason": "setup"})
    referral_id = referred.get_json()["referrals"][0]["id"]
    before = counts(svc)
    resp = api("POST", f"/api/v1/calls/{ref}/referrals/{referral_id}/escalate", {"reason": "\u200e\u00ad"},
               as_="supervisor")
    assert resp.status_code == 422, resp.get_json()
    assert "reason" in resp.get_json()["error"]["fields"]
    assert counts(svc) == before
