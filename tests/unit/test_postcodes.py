import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.postcodes import normalise_postcode, outward_code
from tests.helpers.properties import examples


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("LE11 3AB", "LE11 3AB"),
        ("le11 3ab", "LE11 3AB"),
        ("LE113AB", "LE11 3AB"),
        ("  le11   3ab  ", "LE11 3AB"),
        ("LE1 1AA", "LE1 1AA"),
        ("DE74 2SA", "DE74 2SA"),
        ("M1 1AE", "M1 1AE"),
        ("B33 8TH", "B33 8TH"),
        ("CR2 6XH", "CR2 6XH"),
        ("W1A 0AX", "W1A 0AX"),
        ("EC1A 1BB", "EC1A 1BB"),
        ("GIR 0AA", "GIR 0AA"),
        ("gir0aa", "GIR 0AA"),
    ],
)
def test_valid_postcodes_are_normalised(raw, expected):
    assert normalise_postcode(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "LE11",
        "LE11 3A",
        "LE11 AAB",  # inward code starts with a digit
        "AI1 1AA",  # I never appears second
        "AZ1 1AA",  # nor Z
        "LE111 3AB",
        "LE11 3AB X",
        "LE1! 3AB",
        "12345",
        "GIR 0AB",
    ],
)
def test_invalid_postcodes_are_none(raw):
    assert normalise_postcode(raw) is None


def test_non_string_is_none():
    assert normalise_postcode(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "postcode, outward",
    [("LE11 3AB", "LE11"), ("le113ab", "LE11"), ("LE1 1AA", "LE1"), ("EC1A 1BB", "EC1A"), ("GIR 0AA", "GIR")],
)
def test_outward_code(postcode, outward):
    assert outward_code(postcode) == outward


def test_outward_code_of_invalid_postcode_raises():
    with pytest.raises(ValueError, match="not a valid UK postcode"):
        outward_code("LE11")


_VALID = st.sampled_from(["LE11 3AB", "LE1 1AA", "DE74 2SA", "EC1A 1BB", "W1A 0AX", "GIR 0AA", "NG1 1AA"])


@settings(max_examples=examples(200), deadline=None, database=None)
@given(_VALID, st.lists(st.sampled_from([" ", "  ", "\t"]), max_size=3), st.booleans())
def test_spacing_and_case_do_not_matter(postcode, padding, lower):
    outward, inward = postcode.split(" ")
    messy = "".join(padding) + outward + "".join(padding) + inward
    messy = messy.lower() if lower else messy
    assert normalise_postcode(messy) == postcode
    assert normalise_postcode(normalise_postcode(messy)) == postcode
