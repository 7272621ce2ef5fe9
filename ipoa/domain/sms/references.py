"""Call references as a professional reads and types them back in a reply."""
from __future__ import annotations

import re
import unicodedata

__all__ = ["REF_ALPHABET", "REF_PATTERN", "normalise_ref", "plain_text"]

# Same alphabet as model.new_ref (no 0/O, 1/I/L, U); repeated here so parsing stays a pure function
# of its input, and checked against model's by the tests.
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_PATTERN = re.compile(rf"[{REF_ALPHABET}]{{4}}-[{REF_ALPHABET}]{{4}}")


# Dashes a phone's keyboard or autocorrect puts where the reference's hyphen was typed: hyphen, non-breaking
# hyphen, figure dash, en dash, em dash, horizontal bar, minus sign (NFKC already makes the full-width and
# small hyphen-minus plain).
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")


def plain_text(text: str) -> str:
    """A reply's words as they were meant: full-width letters and digits (a phone's other keyboard) as plain
    ones (NFKC), and any dash as the hyphen."""
    return unicodedata.normalize("NFKC", text).translate(_DASHES)


def normalise_ref(text: str) -> str | None:
    """'k7m4qx9z', 'K7M4 QX9Z', 'k7m4-qx9z', 'K7M4–QX9Z' (an en dash) or 'Ｋ７Ｍ４－ＱＸ９Ｚ' -> 'K7M4-QX9Z'; None if
    it cannot be a reference."""
    body = re.sub(r"[\s-]", "", plain_text(text)).upper()
    if len(body) != 8 or any(ch not in REF_ALPHABET for ch in body):
        return None
    return f"{body[:4]}-{body[4:]}"
