"""JSON's own types, read strictly: a value of another type than the document gives (api/openapi.py) is
422 naming the field and stores nothing, never coerced into something the client did not say
(docs/security.md, "Hostile input"). Runs on SQLite and on PostgreSQL (CI's second pass)."""
from __future__ import annotations

import pytest

from tests.helpers import call_payload
from tests.helpers.api import row_counts


def _refused(api, svc, field: str, **overrides) -> None:
    before = row_counts(svc)
    resp = api("POST", "/api/v1/calls?allow_duplicate=true", call_payload(**overrides))
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["error"]["fields"], resp.get_json()
    assert row_counts(svc) == before


# A number was read as seconds since 1970 (0 stored a birth on 1970-01-01, -86400 on 1969-12-31), and a
# date and time at midnight lost its time and offset.
@pytest.mark.parametrize("dob", [0, -86400, 86400 * 365 * 30, "1940-02-01T00:00:00Z", "1940-02-01T00:00:00",
                                 True, ["1940-02-01"], {"year": 1940}])
def test_a_date_of_birth_that_is_not_a_yyyy_mm_dd_text_is_422(api, svc, dob):
    _refused(api, svc, "subject.date_of_birth", subject={"date_of_birth": dob})


def test_a_date_of_birth_as_text_and_a_leap_day_are_kept(api, svc):
    for dob in ("1940-02-29", "1938-04-02"):
        resp = api("POST", "/api/v1/calls?allow_duplicate=true", call_payload(subject={"date_of_birth": dob}))
        assert resp.status_code == 201, resp.get_json()
        read = api("GET", f"/api/v1/calls/{resp.get_json()['ref']}").get_json()
        assert read["subject"]["date_of_birth"] == dob
    _refused(api, svc, "subject.date_of_birth", subject={"date_of_birth": "1941-02-29"})


# "false", "off", 0 were read as false and "yes", "on", 1 and 1.0 as true: a client's "false" as text is
# not a refusal of texts it can rely on, and a "1" asked for texts to be sent to the caller's phone.
@pytest.mark.parametrize("value", ["false", "true", "yes", "off", 0, 1, 1.0])
def test_wants_updates_is_true_or_false_only(api, svc, value):
    _refused(api, svc, "caller.wants_updates",
             caller={"type": "professional", "phone": "07911 123456", "wants_updates": value})


def test_wants_updates_true_still_asks_for_texts(api, svc):
    resp = api("POST", "/api/v1/calls?allow_duplicate=true",
               call_payload(caller={"type": "professional", "phone": "07911 123456", "wants_updates": True}))
    assert resp.status_code == 201, resp.get_json()


# A version beyond the column's integer answered 409 "the call changed" and echoed the number back, where
# every other route's version answers 422 naming the field.
@pytest.mark.parametrize("version", [2**31, 2**63, 10**30])
def test_a_reroute_version_beyond_the_columns_integer_is_422_naming_it(api, svc, version):
    ref = api("POST", "/api/v1/calls", call_payload()).get_json()["ref"]
    started = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "start_triage", "expected_version": 1})
    assert started.status_code == 200
    referred = api("POST", f"/api/v1/calls/{ref}/events", {"trigger": "refer", "expected_version": 2,
                                                           "data": {"service": "DN"}, "reason": "setup"})
    referral_id = referred.get_json()["referrals"][0]["id"]
    before = row_counts(svc)
    resp = api("POST", f"/api/v1/calls/{ref}/referrals/{referral_id}/reroute",
               {"service": "CRT", "reason": "Wrong team", "expected_version": version}, as_="supervisor")
    assert resp.status_code == 422, resp.get_json()
    assert "expected_version" in resp.get_json()["error"]["fields"]
    assert row_counts(svc) == before
