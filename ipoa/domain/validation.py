"""Checks on identifiers and contact details that call intake relies on."""
from __future__ import annotations

import nhs_number
import phonenumbers

from .postcodes import normalise_postcode

__all__ = ["normalise_nhs_number", "normalise_uk_phone", "normalise_postcode"]


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
    if parsed.country_code != 44 or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
