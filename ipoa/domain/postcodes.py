"""UK postcode normalisation.

Call handlers type postcodes as callers say them ("le113ab", "LE11  3AB"); the locality lookup needs one
canonical spelling, and a typo must be caught rather than silently routed as "out of area".
"""
from __future__ import annotations

import re

# The UK government's published postcode pattern (Bulk Data Transfer spec), including the special case
# GIR 0AA. The published form anchors only its first alternative, so the whole pattern is grouped and
# matched with fullmatch; input is upper-cased first, so only the upper-case classes are kept.
_POSTCODE = re.compile(
    r"(GIR 0AA)"
    r"|((([A-Z][0-9]{1,2})"
    r"|(([A-Z][A-HJ-Y][0-9]{1,2})"
    r"|(([A-Z][0-9][A-Z])"
    r"|([A-Z][A-HJ-Y][0-9][A-Z]?))))"
    r" [0-9][A-Z]{2})"
)


def normalise_postcode(raw: str) -> str | None:
    """Canonical form ("LE11 3AB"), or None when `raw` is not a UK postcode."""
    if not isinstance(raw, str):
        return None
    compact = "".join(raw.split()).upper()
    # The inward code is always three characters, which is what makes the spacing recoverable.
    if len(compact) < 5:
        return None
    candidate = f"{compact[:-3]} {compact[-3:]}"
    return candidate if _POSTCODE.fullmatch(candidate) else None


def outward_code(postcode: str) -> str:
    """The district part ("LE11" from "LE11 3AB"); raises ValueError on an invalid postcode."""
    normalised = normalise_postcode(postcode)
    if normalised is None:
        raise ValueError("not a valid UK postcode")  # never the value: it identifies someone
    return normalised.split(" ", 1)[0]
