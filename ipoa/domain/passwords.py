"""What makes a password acceptable: long enough, not one of the passwords attackers try first, and not
the username. Following NCSC and NIST SP 800-63B: length and a check against known common passwords
rather than composition rules (a capital, a digit, a symbol), which push people to "Password1!".

The list of common passwords is ipoa/data/common-passwords.txt.gz: the 19,640 passwords of Django's
CommonPasswordValidator (BSD-3-Clause; Royce Williams' list of the 20,000 most common passwords,
lowercased and deduplicated), see ipoa/data/README.md. It is checked case-insensitively.

Every message says what is wrong in plain English and never repeats the password."""
from __future__ import annotations

import functools
import gzip
import string

from ..paths import DATA

MIN_LENGTH = 12
# The sign-in form takes at most 200 characters: a longer password could never be used to sign in.
MAX_LENGTH = 200
# Fewer different characters than this is a pattern, not a password ("aaaaaaaaaaaa", "121212121212").
MIN_DISTINCT = 5
# A username this short ("jo") would refuse too many good passwords that merely contain it somewhere;
# the password is still refused if it IS the username.
USERNAME_IN_PASSWORD_MIN = 3

COMMON_PASSWORDS_FILE = DATA / "common-passwords.txt.gz"
_TRAILING = string.digits + string.punctuation + " "


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lowercased, loaded once per process (about 20,000 entries, a few MB)."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as f:
        return frozenset(line.strip().lower() for line in f if line.strip())


def problem(password: str | None, username: str | None = None) -> str | None:
    """Why this password is refused, in plain English; None if it is acceptable."""
    if not password or len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters (the sign-in page takes no more)"
    lowered = password.strip().lower()
    if username:
        name = username.strip().lower()
        if lowered == name or (len(name) >= USERNAME_IN_PASSWORD_MIN and name in lowered):
            return "a password must not contain the username"
    common = common_passwords()
    if lowered in common:
        return "that is one of the most commonly used passwords; choose another"
    # "password1234", "dragon2026!": a common password with digits or symbols added at the end.
    base = lowered.rstrip(_TRAILING)
    if base != lowered and base in common:
        return "that is a commonly used password with numbers or symbols added; choose another"
    if len(set(lowered)) < MIN_DISTINCT or _repeats(lowered):
        return "that password repeats a few characters over and over; choose another"
    return None


def _repeats(text: str) -> bool:
    """The same group of characters over and over: "abcabcabcabc", "passwordpassword"."""
    n = len(text)
    return any(n % size == 0 and text == text[:size] * (n // size) for size in range(1, n // 2 + 1))
