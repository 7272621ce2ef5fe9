"""A centre's phone line, from the `voice` block of its entry in workflows/directory.yaml: the greeting, the
optional menu (1: a health or care professional, answered first; 2: the public), where calls go while the
centre's calendar has it closed, and where they overflow to when its queue is too long or nobody is
available to answer. Checked when the directory loads, naming the centre and the key (docs/telephony.md)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints, field_validator, model_validator

from ..input_models import Strict
from ..validation import text_problem

GREETING_MAX = 300  # read aloud before anything else: a long greeting keeps every caller from the queue


@dataclass(frozen=True)
class OutOfHours:
    """While the centre is closed: put the caller through to another centre's number (the Emergency Duty
    Team's, say), or, with no transfer (or that centre closed too), the 999 and 111 advice. Never silence."""

    transfer_to: str | None = None  # a centre code


@dataclass(frozen=True)
class Overflow:
    """Where calls go when this centre cannot answer them soon: into the other centre's queue (`queue`)
    or to its number (`dial`), when the longest wait passes `longest_wait_seconds` or, if
    `when_nobody_available`, no handler of the centre is taking calls."""

    to: str
    via: Literal["queue", "dial"]
    longest_wait_seconds: int | None
    when_nobody_available: bool


@dataclass(frozen=True)
class CentreVoice:
    greeting: str
    menu: bool
    out_of_hours: OutOfHours
    overflow: Overflow | None = None


_Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]


class _OutOfHoursIn(Strict):
    transfer_to: _Code | None = None


class _OverflowIn(Strict):
    to: _Code
    via: Literal["queue", "dial"] = "queue"
    longest_wait_seconds: int | None = Field(default=None, ge=1, le=3600)
    when_nobody_available: StrictBool = False

    @model_validator(mode="after")
    def _a_reason_to_overflow(self) -> _OverflowIn:
        if self.longest_wait_seconds is None and not self.when_nobody_available:
            raise ValueError("overflow needs longest_wait_seconds, when_nobody_available: true, or both")
        return self


class VoiceIn(Strict):
    """The `voice` block as written in directory.yaml."""

    greeting: str = Field(min_length=1, max_length=GREETING_MAX)
    menu: StrictBool = False
    out_of_hours: _OutOfHoursIn = _OutOfHoursIn()
    overflow: _OverflowIn | None = None

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, v: str) -> str:
        problem = text_problem(v, field="greeting")
        if problem:
            raise ValueError(problem)
        return v.strip()

    def build(self) -> CentreVoice:
        o = self.overflow
        overflow = Overflow(o.to, o.via, o.longest_wait_seconds, o.when_nobody_available) if o else None
        return CentreVoice(self.greeting, self.menu, OutOfHours(self.out_of_hours.transfer_to), overflow)


@dataclass(frozen=True)
class LineFacts:
    """What the check of references needs to know of each centre."""

    phone: str | None
    voice: CentreVoice | None


def reference_problems(centres: Mapping[str, LineFacts]) -> list[str]:
    """Every centre a `voice` block names exists and can take the call: a transfer or an overflow by `dial`
    needs the centre's phone number, an overflow by `queue` a centre whose own line ipoa answers; a centre
    with a `voice` block needs its own number (the one callers ring); none points at itself."""
    problems: list[str] = []
    for code, facts in centres.items():
        voice = facts.voice
        if voice is None:
            continue
        if facts.phone is None:
            problems.append(f"centre {code}: voice needs the centre's phone (the number callers ring)")
        target = voice.out_of_hours.transfer_to
        if target is not None:
            problems += _target(code, "voice.out_of_hours.transfer_to", target, centres, needs_line=False)
        if voice.overflow is not None:
            problems += _target(code, "voice.overflow.to", voice.overflow.to, centres,
                                needs_line=voice.overflow.via == "queue")
    return problems


def _target(code: str, where: str, target: str, centres: Mapping[str, LineFacts], *, needs_line: bool) -> list[str]:
    if target == code:
        return [f"centre {code}: {where}: a centre cannot send its calls to itself"]
    facts = centres.get(target)
    if facts is None:
        return [f"centre {code}: {where}: unknown centre {target!r}"]
    if needs_line and facts.voice is None:
        return [f"centre {code}: {where}: {target} has no voice block, so ipoa holds no queue for it "
                "(use via: dial, or give it one)"]
    if facts.phone is None:
        return [f"centre {code}: {where}: {target} has no phone number to put the caller through to"]
    return []
