"""The messages a user reads when a field is wrong (ipoa/domain/field_messages.py): written for each field
in plain English, never pydantic's own words, whatever is sent to each use case's input model; the same
table words the guards' and the sharing rule's refusals. Pure: no app."""
from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain import field_messages as fm
from ipoa.domain import sharing
from ipoa.domain.access import check_break_glass_request
from ipoa.domain.catalogue import load_catalogue
from ipoa.service.calls import RerouteReferral
from ipoa.service.inputs import DecideRoute, FireTrigger, InvalidInput, LogCall, RecordConsent, parse
from tests.helpers import call_payload
from tests.helpers.properties import examples

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "workflows")
CONTEXT = {"centres": set(CATALOGUE.directory.centres), "needs": set(CATALOGUE.routing.needs),
           "today": date(2026, 11, 23), "services": set(CATALOGUE.directory.services)}

# Pydantic's stock phrases (its English error messages), and programmers' words no user should read.
STOCK = re.compile(r"Input should|String should|should be a valid|should have at (least|most)|Field required|"
                   r"Extra inputs are not permitted|Value error|Assertion failed|validation error|"
                   r"Input is a valid|Unable to parse|type=|\[type|Modulus|E\.164|None\b|null\b|"
                   r"[Ii]nput_value|literal_error|\bstr\b|\bint\b|\bdict\b")


def messages_of(model, data) -> dict[str, str]:
    try:
        parse(model, data, **CONTEXT)
    except InvalidInput as exc:
        return exc.errors
    return {}


def assert_plain(errors: dict[str, str]) -> None:
    for path, message in errors.items():
        assert not STOCK.search(message), (path, message)
        assert message and message[0].isupper(), (path, message)


# Anything an API client or a tampered form might send for one field.
junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just(""), st.just("   "),
    st.text(string.printable, max_size=30), st.just("x" * 4001),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "basis", "reason"]), st.text(max_size=5)),
    st.sampled_from(["2030-01-01", "1899-12-31", "1938-02-30", "05/11/1941", "2026-11-23T10:00:00",
                     "2026-11-23T10:00:00+00:00", "1999-01-01T00:00:00Z", "alien", "9990000027", "12345",
                     "0123", "LE11 ZZZ"]),
)

VALID = {
    LogCall: call_payload(),
    FireTrigger: {"trigger": "refer", "data": {"service": "DN"}, "reason": "Known to DN", "expected_version": 3},
    DecideRoute: {"need": "housing", "urgency": "routine", "at": "2026-11-23T10:00:00+00:00", "postcode": "LE11 3AB"},
    RecordConsent: {"consent": "given", "expected_version": 2, "reason": "Asked again"},
    RerouteReferral: {"service": "DN", "reason": "Nearer", "expected_version": 1},
}


def _paths(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(value, dict) and key != "data":
            out.extend(_paths(value, path + "."))
    return out


def _with(data: dict, path: str, value) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    head, _, rest = path.partition(".")
    if rest:
        out[head] = _with(out[head], rest, value)
    else:
        out[head] = value
    return out


CASES = [(model, path) for model, data in VALID.items() for path in _paths(data)]


@pytest.mark.parametrize("model, path", CASES, ids=[f"{m.__name__}-{p}" for m, p in CASES])
@settings(max_examples=examples(60))
@given(value=junk)
def test_no_field_message_is_pydantic_s(model, path, value):
    assert_plain(messages_of(model, _with(VALID[model], path, value)))


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_missing_and_extra_fields_are_plain_too(model):
    errors = messages_of(model, {"unexpected": 1})
    assert "unexpected" in errors and len(errors) > 1
    assert_plain(errors)


def test_the_intake_s_messages_name_what_to_do():
    errors = messages_of(LogCall, call_payload(
        subject={"nhs_number": "12345", "given_name": "", "date_of_birth": "2030-01-01"},
        caller={"phone": "0123", "type": None}, urgency=None, summary=""))
    assert errors == {
        "subject.nhs_number": "Enter a 10-digit NHS number",
        "subject.given_name": "Enter the person's given name",
        "subject.date_of_birth": "Date of birth must be in the past",
        "caller.phone": "Enter the caller's phone number, like 01632 960 001 or 07700 900 982",
        "caller.type": "Select who is calling",
        "urgency": "Select the urgency",
        "summary": "Enter a summary of the call",
    }
    assert messages_of(FireTrigger, {**VALID[FireTrigger], "reason": "x" * 2001}) == {
        "reason": "Enter a reason of 2,000 characters or fewer"}


def test_guards_and_sharing_refusals_use_the_table():
    _, errors = sharing.parse_override({"basis": "whim", "reason": ""})
    assert errors == {"data.consent_override.basis": fm.message("data.consent_override.basis", fm.REQUIRED),
                      "data.consent_override.reason": "Enter the reason for sharing without consent"}
    assert check_break_glass_request(None, None) == {"reason": "Select why you need to open this record"}
    assert_plain(check_break_glass_request("nonsense", 5))
    assert_plain(check_break_glass_request("other", ""))


def test_every_message_in_the_table_is_plain_and_formats():
    params = {"max": 2000, "part": "year", "year": "1941", "route": "refer to CRT", "service": "DN",
              "current": "Given", "name": "First Contact Plus", "opens": "Mon 30 Nov 08:00", "days": 30,
              "time": "01:30", "start": "2000", "end": "2099", "min": 1, "expected": "text"}
    for key, kinds in fm.FIELDS.items():
        for kind in kinds:
            message = fm.message(key, kind, **params)
            assert "{" not in message.replace('{"service"', ""), (key, kind, message)
            assert message != "Check this field and enter it again", (key, kind)
            assert_plain({key: message})
            assert not message.endswith("."), (key, kind, message)  # GOV.UK: no full stop
    for kind in fm.GENERIC:
        assert_plain({"x": fm.message("no.such.field", kind, **params)})


def test_a_kind_without_its_own_message_uses_the_field_s_related_one():
    assert fm.message("caller.phone", fm.REQUIRED) == "Enter a value for this field"  # optional: never required
    assert fm.message("need", fm.CHOOSE) == "Select the need"
    assert fm.message("subject.postcode", fm.FORMAT) == "Enter a full UK postcode, like LE11 3AB"


@pytest.mark.parametrize("when, expected", [
    (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "Call back at must be in the future"),
    (datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(days=31), "Call back at must be within 30 days"),
])
def test_callback_messages(when, expected):
    from ipoa.domain.guards import GUARDS, FireContext

    ctx = FireContext(actor="h", now=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
                      data={"callback_at": when.isoformat()}, reason=None, call=None)  # type: ignore[arg-type]
    assert GUARDS["callback_time_given"](None, ctx, None) == {"data.callback_at": expected}
    ctx.data = {}
    assert GUARDS["callback_time_given"](None, ctx, None) == {
        "data.callback_at": "Enter the date and time to call back"}
