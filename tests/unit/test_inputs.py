"""Input validation of the use cases (the pydantic models of ipoa/service/inputs.py): normalisation of
identifiers and contact details, every problem reported under its dotted field path in one InvalidInput,
and the NHS number check as a property against an independent Modulus 11 implementation. Pure: no
database, no app."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipoa.domain import validation
from ipoa.domain.catalogue import load_catalogue
from ipoa.domain.validation import normalise_nhs_number, normalise_uk_phone
from ipoa.service.inputs import DecideRoute, FireTrigger, InvalidInput, LogCall, parse
from tests.conftest import call_payload
from tests.helpers.properties import examples

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "workflows")
TODAY = date(2026, 11, 23)
CONTEXT = {"centres": set(CATALOGUE.directory.centres), "needs": set(CATALOGUE.routing.needs), "today": TODAY}

# Invented person; the NHS number is from the never-issued 999 range.
VALID_NHS = "9990000026"


def body(**overrides) -> dict:
    """A valid intake body written as people type it: spaced NHS number, lower-case postcode."""
    data = call_payload(subject={"nhs_number": "999 000 0026", "postcode": "le11  3ab"})
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def errors_of(model, data, **context) -> dict[str, str]:
    with pytest.raises(InvalidInput) as exc:
        parse(model, data, **{**CONTEXT, **context})
    assert str(exc.value)  # a readable summary too
    return exc.value.errors


# -- LogCall ------------------------------------------------------------------------------------------


def test_log_call_normalises_identifiers_and_contact_details():
    cmd = parse(LogCall, body(), **CONTEXT)
    assert cmd.subject.nhs_number == VALID_NHS
    assert cmd.caller.phone == "+447911123456"
    assert cmd.subject.postcode == "LE11 3AB"
    assert cmd.subject.date_of_birth == date(1938, 4, 2)
    assert (cmd.centre, cmd.need, cmd.urgency, cmd.caller.type) == (
        "CNH", "urgent_community_health", "urgent", "carer")


@pytest.mark.parametrize("raw, expected", [
    ("9990000026", VALID_NHS),
    ("999 000 0026", VALID_NHS),
    ("999-000-0026", VALID_NHS),
    ("  999 000 0026  ", VALID_NHS),
    ("943 476 5919", "9434765919"),
])
def test_nhs_number_forms(raw, expected):
    assert parse(LogCall, body(subject={"nhs_number": raw}), **CONTEXT).subject.nhs_number == expected


@pytest.mark.parametrize("raw, expected", [
    ("07911 123456", "+447911123456"),
    ("07911123456", "+447911123456"),
    ("+44 7911 123456", "+447911123456"),
    ("0044 7911 123456", "+447911123456"),
    ("(0116) 496 0000", "+441164960000"),
    ("0116 496 0000", "+441164960000"),
])
def test_phone_forms(raw, expected):
    assert parse(LogCall, body(caller={"phone": raw}), **CONTEXT).caller.phone == expected


@pytest.mark.parametrize("raw, expected", [
    ("LE11 3AB", "LE11 3AB"),
    ("le113ab", "LE11 3AB"),
    (" le1  1aa ", "LE1 1AA"),
    ("de74 2sa", "DE74 2SA"),
])
def test_postcode_forms(raw, expected):
    assert parse(LogCall, body(subject={"postcode": raw}), **CONTEXT).subject.postcode == expected


def test_optional_fields_may_be_empty_or_missing():
    data = body(caller={"type": "public", "name": None, "phone": ""},
                subject={"nhs_number": "", "date_of_birth": None, "postcode": "  "})
    cmd = parse(LogCall, data, **CONTEXT)
    assert cmd.caller.phone is None and cmd.subject.nhs_number is None and cmd.subject.postcode is None
    assert cmd.subject.date_of_birth is None
    minimal = body()
    minimal["caller"] = {"type": "patient"}
    minimal["subject"] = {"given_name": "Edith", "family_name": "Testperson"}
    cmd = parse(LogCall, minimal, **CONTEXT)
    assert cmd.caller.name is None and cmd.subject.nhs_number is None


def test_text_is_stripped():
    cmd = parse(LogCall, body(subject={"given_name": "  Edith "}, summary="  Fell.  "), **CONTEXT)
    assert cmd.subject.given_name == "Edith" and cmd.summary == "Fell."


def test_every_invalid_field_is_reported_under_its_dotted_path():
    data = {
        "centre": "ZZZ",
        "caller": {"type": "alien", "name": "x" * 201, "phone": "12345", "email": "a@b.c"},
        "subject": {"nhs_number": "999 000 0027", "given_name": "", "family_name": "   ",
                    "date_of_birth": "2030-01-01", "postcode": "not a postcode"},
        "need": "astrology",
        "urgency": "whenever",
        "summary": "",
        "colour": "blue",
    }
    errors = errors_of(LogCall, data)
    assert set(errors) == {
        "centre", "caller.type", "caller.name", "caller.phone", "caller.email",
        "subject.nhs_number", "subject.given_name", "subject.family_name", "subject.date_of_birth",
        "subject.postcode", "need", "urgency", "summary", "colour", "consent",
    }
    # Each in plain English, written for its field (domain/field_messages.py).
    assert errors["subject.nhs_number"] == "Enter a valid NHS number: check each of the 10 digits"
    assert errors["caller.phone"] == "Enter the caller's phone number, like 01632 960 001 or 07700 900 982"
    assert errors["subject.postcode"] == "Enter a full UK postcode, like LE11 3AB"
    assert errors["subject.date_of_birth"] == "Date of birth must be in the past"
    assert errors["centre"] == "Select a centre from the list"
    assert errors["need"] == "Select a need from the list"
    assert errors["urgency"] == "Select the urgency: emergency, urgent, same day or routine"
    assert errors["summary"] == "Enter a summary of the call"
    assert errors["subject.given_name"] == "Enter the person's given name"
    assert errors["caller.name"] == "Enter a caller's name of 200 characters or fewer"
    assert errors["consent"] == "Select whether the person consents to sharing their details"
    assert not any(message.startswith("Value error") for message in errors.values())


def test_missing_fields_are_reported():
    errors = errors_of(LogCall, {"caller": {}, "subject": {"given_name": "Edith"}})
    assert set(errors) == {"centre", "caller.type", "subject.family_name", "need", "urgency", "summary", "consent"}


def test_nested_objects_of_the_wrong_type():
    errors = errors_of(LogCall, body(caller="Jo", subject=[1, 2]))
    assert set(errors) == {"caller", "subject"}


@pytest.mark.parametrize("dob, ok", [
    ("1938-04-02", True),
    (TODAY.isoformat(), True),
    ((TODAY + timedelta(days=1)).isoformat(), False),
    ("1900-01-01", True),
    ("1899-12-31", False),  # before 1900: a slip (docs/security.md)
    ("02/04/1938", False),
    ("1938-02-30", False),
])
def test_date_of_birth(dob, ok):
    data = body(subject={"date_of_birth": dob})
    if ok:
        assert parse(LogCall, data, **CONTEXT).subject.date_of_birth == date.fromisoformat(dob)
    else:
        assert set(errors_of(LogCall, data)) == {"subject.date_of_birth"}


def test_known_codes_only_checked_when_the_context_has_them():
    cmd = parse(LogCall, body(centre="ANY", need="anything"))
    assert (cmd.centre, cmd.need) == ("ANY", "anything")


@pytest.mark.parametrize("raw", ["12345", "0791112345", "999", "+1 202 555 0100", "hello", "07911 123456 789"])
def test_bad_phones(raw):
    assert set(errors_of(LogCall, body(caller={"phone": raw}))) == {"caller.phone"}


@pytest.mark.parametrize("raw", ["999000002", "99900000266", "9990000027", "999 000 002X", "0000000001",
                                 "999 000 0026 1"])
def test_bad_nhs_numbers(raw):
    assert set(errors_of(LogCall, body(subject={"nhs_number": raw}))) == {"subject.nhs_number"}


def test_non_ascii_digits_never_become_a_stored_nhs_number():
    try:
        cmd = parse(LogCall, body(subject={"nhs_number": "٩٩٩٠٠٠٠٠٢٦"}), **CONTEXT)
    except InvalidInput as exc:
        assert set(exc.errors) == {"subject.nhs_number"}
    else:
        assert cmd.subject.nhs_number in (None, VALID_NHS)


@pytest.mark.parametrize("data", [None, [], ["centre", "CNH"], "centre=CNH", 42, True])
def test_a_body_that_is_not_an_object(data):
    for model in (LogCall, FireTrigger, DecideRoute):
        with pytest.raises(InvalidInput) as exc:
            parse(model, data, **CONTEXT)
        assert exc.value.errors == {"body": "Expected a JSON object."}


# -- FireTrigger ----------------------------------------------------------------------------------------


def test_fire_trigger_valid():
    cmd = parse(FireTrigger, {"trigger": " refer ", "data": {"service": "DN"}, "reason": " Known to DN ",
                              "expected_version": 3}, **CONTEXT)
    assert (cmd.trigger, cmd.data, cmd.reason, cmd.expected_version) == ("refer", {"service": "DN"},
                                                                         "Known to DN", 3)
    cmd = parse(FireTrigger, {"trigger": "start_triage", "expected_version": 1})
    assert cmd.data == {} and cmd.reason is None and cmd.expected_version == 1


@pytest.mark.parametrize("version", ["1", True, 1.0])
def test_expected_version_must_be_a_whole_number_not_a_lookalike(version):
    assert set(errors_of(FireTrigger, {"trigger": "start_triage", "expected_version": version})) == {
        "expected_version"}


def test_fire_trigger_every_invalid_field():
    errors = errors_of(FireTrigger, {"trigger": "", "data": ["service", "DN"], "reason": "x" * 2001,
                                     "expected_version": 0, "actor": "someone"})
    assert set(errors) == {"trigger", "data", "reason", "expected_version", "actor"}


def test_fire_trigger_needs_expected_version_and_trigger():
    assert set(errors_of(FireTrigger, {})) == {"trigger", "expected_version"}
    assert set(errors_of(FireTrigger, {"trigger": "x" * 41, "expected_version": 2.5})) == {
        "trigger", "expected_version"}


# -- DecideRoute ----------------------------------------------------------------------------------------


def test_decide_route_valid():
    cmd = parse(DecideRoute, {"need": "housing", "urgency": "routine", "at": "2026-11-23T10:00:00+00:00",
                              "postcode": "le11 3ab", "centre": "ASC"}, **CONTEXT)
    assert cmd.at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert cmd.postcode == "LE11 3AB" and cmd.centre == "ASC"
    cmd = parse(DecideRoute, {"need": "housing", "urgency": "routine", "at": "2026-06-01T09:00:00+01:00"},
                **CONTEXT)
    assert cmd.at.utcoffset() == timedelta(hours=1) and cmd.postcode is None and cmd.centre is None


def test_decide_route_every_invalid_field():
    errors = errors_of(DecideRoute, {"need": "astrology", "urgency": "soon", "at": "2026-11-23T10:00:00",
                                     "postcode": "LE11", "centre": "ZZZ", "extra": 1})
    assert set(errors) == {"need", "urgency", "at", "postcode", "centre", "extra"}
    assert "with its offset" in errors["at"]


def test_decide_route_missing_and_malformed_instant():
    assert set(errors_of(DecideRoute, {"need": "housing", "urgency": "urgent"})) == {"at"}
    assert set(errors_of(DecideRoute, {"need": "housing", "urgency": "urgent", "at": "teatime"})) == {"at"}


# -- NHS number: Modulus 11, implemented independently ------------------------------------------------


def modulus_11_ok(digits: str) -> bool:
    """NHS Data Dictionary: weights 10..2 on the first nine digits; 11 - (sum mod 11) is the check
    digit, 11 reads as 0 and 10 means the number is invalid."""
    assert len(digits) == 10 and all(c in "0123456789" for c in digits)
    total = sum(int(c) * w for c, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def impossible_chi(digits: str) -> bool:
    """The nhs-number library also refuses numbers in Scotland's CHI block (0101000000-3112999999), which
    begin with a DDMMYY date of birth, when those six digits are no calendar date: such a number can never
    have been issued. English numbers (400-499, 600-799 million blocks) are unaffected."""
    if not 100_000_000 <= int(digits) <= 3_112_999_999:
        return False
    try:
        datetime.strptime(digits[:6], "%d%m%y")
    except ValueError:
        return True
    return False


def with_check_digit(nine: str) -> str:
    total = sum(int(c) * w for c, w in zip(nine, range(10, 1, -1)))
    return nine + str((11 - total % 11) % 11)[-1]


ten_digits = st.text(alphabet="0123456789", min_size=10, max_size=10)
# Random strings pass about one time in eleven: also build numbers from nine digits and their check digit.
nine_plus_check = st.text(alphabet="0123456789", min_size=9, max_size=9).map(with_check_digit)


@settings(max_examples=examples(1000))
@given(st.one_of(ten_digits, nine_plus_check))
@example(VALID_NHS)
@example("9434765919")
@example("4010232137")  # English block
@example("0000000000")  # all zeros: checksum 0 passes Modulus 11
@example("0101000000")  # bottom of the CHI block
@example("3112999999")
def test_ten_digit_strings_accepted_iff_modulus_11(digits):
    expected = modulus_11_ok(digits) and not impossible_chi(digits)
    result = normalise_nhs_number(digits)
    assert (result is not None) == expected
    if result is not None:
        assert result == digits
        # Spacing as people write it changes nothing.
        assert normalise_nhs_number(f"{digits[:3]} {digits[3:6]} {digits[6:]}") == digits
        assert normalise_nhs_number(f"{digits[:3]}-{digits[3:6]}-{digits[6:]}") == digits


@settings(max_examples=examples(300))
@given(nine_plus_check.filter(lambda d: not impossible_chi(d)))
def test_numbers_built_with_their_check_digit(digits):
    # Accepted, except when the check digit would be 10 (no such number: with_check_digit then writes 0).
    assert (normalise_nhs_number(digits) is not None) == modulus_11_ok(digits)


@settings(max_examples=examples(300))
@given(st.text(alphabet="0123456789 -", max_size=14).filter(
    lambda s: len(s.replace(" ", "").replace("-", "")) != 10))
def test_anything_but_ten_digits_is_refused(raw):
    assert normalise_nhs_number(raw) is None


def test_chi_block_behaviour_is_explicit():
    # 0100000002 passes Modulus 11 but "010000" is no date: refused by the library.
    assert modulus_11_ok("0100000002") and impossible_chi("0100000002")
    assert normalise_nhs_number("0100000002") is None
    # A real-looking CHI number (born 1 Jan 1970) with a valid check digit is accepted.
    chi = with_check_digit("010170123")
    if modulus_11_ok(chi):
        assert normalise_nhs_number(chi) == chi


# -- the address for a visit (issue 12): optional, one line each, plain-English messages ----------------

def test_the_address_is_optional_and_kept_as_given():
    cmd = parse(LogCall, body(subject={"address_line_1": "  12 Station Road ", "town": "Loughborough"}), **CONTEXT)
    assert (cmd.subject.address_line_1, cmd.subject.town) == ("12 Station Road", "Loughborough")
    cmd = parse(LogCall, body(subject={"address_line_1": "   ", "town": ""}), **CONTEXT)
    assert cmd.subject.address_line_1 is None and cmd.subject.town is None
    assert parse(LogCall, body(), **CONTEXT).subject.address_line_1 is None


def test_a_wrong_address_is_refused_in_plain_english():
    errors = errors_of(LogCall, body(subject={"address_line_1": "x" * 101, "town": "y" * 61}))
    assert errors == {"subject.address_line_1": "Enter address line 1 in 100 characters or fewer",
                      "subject.town": "Enter a town or city of 60 characters or fewer"}
    errors = errors_of(LogCall, body(subject={"address_line_1": 12, "town": ["Loughborough"]}))
    assert errors == {"subject.address_line_1": "Enter address line 1 as text, like 12 Station Road",
                      "subject.town": "Enter the town or city as text, like Loughborough"}
    errors = errors_of(LogCall, body(subject={"address_line_1": "12 Station\nRoad", "town": "Lough\u202eborough"}))
    assert set(errors) == {"subject.address_line_1", "subject.town"}
    assert all(m and m[0].isupper() and "\n" not in m for m in errors.values()), errors


def test_the_drama_landline_the_phone_message_gives_as_an_example_is_taken():
    # Ofcom's 01632 960xxx: never connected, so examples (the message, the directory's centres) use them.
    cmd = parse(LogCall, body(caller={"type": "carer", "phone": "01632 960 001"}), **CONTEXT)
    assert cmd.caller.phone == "+441632960001"
    assert "caller.phone" in errors_of(LogCall, body(caller={"type": "carer", "phone": "01632 961 001"}))


def _through_the_parser(raw: str) -> str | None:
    """normalise_uk_phone as it was before its E.164 shortcut: every number through phonenumbers.parse."""
    try:
        parsed = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None
    fiction = int(f"44{parsed.national_number}")
    if parsed.country_code != 44 or not (phonenumbers.is_valid_number(parsed) or fiction in validation._FICTION_MOBILES
                                         or fiction in validation._FICTION_LANDLINES):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=examples(2000))
@given(st.sampled_from(["+44", "+440", "+447", "+4420", "+44113", "+441632960", "+447700900", "+44800", "+443"]),
       st.text(alphabet="0123456789", max_size=13))
@example("+44", "7911123456")
@example("+44", "7700900123")
@example("+44", "1632960101")
@example("+44", "79111234567")  # a digit too many
def test_a_number_in_e164_reads_as_phonenumbers_parses_it(prefix, digits):
    # Twilio's From is read without the parser when it is +44 and digits (validation._UK_E164): the same
    # answer as the parser's for every such string, valid or not.
    raw = prefix + digits
    assert normalise_uk_phone(raw) == _through_the_parser(raw)


@settings(max_examples=examples(2000))
@given(st.sampled_from(["0", "07", "01", "020", "0116", "01632960", "07700900", "0800", "03", "00", "0 7", " 0"]),
       st.lists(st.sampled_from(list("0123456789") + [" ", "  "]), max_size=16).map("".join))
@example("07911", " 123456")
@example("0116", " 496 0123")
@example("07", "9111234567")  # a digit too many
@example("0", "38657070")  # eight digits after the 0: the parser keeps the 0, so this goes through it
@example("07", "911 123 456 ")
def test_a_number_as_people_type_it_reads_as_phonenumbers_parses_it(prefix, rest):
    # Read without the parser when it is a 0 and nine or ten digits, spaces anywhere (validation._UK_NATIONAL):
    # the same answer as the parser's for every string of digits and spaces, valid or not.
    raw = prefix + rest
    assert normalise_uk_phone(raw) == _through_the_parser(raw)



# National numbers of +44 for validation._is_valid_uk_number against phonenumbers.is_valid_number: 7 to 11 digits
# after leading digits that reach each region's types and where the regions meet (GB; Guernsey 1481, 7781,
# 7839, 79111/79117; Jersey 1534, 7509, 7829, 7937, 7797; the Isle of Man by its leading digits 1624, 74576, 7524,
# 7624), the drama numbers, and numbers of every other first digit.
_UK_LEADING_DIGITS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "11", "20", "1481", "1534", "1624", "7781", "7839",
                      "7911", "7624", "74576", "7524", "7509", "7829", "7937", "7797", "7700", "7700900", "1632960",
                      "33", "3440", "55", "56", "70", "76", "800", "8001111", "845464", "87", "90", "98"]


@st.composite
def _uk_national_numbers(draw):
    leading = draw(st.sampled_from(_UK_LEADING_DIGITS))
    length = draw(st.integers(min_value=max(7, len(leading)), max_value=11))
    rest = length - len(leading)
    return leading + draw(st.text(alphabet="0123456789", min_size=rest, max_size=rest))


@pytest.mark.parametrize(("national", "valid"), [
    ("7400123456", True),   # a GB mobile
    ("7911123456", True),   # Guernsey's mobile (79111), not GB's
    ("7781123456", True), ("7839123456", True), ("1481256789", True),  # Guernsey
    ("1534123456", True), ("7937123456", True),  # Jersey
    ("1624512345", True), ("7624123456", True), ("7457612345", True), ("7524123456", True),  # the Isle of Man
    ("1162345678", True), ("2079460000", True),  # GB landlines
    ("3001234567", True), ("5612345678", True), ("7012345678", True), ("7640123456", True),  # UAN, VoIP, ..., pager
    ("8001111", True), ("800123456", True), ("8454641", True), ("9012345678", True),  # toll free, premium rate
    ("1624123456", False),  # the Isle of Man's leading digits, no type of its own: invalid, whatever GB would say
    ("1481123456", False), ("1534312345", False),  # Guernsey's and Jersey's codes, not their numbers
    ("7700900123", False), ("1632960001", False),  # the drama numbers: unallocated (normalise_uk_phone allows them)
    ("7912345", False), ("1162345", False), ("8123456", False), ("123", False),  # lengths without that type
    ("79111234567", False), ("11623456789", False), ("4123456789", False), ("6123456789", False),
])
def test_the_validity_of_a_uk_number_is_phonenumbers_own(national, valid):
    number = phonenumbers.PhoneNumber(country_code=44, national_number=int(national))
    assert validation._UK_REGIONS is not None  # (else every number goes to phonenumbers and this proves nothing)
    assert validation._is_valid_uk_number(number) is phonenumbers.is_valid_number(number) is valid


@pytest.mark.parametrize("zeros", [None, 0, 1, 2])
@pytest.mark.parametrize("national", ["7400123456", "162345678", "1162345678", "7911123456"])
def test_a_leading_zero_counts_as_phonenumbers_counts_it(national, zeros):
    # A parsed number may keep a zero before its national number (italian_leading_zero): part of the number then.
    number = phonenumbers.PhoneNumber(country_code=44, national_number=int(national), italian_leading_zero=True,
                                      number_of_leading_zeros=zeros)
    assert validation._is_valid_uk_number(number) is phonenumbers.is_valid_number(number)


@settings(max_examples=examples(1000))
@given(_uk_national_numbers())
@example("7911723456")  # Guernsey 79117
@example("7624012345")  # the Isle of Man, mobile
@example("1624123456")  # the Isle of Man's leading digits, no type: invalid
def test_a_uk_number_is_valid_when_phonenumbers_says_so(national):
    # normalise_uk_phone's validity check (validation._is_valid_uk_number, one pattern a region and length built
    # from phonenumbers' metadata) answers as phonenumbers.is_valid_number, valid or not, in any of +44's regions.
    number = phonenumbers.PhoneNumber(country_code=44, national_number=int(national))
    assert validation._is_valid_uk_number(number) is phonenumbers.is_valid_number(number)

_CHARACTERS = st.sampled_from(["a", "Z", " ", "é", "東", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\x85", "\u202e",
                               "\u2066", "\ud800", "\udfff", "\u200f"])
_TEXT = st.lists(_CHARACTERS, max_size=4).map("".join)
_JSON = st.recursive(st.one_of(st.none(), st.integers(), st.booleans(), _TEXT),
                     lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
                     max_leaves=12)


def _strings(value, keys, texts):
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        for key, sub in value.items():
            keys.append(key)
            _strings(sub, keys, texts)
    elif isinstance(value, list):
        for sub in value:
            _strings(sub, keys, texts)
    return keys, texts


@settings(max_examples=examples(2000))
@given(_JSON)
def test_a_body_is_found_clean_exactly_when_each_of_its_strings_is(value):
    # text_errors answers a clean body from one search over its keys and one over its strings, joined
    # (validation._all_clean): the same verdict as checking each key (one line) and each string on its own.
    keys, texts = _strings(value, [], [])
    each_clean = (all(validation.text_problem(k) is None for k in keys)
                  and all(validation.text_problem(t, multiline=True) is None for t in texts))
    assert (validation.text_errors(value) == {}) == each_clean
