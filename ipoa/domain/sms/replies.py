"""Replies from professionals: `ACCEPT <ref>`, `DECLINE <ref> <reason>`, `DONE <ref>`, `STATUS <ref>`, the
opt-out keywords and `OFF` / `ON` (unavailable within a shift, and back), parsed into a command; acting on
them belongs to the service layer."""
from __future__ import annotations

from dataclasses import dataclass

from .references import normalise_ref, plain_text

__all__ = ["COMMANDS", "Reply", "parse_reply"]

COMMANDS = ("ACCEPT", "DECLINE", "DONE", "STATUS", "STOP", "START", "HELP", "OFF", "ON", "UNKNOWN")

# Twilio's default keywords. Like Twilio, only a message that is the keyword alone counts: a
# professional writing "Cancel K7M4-QX9Z, visit done" must not be opted out of alerts.
_KEYWORDS = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "STOP"),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
    # Ours, not Twilio's (docs/domain.md, "Rotas"): unavailable for the rest of the shift, and back. Alone
    # too, so "Off to a visit" or "On my way" changes nothing; none of Twilio's keywords is either word.
    "OFF": "OFF",
    "ON": "ON",
}
_REF_COMMANDS = ("ACCEPT", "DECLINE", "DONE", "STATUS")
_PUNCTUATION = ".,;:!?#\"'()"


@dataclass(frozen=True)
class Reply:
    """A parsed reply. `command` is one of COMMANDS; `ref` is normalised ('K7M4-QX9Z') when one was
    read; `reason` is set only for a complete DECLINE.

    Anything that cannot be acted on as written is UNKNOWN, so a caller that only looks at `command`
    never changes a referral on a partial reply. `problem` says why, for the audit and for choosing
    the neutral reply: 'unknown_command', 'missing_ref', 'bad_ref' or 'missing_reason'.
    """

    command: str
    ref: str | None = None
    reason: str | None = None
    problem: str | None = None


def parse_reply(body: str) -> Reply:
    """Read `ACCEPT <ref>`, `DECLINE <ref> <reason>`, `DONE <ref>`, `STATUS <ref>`, the opt-out
    keywords and `OFF` / `ON`, forgiving case, spacing, stray punctuation, a phone's full-width letters and other
    dashes (references.plain_text) and a reference typed without its dash (or split by a space). Words after the
    reference of ACCEPT, DONE and STATUS are ignored."""
    words = (body or "").split()
    if not words:
        return Reply("UNKNOWN", problem="unknown_command")
    command = plain_text(words[0]).strip(_PUNCTUATION).upper()

    if command in _KEYWORDS:
        if len(words) == 1:
            return Reply(_KEYWORDS[command])
        return Reply("UNKNOWN", problem="unknown_command")
    if command not in _REF_COMMANDS:
        return Reply("UNKNOWN", problem="unknown_command")

    rest = [w.strip(_PUNCTUATION) for w in words[1:]]
    rest = [w for w in rest if w]
    if not rest:
        return Reply("UNKNOWN", problem="missing_ref")
    ref, used = normalise_ref(rest[0]), 1
    if ref is None and len(rest) > 1:
        ref, used = normalise_ref(rest[0] + rest[1]), 2
    if ref is None:
        return Reply("UNKNOWN", problem="bad_ref")

    if command != "DECLINE":
        return Reply(command, ref)
    # The reason keeps the sender's words (it goes to the audit, never into an SMS).
    reason = " ".join(words[1:][_raw_index(words[1:], used):]).strip()
    if not any(ch.isalnum() for ch in reason):
        return Reply("UNKNOWN", ref, problem="missing_reason")
    return Reply("DECLINE", ref, reason)


def _raw_index(raw: list[str], used: int) -> int:
    """Index in `raw` just past the `used` non-empty (after punctuation strip) words."""
    seen = 0
    for i, word in enumerate(raw):
        if word.strip(_PUNCTUATION):
            seen += 1
            if seen == used:
                return i + 1
    return len(raw)
