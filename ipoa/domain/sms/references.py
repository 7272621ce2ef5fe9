"""Call references as a professional reads and types them back in a reply."""
from __future__ import annotations

import re

__all__ = ["REF_ALPHABET", "REF_PATTERN", "normalise_ref"]

# Same alphabet as model.new_ref (no 0/O, 1/I/L, U); repeated here so parsing stays a pure function
# of its input, and checked against model's by the tests.
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_PATTERN = re.compile(rf"[{REF_ALPHABET}]{{4}}-[{REF_ALPHABET}]{{4}}")


def normalise_ref(text: str) -> str | None:
    """'k7m4qx9z', 'K7M4 QX9Z' or 'k7m4-qx9z' -> 'K7M4-QX9Z'; None if it cannot be a reference."""
    body = re.sub(r"[\s-]", "", text).upper()
    if len(body) != 8 or any(ch not in REF_ALPHABET for ch in body):
        return None
    return f"{body[:4]}-{body[4:]}"
