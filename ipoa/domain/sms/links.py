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


def new_link_code() -> str:
    return "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))


def normalise_link_code(text: str) -> str | None:
    """A code as typed or tapped ('k7m4qx9zab' or 'K7M4QX9ZAB') -> 'K7M4QX9ZAB'; None if it cannot be one."""
    code = (text or "").strip().upper()
    if len(code) != LINK_CODE_LENGTH or any(ch not in LINK_CODE_ALPHABET for ch in code):
        return None
    return code
