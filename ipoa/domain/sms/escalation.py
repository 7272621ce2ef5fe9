"""Escalation texts: what a breach is called in one, how often a supervisor may escalate by hand, and
the digest rule that turns a storm of breaches for one number into one text per window."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["BREACH_WORDS", "EscalationSettings", "EscalationWindow", "window_decision"]

# What a breached clock is called in an escalation text (the template's `breach` field).
BREACH_WORDS = {"triage": "not triaged", "acceptance": "not accepted", "response": "no first contact",
                "callback": "callback overdue"}


@dataclass(frozen=True)
class EscalationSettings:
    """ESCALATION_REPEAT_MINUTES: a supervisor may escalate one referral by hand at most this often.
    ESCALATION_DIGEST_SECONDS: escalation texts to one number within this of the last one are held and go
    as one digest text when it ends (0: every escalation texted on its own)."""

    repeat_after: timedelta = timedelta(minutes=10)
    digest_window: timedelta = timedelta(seconds=60)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> EscalationSettings:
        def number(name: str, default: float) -> float:
            raw = env.get(name) or ""
            try:
                value = float(raw) if raw.strip() else default
            except ValueError:
                raise ValueError(f"{name}={raw!r}: a number is needed") from None
            if value < 0:
                raise ValueError(f"{name}={raw!r}: must not be negative")
            return value

        return cls(repeat_after=timedelta(minutes=number("ESCALATION_REPEAT_MINUTES", 10)),
                   digest_window=timedelta(seconds=number("ESCALATION_DIGEST_SECONDS", 60)))


@dataclass(frozen=True)
class EscalationWindow:
    """What is known about one number's escalation texts: when the latest went (or, for a digest, is due
    to go), and the digest still collecting, if any."""

    last_at: datetime | None = None
    digest_id: str | None = None
    held: int = 0


def window_decision(window: EscalationWindow, now: datetime, digest_window: timedelta) -> str:
    """The digest rule, for one escalation to one number:

    * "now": no escalation text to this number in the last digest_window (or digests are off): this one
      goes at once, on its own, and starts a window.
    * "join": within the window and a digest is collecting: it joins that digest (if the digest has
      already been claimed for sending, the caller starts a new one instead: "new").
    * "new": within the window, no digest collecting: a digest is started, due when the window ends
      (digest_window after the latest text), and the next window runs from then.

    So a lone escalation is never delayed; a storm costs one text at once plus one digest per window."""
    if digest_window <= timedelta(0) or window.last_at is None or now >= window.last_at + digest_window:
        return "now"
    return "join" if window.digest_id else "new"
