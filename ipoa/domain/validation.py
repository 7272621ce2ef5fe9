"""Checks on identifiers and contact details that call intake relies on."""
from __future__ import annotations

import nhs_number
import phonenumbers

from .postcodes import normalise_postcode

__all__ = ["normalise_nhs_number", "normalise_uk_phone", "normalise_uk_mobile", "normalise_postcode"]

# Ofcom keeps 07700 900000-900999 for drama and examples: never connected, so the example directory,
# the demo and the tests use them. phonenumbers (rightly) calls them unallocated.
_FICTION_MOBILES = range(447700900000, 447700901000)


def normalise_nhs_number(raw: str) -> str | None:
    """Ten digits passing the Modulus 11 check (spaces and dashes allowed), or None."""
    digits = "".join(ch for ch in raw if not ch.isspace() and ch != "-")
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return None
    return digits if nhs_number.is_valid(digits) else None


def normalise_uk_phone(raw: str) -> str | None:
    """A valid UK number in E.164, or None."""
    try:
        parsed = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != 44:
        return None
    if not phonenumbers.is_valid_number(parsed) and int(f"44{parsed.national_number}") not in _FICTION_MOBILES:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_uk_mobile(raw: str) -> str | None:
    """A UK mobile in E.164 (SMS goes only to mobiles), or None."""
    e164 = normalise_uk_phone(raw)
    if e164 is None:
        return None
    if int(e164[1:]) in _FICTION_MOBILES:
        return e164
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return e164 if kind in (phonenumbers.PhoneNumberType.MOBILE,
                            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE) else None
