import copy
from datetime import date, datetime, time
from pathlib import Path

import pytest
import yaml

from ipoa.domain.calendar import LONDON, BankHolidays
from ipoa.domain.directory import (
    Centre,
    Directory,
    DirectoryError,
    Locality,
    LocalityMatch,
    Service,
    load_directory,
    load_directory_file,
)

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY_FILE = ROOT / "workflows" / "directory.yaml"
RAW = yaml.safe_load(DIRECTORY_FILE.read_text(encoding="utf-8"))
DIRECTORY = load_directory_file(DIRECTORY_FILE)
SOURCE = "workflows/directory.yaml"


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=LONDON)


# --- the shipped example directory ----------------------------------------------------------------

def test_shipped_directory_has_the_seven_centres():
    assert list(DIRECTORY.centres) == ["CNH", "FCP", "ASC", "EDT", "CHS", "MHA", "HFD"]
    assert all(isinstance(c, Centre) for c in DIRECTORY.centres.values())
    assert DIRECTORY.centres["ASC"].name == "Adult Social Care Customer Service Centre"
    assert DIRECTORY.centres["EDT"].run_by == "councils jointly"
    assert DIRECTORY.centres["MHA"].run_by == "mental health NHS trust"


def test_shipped_directory_has_the_twelve_services():
    assert list(DIRECTORY.services) == [
        "CRT", "OOHV", "CRS", "DN", "ILT", "SCA", "EDT", "SG", "REA", "MHCR", "LB", "FCPW",
    ]
    assert all(isinstance(s, Service) for s in DIRECTORY.services.values())
    assert [c for c, s in DIRECTORY.services.items() if s.needs_locality] == ["ILT"]
    assert DIRECTORY.services["CRT"].name == "Clinical Response Team"
    assert DIRECTORY.services["DN"].response_target == "urgent 4 h, routine 48 h"
    assert DIRECTORY.services["SCA"].response_target == "urgent same working day, routine 28 days"
    assert DIRECTORY.services["LB"].response_target == "5 working days"


@pytest.mark.parametrize(
    "kind, code, text",
    [
        ("centres", "CNH", "24/7"),
        ("centres", "FCP", "Mon-Fri 08:30-17:00, closed on bank holidays"),
        ("centres", "ASC", "Mon-Fri 08:30-17:00, closed on bank holidays"),
        ("centres", "EDT", "whenever ASC is closed"),
        ("centres", "CHS", "24/7"),
        ("centres", "MHA", "24/7"),
        ("centres", "HFD", "every day 08:00-20:00"),
        ("services", "CRT", "every day 08:00-20:00"),
        ("services", "OOHV", "every day 20:00-08:00"),
        ("services", "CRS", "24/7"),
        ("services", "DN", "24/7"),
        ("services", "ILT", "Mon-Fri 08:00-18:00, closed on bank holidays"),
        ("services", "SCA", "Mon-Fri 08:30-17:00, closed on bank holidays"),
        ("services", "EDT", "whenever ASC is closed"),
        ("services", "SG", "Mon-Fri 08:30-17:00, closed on bank holidays"),
        ("services", "REA", "every day 08:00-20:00"),
        ("services", "MHCR", "24/7"),
        ("services", "LB", "Mon-Fri 09:00-17:00, closed on bank holidays"),
        ("services", "FCPW", "Mon-Fri 08:30-17:00"),
    ],
)
def test_shipped_hours(kind, code, text):
    assert getattr(DIRECTORY, kind)[code].calendar.describe() == text


LOCALITIES = {
    "City North": ("LE4",),
    "City East": ("LE5",),
    "City West": ("LE3",),
    "City Central and South": ("LE1", "LE2"),
    "Charnwood": ("LE7", "LE11", "LE12"),
    "Hinckley and Bosworth": ("LE6", "LE9", "LE10"),
    "North West Leicestershire": ("LE65", "LE67", "DE74"),
    "Harborough": ("LE8", "LE16", "LE17"),
    "Melton": ("LE13", "LE14"),
    "Blaby, Oadby and Wigston": ("LE18", "LE19"),
    "Rutland": ("LE15",),
}


def test_shipped_localities():
    assert DIRECTORY.localities == tuple(Locality(n, d) for n, d in LOCALITIES.items())


@pytest.mark.parametrize(
    "district, locality", [(d, name) for name, districts in LOCALITIES.items() for d in districts]
)
def test_every_district_finds_its_locality(district, locality):
    assert DIRECTORY.locality_for(f"{district} 1AA") == LocalityMatch(locality, False)


@pytest.mark.parametrize(
    "postcode, expected",
    [
        (None, LocalityMatch(None, False)),
        ("", LocalityMatch(None, False)),
        ("   ", LocalityMatch(None, False)),
        ("le11 3ab", LocalityMatch("Charnwood", False)),
        ("LE1 1AA", LocalityMatch("City Central and South", False)),
        ("NG1 1AA", LocalityMatch(None, True)),
        ("DE7 4AA", LocalityMatch(None, True)),  # not DE74
        ("LE20 1AA", LocalityMatch(None, True)),
        ("GIR 0AA", LocalityMatch(None, True)),
    ],
)
def test_locality_for(postcode, expected):
    assert DIRECTORY.locality_for(postcode) == expected


def test_invalid_postcode_is_an_error_not_out_of_area():
    with pytest.raises(ValueError, match="not a valid UK postcode"):
        DIRECTORY.locality_for("LE11")


def test_injected_bank_holidays_reach_every_calendar():
    one_off = date(2026, 6, 3)
    directory = load_directory(RAW, BankHolidays(extra_dates=[one_off]), source=SOURCE)
    assert not directory.services["SG"].calendar.is_open(noon(one_off))
    assert directory.services["EDT"].calendar.is_open(noon(one_off))
    assert DIRECTORY.services["SG"].calendar.is_open(noon(one_off))


def test_directory_is_immutable():
    with pytest.raises(AttributeError):
        DIRECTORY.centres["CNH"].name = "x"  # type: ignore[misc]
    assert isinstance(DIRECTORY, Directory)


# --- loader errors --------------------------------------------------------------------------------

def _mutated(change) -> dict:
    data = copy.deepcopy(RAW)
    change(data)
    return data


def _service(data: dict, code: str) -> dict:
    return next(s for s in data["services"] if s["code"] == code)


def _centre(data: dict, code: str) -> dict:
    return next(c for c in data["centres"] if c["code"] == code)


def _expect_error(data, *fragments: str) -> str:
    with pytest.raises(DirectoryError) as info:
        load_directory(data, source=SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ")
    for fragment in fragments:
        assert fragment in message
    return message


def test_unknown_calendar_reference():
    data = _mutated(lambda d: _service(d, "EDT").update(calendar={"complement_of": "XYZ"}))
    _expect_error(data, "service EDT", "unknown calendar reference 'XYZ'")


def test_complement_may_name_a_service():
    data = _mutated(lambda d: _service(d, "OOHV").update(calendar={"complement_of": "CRT"}))
    directory = load_directory(data, source=SOURCE)
    assert directory.services["OOHV"].calendar.describe() == "whenever CRT is closed"


def test_calendar_reference_cycle():
    def change(d):
        _service(d, "CRT").update(calendar={"complement_of": "OOHV"})
        _service(d, "OOHV").update(calendar={"complement_of": "CRT"})

    _expect_error(_mutated(change), "calendar reference cycle", "CRT -> OOHV -> CRT")


def test_ambiguous_reference_to_a_code_that_is_both_centre_and_service():
    def change(d):
        _service(d, "EDT").update(calendar="always")
        _service(d, "CRT").update(calendar={"complement_of": "EDT"})

    _expect_error(_mutated(change), "service CRT", "'EDT' is ambiguous", "centre EDT and service EDT")


def test_complement_of_an_always_open_centre():
    data = _mutated(lambda d: _service(d, "CRT").update(calendar={"complement_of": "CNH"}))
    _expect_error(data, "service CRT", "never opens")


def test_duplicate_centre_code():
    data = _mutated(lambda d: d["centres"].append(copy.deepcopy(d["centres"][0])))
    _expect_error(data, "duplicate centre code 'CNH'")


def test_duplicate_service_code():
    data = _mutated(lambda d: d["services"].append(copy.deepcopy(_service(d, "SG"))))
    _expect_error(data, "duplicate service code 'SG'")


def test_district_in_two_localities():
    data = _mutated(lambda d: d["localities"][-1]["districts"].append("LE11"))
    _expect_error(data, "postcode district LE11", "'Charnwood' and 'Rutland'")


def test_district_listed_twice_in_one_locality():
    data = _mutated(lambda d: d["localities"][0]["districts"].append("le4"))
    _expect_error(data, "postcode district LE4 is listed twice")


def test_duplicate_locality_name():
    data = _mutated(lambda d: d["localities"].append({"name": "Rutland", "districts": ["PE9"]}))
    _expect_error(data, "duplicate locality 'Rutland'")


def test_bad_district():
    data = _mutated(lambda d: d["localities"][0]["districts"].append("LE 4"))
    _expect_error(data, "locality 'City North'", "'LE 4' is not a postcode district")


def test_missing_field_names_the_entry():
    data = _mutated(lambda d: _service(d, "LB").pop("response_target"))
    _expect_error(data, "services[10] (LB).response_target", "Field required")


def test_misspelt_key_is_refused():
    data = _mutated(lambda d: _service(d, "ILT").update(needs_localty=True))
    _expect_error(data, "services[4] (ILT).needs_localty: unknown key")


def test_needs_locality_must_be_a_boolean():
    data = _mutated(lambda d: _service(d, "ILT").update(needs_locality="yes"))
    _expect_error(data, "(ILT).needs_locality")


def test_code_must_be_capitals():
    data = _mutated(lambda d: _centre(d, "HFD").update(code="hfd"))
    _expect_error(data, "centres[6] (hfd).code")


def test_bad_opening_time():
    data = _mutated(lambda d: _service(d, "LB")["calendar"]["hours"][0].update(open=1200))
    _expect_error(data, "service LB: calendar:", "bad time 1200")


def test_bad_days():
    data = _mutated(lambda d: _centre(d, "ASC")["calendar"]["hours"][0].update(days="Weekdays"))
    _expect_error(data, "centre ASC: calendar:", "unknown day 'Weekdays'")


def test_missing_section():
    data = _mutated(lambda d: d.pop("services"))
    _expect_error(data, "services: Field required")


@pytest.mark.parametrize("data", [None, [], "centres"])
def test_not_a_mapping(data):
    _expect_error(data, "expected a mapping")


def test_missing_file_names_the_path():
    missing = ROOT / "workflows" / "no-such-directory.yaml"
    with pytest.raises(DirectoryError, match="no-such-directory.yaml: cannot read"):
        load_directory_file(missing)


def test_directory_error_is_a_value_error():
    assert issubclass(DirectoryError, ValueError)


# --- the centres' call-back numbers (optional; the example's are Ofcom drama numbers) ------------------

def test_shipped_centres_have_example_call_back_numbers():
    phones = {code: c.phone for code, c in DIRECTORY.centres.items()}
    assert all(p and p.startswith("+441632960") for p in phones.values()), phones
    assert len(set(phones.values())) == len(phones)
    assert DIRECTORY.centres["CNH"].phone == "+441632960101"


def test_a_centre_phone_is_optional_and_must_be_a_uk_number():
    data = copy.deepcopy(RAW)
    for centre in data["centres"]:  # a line ipoa answers needs its number (tests/unit/test_telephony_config.py)
        centre.pop("voice", None)
    del data["centres"][0]["phone"]
    assert load_directory(data, source=SOURCE).centres["CNH"].phone is None
    data["centres"][0]["phone"] = "12345"
    with pytest.raises(DirectoryError, match="phone"):
        load_directory(data, source=SOURCE)
