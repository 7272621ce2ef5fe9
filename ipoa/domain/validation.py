"""Checks on identifiers and contact details that call intake relies on."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date

import nhs_number
import phonenumbers

from .postcodes import normalise_postcode

__all__ = ["normalise_nhs_number", "normalise_uk_phone", "normalise_uk_mobile", "normalise_postcode",
           "TEXT_NOT_ALLOWED", "LINE_BREAK_NOT_ALLOWED", "text_problem", "text_errors", "is_clean_text",
           "EARLIEST_DAY", "LATEST_DAY", "day_in_range"]

# Ofcom keeps 07700 900000-900999 for drama and examples: never connected, so the example directory,
# the demo and the tests use them. phonenumbers (rightly) calls them unallocated.
_FICTION_MOBILES = range(447700900000, 447700901000)
# ... and 01632 960000-960999, the drama landlines: the example directory's centre numbers use them, and
# the caller's phone message gives one as its example.
_FICTION_LANDLINES = range(441632960000, 441632961000)


def normalise_nhs_number(raw: str) -> str | None:
    """Ten digits passing the Modulus 11 check (spaces and dashes allowed), or None."""
    digits = "".join(ch for ch in raw if not ch.isspace() and ch != "-")
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return None
    return digits if nhs_number.is_valid(digits) else None


# Whether a +44 number is valid, as phonenumbers.is_valid_number decides it, without its walk of each region's
# number types one pattern at a time (premium rate, toll free, ..., fixed line, mobile: 17-26 µs a number,
# most of the caller's number's cost on an incoming call; docs/performance.md, "The caller's number without
# phonenumbers' walk of its patterns"). Built once from phonenumbers' own metadata, as it loads it; no
# pattern is written here. What is_valid_number does for country 44, read in phonenumberutil.py:
#   - the number's region (region_code_for_number) is the first of GB, GG, IM, JE (in that order) that
#     either has leading digits the national number starts with (IM: then that region whatever follows), or,
#     having none, finds a type for the number (GB, GG, JE: then it is valid);
#   - valid for a region means a type other than UNKNOWN (_number_type_helper): the national number matches
#     the general description, and then any one of the type descriptions; each description is tried only if
#     its possible lengths (when it names any) hold the number's length, and a type without a pattern never
#     matches. The order of the types decides the type, not validity, except that mobile is never tried
#     when the region's mobile and fixed-line patterns are the same.
# So each region keeps, for each length its general description allows, one pattern: the general one as a
# lookahead, then the patterns of the types that allow that length, mobile and fixed line first. One full
# match of it answers what the walk would (about 1 µs for a number through all four regions).
_NUMBER_TYPES = ("mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                 "pager", "uan", "voicemail")
_Matcher = Callable[[str], re.Match[str] | None]


def _region_matchers(region: str) -> tuple[_Matcher | None, dict[int, _Matcher]] | None:
    """The region's leading digits (a match at the start) and its patterns by length, or None when a table
    by length cannot say what phonenumbers would (no metadata, or a general description naming no lengths:
    any length then)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    general = metadata.general_desc if metadata is not None else None
    if metadata is None or general is None or not general.national_number_pattern or not general.possible_length:
        return None
    types = [desc for name in _NUMBER_TYPES
             if not (name == "mobile" and metadata.same_mobile_and_fixed_line_pattern)
             and (desc := getattr(metadata, name)) is not None and desc.national_number_pattern]
    by_length: dict[int, _Matcher] = {}
    for length in set(general.possible_length):
        patterns = [f"(?:{desc.national_number_pattern})" for desc in types
                    if not desc.possible_length or length in desc.possible_length]
        if patterns:
            by_length[length] = re.compile(
                f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(patterns)})").fullmatch
    leading = re.compile(metadata.leading_digits).match if metadata.leading_digits is not None else None
    return leading, by_length


def _uk_matchers() -> tuple[tuple[_Matcher | None, dict[int, _Matcher]], ...] | None:
    regions = [_region_matchers(region) for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(44, ())]
    if not regions or any(region is None for region in regions):
        return None  # (then phonenumbers decides every number)
    return tuple(region for region in regions if region is not None)


_UK_REGIONS = _uk_matchers()


def _is_valid_uk_number(number: phonenumbers.PhoneNumber) -> bool:
    """phonenumbers.is_valid_number(number), for a number of country 44 in fewer steps."""
    if _UK_REGIONS is None or number.country_code != 44:
        return phonenumbers.is_valid_number(number)
    national = (phonenumbers.national_significant_number(number) if number.italian_leading_zero
                else str(number.national_number))
    length = len(national)
    for leading, by_length in _UK_REGIONS:
        matcher = by_length.get(length)
        if leading is not None:
            if leading(national):
                return matcher is not None and matcher(national) is not None
        elif matcher is not None and matcher(national) is not None:
            return True
    return False


# A UK number in E.164 as Twilio sends a caller's From: read without phonenumbers' parser (a third of this
# check's cost; docs/performance.md, "Voice"), into the same number the parser makes of it (country 44,
# the rest the national number, which cannot start with a 0 here).
_UK_E164 = re.compile(r"\+44[1-9][0-9]{6,12}")
# ... and a UK number as people type it, a 0 and nine or ten digits with spaces anywhere (07911 123456,
# 0116 496 0123), the way most of intake's callers' numbers come (docs/performance.md, "Intake's app CPU
# cut"): the parser makes of it the same number, the digits after the 0. Not of eight digits after the 0
# (it keeps the 0 then), so those, and anything else, still go through the parser.
_UK_NATIONAL = re.compile(r"0[1-9][0-9]{8,9}")


def normalise_uk_phone(raw: str) -> str | None:
    """A valid UK number in E.164, or None."""
    if _UK_E164.fullmatch(raw):
        parsed = phonenumbers.PhoneNumber(country_code=44, national_number=int(raw[3:]))
    elif _UK_NATIONAL.fullmatch(compact := raw.replace(" ", "")):
        parsed = phonenumbers.PhoneNumber(country_code=44, national_number=int(compact[1:]))
    else:
        try:
            parsed = phonenumbers.parse(raw, "GB")
        except phonenumbers.NumberParseException:
            return None
    if parsed.country_code != 44:
        return None
    fiction = int(f"44{parsed.national_number}")
    if not _is_valid_uk_number(parsed) and fiction not in _FICTION_MOBILES \
            and fiction not in _FICTION_LANDLINES:
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


# --- free text from outside -----------------------------------------------------------------------------
# Every string a user, an API client or a text message supplies is checked before it is stored. Refused:
#   - control characters (C0, DEL, C1): PostgreSQL cannot store a NUL at all (psycopg refuses it, which
#     was a 500), and the rest have no place in a name or a note; a tab or a line break (Unicode's line and
#     paragraph separators, U+2028 and U+2029, included) is allowed in multi-line text (a summary, a
#     reason, a note) only;
#   - bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they make text
#     display in another order than it is stored ("Trojan Source"), so a reader could be misled;
#   - unpaired surrogates (U+D800-U+DFFF, possible through a JSON "\ud800" escape): no encoding can
#     store them, so the database driver fails on them.
# The messages name what is wrong and never repeat the value.
_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_MULTI_LINE_BAD = re.compile(f"[{_ALWAYS}]")
_SINGLE_LINE_BAD = re.compile(f"[{_ALWAYS}\t\n\r\u2028\u2029]")
_NOT_ALLOWED = ("contains a character that is not allowed (a control character such as NUL, or a "
                "bidirectional-text override): remove it and try again.")
TEXT_NOT_ALLOWED = "This text " + _NOT_ALLOWED
FIELD_NAME_NOT_ALLOWED = "A field name " + _NOT_ALLOWED
LINE_BREAK_NOT_ALLOWED = "This text must be on one line: remove the tab or line break."


def _label(field: str | None) -> str:
    """'subject.given_name' -> 'The subject given name': the messages say which field (a page's summary of
    errors lists messages without their fields), never what was typed."""
    if not field:
        return "This text"
    words = " ".join(p for p in field.replace("_", " ").split(".") if not p.isdigit())
    return f"The {words}" if words else "This text"


# Invisible characters with no place in a name, an address or a code (the `Line` fields of
# service/inputs.py): a zero-width space (U+200B), a word joiner (U+2060), a zero-width no-break space or
# byte-order mark (U+FEFF). They come with text pasted from an email or a web page, and make "Smith" and
# "Sm<U+200B>ith" two names that look the same, so a search or a check for a duplicate misses one. The
# joiners some scripts need (U+200C, U+200D) and the direction marks (U+200E, U+200F) are allowed, and so is
# any of these in multi-line text, where nothing is matched on them.
INVISIBLE = r"\u200b\u2060\ufeff"  # as a regular expression (and JSON Schema pattern) writes them
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def invisible_problem(value: str, *, field: str | None = None) -> str | None:
    """Why this one-line value may not be stored because of an invisible character, or None."""
    if _INVISIBLE.search(value) is None:
        return None
    return (f"{_label(field)} contains an invisible character, such as a zero-width space, which can come "
            "with copied text: delete it and type it again.")


# Characters that show nothing by themselves: format characters (direction marks, joiners, the soft hyphen,
# tag characters: Unicode category Cf), marks with no letter to sit on (Mn, Me), spaces, and the "letters"
# and symbols that are drawn blank (the Hangul fillers, the blank Braille pattern). A value made of nothing
# else looks empty on every page: a person "named" U+200E, or a summary of U+3164, was stored as if typed.
_SHOWS_NOTHING = frozenset(("Cf", "Mn", "Me", "Cc", "Zs", "Zl", "Zp"))
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def looks_blank(value: str) -> bool:
    """True when no character of the value shows: empty, or only spaces, format characters, marks without a
    letter and blank glyphs. Any letter, digit, punctuation or symbol (an emoji too) shows."""
    return all(ch.isspace() or ch in _BLANK_GLYPHS or unicodedata.category(ch) in _SHOWS_NOTHING for ch in value)


def blank_problem(value: str, *, field: str | None = None) -> str | None:
    """Why a value that is not empty still cannot be stored: nothing of it shows (looks_blank), or None."""
    if value == "" or not looks_blank(value):
        return None
    return (f"{_label(field)} has only invisible characters, which can come with copied text: type it again "
            "with letters or digits, or leave it empty if it is optional.")


def text_problem(value: str, *, multiline: bool = False, field: str | None = None) -> str | None:
    """Why this text may not be stored, or None when it may. multiline: tabs and line breaks allowed.
    field: its name, for the message."""
    if _MULTI_LINE_BAD.search(value) is not None:
        return f"{_label(field)} {_NOT_ALLOWED}"
    if not multiline and _SINGLE_LINE_BAD.search(value) is not None:
        return f"{_label(field)} must be on one line: remove the tab or line break."
    return None


def is_clean_text(value: str, *, multiline: bool = False) -> bool:
    return text_problem(value, multiline=multiline) is None


def text_errors(value: object, path: str = "", *, multiline: bool = True, limit: int = 50) -> dict[str, str]:
    """Every string in a decoded JSON value (keys as well as values) that may not be stored:
    {dotted path: message}, at most `limit` of them. Tabs and line breaks are allowed here (multi-line
    fields have them; single-line fields refuse them in their own checks). Walks with an explicit
    stack, so a deeply nested value cannot exhaust Python's recursion limit."""
    if multiline and _all_clean(value):
        return {}
    errors: dict[str, str] = {}
    stack: list[tuple[str, object]] = [(path, value)]
    while stack and len(errors) < limit:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item, multiline=multiline, field=where)
            if problem:
                errors.setdefault(where or "body", problem)
        elif isinstance(item, dict):
            for key, sub in item.items():
                key_text = key if isinstance(key, str) else str(key)
                if text_problem(key_text, multiline=False):
                    # The key itself is bad: name where it sits, not the key (never echo the value).
                    errors.setdefault(where or "body", FIELD_NAME_NOT_ALLOWED)
                    continue
                stack.append((f"{where}.{key_text}" if where else key_text, sub))
        elif isinstance(item, (list, tuple)):
            for i, sub in enumerate(item):
                stack.append((f"{where}.{i}" if where else str(i), sub))
    return errors


def _all_clean(value: object) -> bool:
    """Whether every string in a decoded JSON value may be stored (keys on one line, values multi-line), by
    one search over all the keys and one over all the values, joined: a character is refused or not
    whatever is beside it. Most bodies are clean, and the walk that names each string's path cost three
    times as much for an intake's body (docs/performance.md, "Intake's app CPU cut")."""
    keys: list[str] = []
    texts: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return False  # (not from JSON: the walk names it)
                keys.append(key)
                stack.append(sub)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return _SINGLE_LINE_BAD.search("".join(keys)) is None and _MULTI_LINE_BAD.search("".join(texts)) is None


# Days a report or an export may cover: the service keeps no records from before 2000, and days near the
# ends of the calendar overflowed date arithmetic (a report's previous period of 0001-01-01: a 500).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


def whole_number(text: str, max_digits: int) -> int | None:
    """`text` as a whole number when it is 1 to max_digits ASCII digits, else None. str.isdigit() alone also
    takes "²" and "①", which int() refuses, and int() refuses more than 4,300 digits: each was a 500."""
    return int(text) if 0 < len(text) <= max_digits and text.isascii() and text.isdigit() else None


def day_in_range(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY
