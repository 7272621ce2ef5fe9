"""The API's `fields` carry the same plain-English message for each field as the web forms show
(ipoa/domain/field_messages.py), never pydantic's words; dates stay ISO 8601 in the API."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.conftest import call_payload
from tests.helpers.api import error_of, fire, get_call, in_triage, log, row_counts

PYDANTIC = re.compile(r"Input should|String should|should be a valid|Field required|Extra inputs|Value error")


@pytest.mark.parametrize("overrides, field, message", [
    ({"subject": {"nhs_number": "12345"}}, "subject.nhs_number", "Enter a 10-digit NHS number"),
    ({"subject": {"nhs_number": "9990000027"}}, "subject.nhs_number",
     "Enter a valid NHS number: check each of the 10 digits"),
    ({"caller": {"phone": "0123"}}, "caller.phone",
     "Enter the caller's phone number, like 01632 960 001 or 07700 900 982"),
    ({"urgency": "whenever"}, "urgency", "Select the urgency: emergency, urgent, same day or routine"),
    ({"urgency": None}, "urgency", "Select the urgency"),
    ({"summary": ""}, "summary", "Enter a summary of the call"),
    ({"summary": "x" * 4001}, "summary", "Enter a summary of 4,000 characters or fewer"),
    ({"subject": {"given_name": ""}}, "subject.given_name", "Enter the person's given name"),
    ({"subject": {"date_of_birth": "2026-11-24"}}, "subject.date_of_birth", "Date of birth must be in the past"),
    ({"subject": {"date_of_birth": "05/11/1941"}}, "subject.date_of_birth",
     "Enter the date of birth as year, month and day, like 1941-11-05"),
    ({"subject": {"postcode": "LE11 ZZZ"}}, "subject.postcode", "Enter a full UK postcode, like LE11 3AB"),
    ({"need": "astrology"}, "need", "Select a need from the list"),
    ({"caller": {"type": "alien"}}, "caller.type",
     "Select who is calling: the patient, a carer, a professional, a care home or the public"),
])
def test_log_call_fields_carry_the_field_s_own_message(api, svc, overrides, field, message):
    err = error_of(api("POST", "/api/v1/calls", call_payload(**overrides)), 422, "invalid")
    assert err["fields"][field] == message
    assert row_counts(svc)["calls"] == 0


def test_the_api_takes_iso_dates(api, svc):
    ref = log(api, subject={"date_of_birth": "1941-11-05"})["ref"]
    assert get_call(api, ref)["subject"]["date_of_birth"] == date(1941, 11, 5).isoformat()


def test_every_message_for_a_bad_intake_is_plain(api, svc):
    body = {"centre": 5, "caller": {"type": None, "name": ["x"], "phone": 7, "wants_updates": "maybe"},
            "subject": {"nhs_number": 9990000026, "given_name": None, "family_name": {},
                        "date_of_birth": 1941, "postcode": True},
            "need": [], "urgency": 3, "summary": None, "consent": "perhaps", "colour": "blue"}
    err = error_of(api("POST", "/api/v1/calls", body), 422, "invalid")
    assert len(err["fields"]) >= 10
    for field, message in err["fields"].items():
        assert not PYDANTIC.search(message), (field, message)


def test_callback_messages_are_the_web_s(api, svc, clock):
    ref = log(api)["ref"]
    past = (clock.now() - timedelta(minutes=5)).isoformat()
    err = error_of(fire(api, ref, "promise_callback", 1, data={"callback_at": past}), 422, "guard_failed")
    assert err["fields"] == {"data.callback_at": "Call back at must be in the future"}
    err = error_of(fire(api, ref, "promise_callback", 1, data={"callback_at": "2026-11-23T14:30:00"}), 422,
                   "guard_failed")
    assert err["fields"] == {"data.callback_at": "Enter the callback time as an ISO 8601 date and time with its "
                                                 "offset, like 2026-11-23T14:30:00+00:00"}
    err = error_of(fire(api, ref, "promise_callback", 1, data={}), 422, "guard_failed")
    assert err["fields"] == {"data.callback_at": "Enter the date and time to call back"}
    later = datetime(2026, 11, 23, 14, 30, tzinfo=UTC).isoformat()
    assert fire(api, ref, "promise_callback", 1, data={"callback_at": later}).status_code == 200


def test_reason_messages_are_the_web_s(api, svc):
    ref = in_triage(api)
    err = error_of(fire(api, ref, "refer", 2, data={"service": "DN"}), 422, "guard_failed")
    assert err["fields"] == {"reason": "Enter a reason for choosing another route: the recommended route is "
                                       "to refer to CRT"}
    err = error_of(fire(api, ref, "cancel", 2, reason=" "), 422, "guard_failed")
    assert err["fields"] == {"reason": "Enter a reason"}
    err = error_of(fire(api, ref, "cancel", 2, reason="x" * 2001), 422, "invalid")
    assert err["fields"] == {"reason": "Enter a reason of 2,000 characters or fewer"}
    err = error_of(fire(api, ref, "refer", 2, data={"service": "NOPE"}, reason="Known"), 422, "guard_failed")
    assert err["fields"]["data.service"] == "Select a service from the list"
