"""GSM-7 (3GPP TS 23.038, formerly GSM 03.38): which characters an SMS may carry, how many septets they
cost, and how many parts a text needs."""
from __future__ import annotations

__all__ = ["SMS_LIMIT", "gsm7_length", "is_gsm7", "non_gsm7", "segments"]

# The default alphabet, in code-point order 0x00-0x7F. 0x1B (ESC) is left out: it only introduces an
# extension character and is never a character of the text.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Sent as ESC + one septet, so each costs two of the 160.
_GSM7_EXTENSION = frozenset("^{}\\[~]|€")

SMS_LIMIT = 160  # one GSM-7 segment: docs/domain.md asks for one segment per message
_GSM7_PART = 153  # a multipart message spends 7 septets of each part on the concatenation header
_UCS2_SINGLE = 70
_UCS2_PART = 67


def is_gsm7(text: str) -> bool:
    """True if every character is in the GSM-7 default alphabet or its extension table."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)


def gsm7_length(text: str) -> int:
    """Length in septets: extension characters count two. Raises ValueError if not GSM-7."""
    total = 0
    for ch in text:
        if ch in _GSM7_BASIC:
            total += 1
        elif ch in _GSM7_EXTENSION:
            total += 2
        else:
            raise ValueError(f"not a GSM-7 character: {ch!r} (U+{ord(ch):04X})")
    return total


def segments(text: str) -> int:
    """How many SMS parts the text needs: GSM-7 when it fits that alphabet, otherwise UCS-2.

    An empty text still costs one part if sent. Multipart counting packs whole characters, because
    an escape pair (GSM-7) or a surrogate pair (UCS-2) is never split across parts, which can make
    a long message one part longer than a plain division suggests.
    """
    if is_gsm7(text):
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        single, part = SMS_LIMIT, _GSM7_PART
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # UTF-16 code units
        single, part = _UCS2_SINGLE, _UCS2_PART
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def non_gsm7(text: str) -> list[str]:
    """The characters of `text` outside GSM-7, each once in order of appearance, as 'x' (U+0078)."""
    seen: dict[str, None] = {}
    for ch in text:
        if not is_gsm7(ch):
            seen.setdefault(ch)
    return [f"{ch!r} (U+{ord(ch):04X})" for ch in seen]
