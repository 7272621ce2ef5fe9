"""The secure-page links texts carry: `<link base>/r/<code>`."""
from __future__ import annotations

import secrets

from .references import REF_ALPHABET

__all__ = ["DEFAULT_LINK_BASE", "LINK_CODE_ALPHABET", "LINK_CODE_LENGTH", "LINK_TOKEN_LENGTH", "LINK_TOKEN_MIN",
           "new_link_code", "normalise_link_code"]

LINK_TOKEN_LENGTH = 22  # the longest token a link may carry: the referral id in base64url, as texts had it
LINK_TOKEN_MIN = 16  # shorter tokens could be guessed
DEFAULT_LINK_BASE = "https://ipoa.example.nhs.uk"

# The short codes texts carry from now on (`<link base>/r/<code>`). Random, kept in the database with what
# they lead to (service/sms.py), not derived from anything: 10 characters of the references' alphabet (no
# 0/O, 1/I/L, U, so a code read off a lock screen and typed is typed right), 30^10 = 5.9e14 codes (49
# bits). The page behind a link needs sign-in and then the access policy's say-so, so a code is a pointer,
# not a key: guessing one gains nothing the guesser may not already see, and even so a signed-in guesser
# making 100 guesses a second for a year against 10 million codes in use would hit about 50 pointers.
# Twelve characters fewer than the 22-character tokens: what lets a real NHS host name (40 characters)
# fit every template (docs/security.md, "Links in texts").
LINK_CODE_ALPHABET = REF_ALPHABET
LINK_CODE_LENGTH = 10


# A code is drawn from one read of the system's randomness, not one a character (secrets.choice asks the
# kernel every time: ten system calls a code, a relay's batch of texts making a code each;
# docs/performance.md, SMS). Bytes at or above _UNBIASED are dropped, so each character stays uniform over
# the alphabet (256 is not a multiple of 30); 16 bytes leave fewer than 10 usable about once in 40,000 codes,
# and then more are read.
_UNBIASED = 256 - 256 % len(LINK_CODE_ALPHABET)


def new_link_code() -> str:
    picked: list[str] = []
    while len(picked) < LINK_CODE_LENGTH:
        picked += [LINK_CODE_ALPHABET[b % len(LINK_CODE_ALPHABET)]
                   for b in secrets.token_bytes(16) if b < _UNBIASED]
    return "".join(picked[:LINK_CODE_LENGTH])


def normalise_link_code(text: str) -> str | None:
    """A code as typed or tapped ('k7m4qx9zab' or 'K7M4QX9ZAB') -> 'K7M4QX9ZAB'; None if it cannot be one."""
    code = (text or "").strip().upper()
    if len(code) != LINK_CODE_LENGTH or any(ch not in LINK_CODE_ALPHABET for ch in code):
        return None
    return code
