"""SLA clocks: the policy an administrator edits (workflows/sla.yaml) and the arithmetic that turns a
start instant into a due instant.

Four clocks run: triage (from the call being logged, on the receiving centre's calendar), acceptance
(from the referral being sent, on the service's calendar), response (from acceptance, per service) and
the promised callback. Rule kinds are documented in the header of workflows/sla.yaml. Everything here is
pure: instants in (any timezone) and out (UTC); naive datetimes are refused.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from . import meaning
from .calendar import (
    LONDON,
    Calendar,
    add_open_time,
    local_date,
    next_working_day,
    parse_time,
    require_aware,
    working_day_close,
    working_day_of,
)
from .directory import Directory
from .input_models import Strict, describe_validation_errors
from .urgency import URGENCIES

if TYPE_CHECKING:
    from .workflow import WorkflowDefinition

UTC = UTC
CLOCK_KINDS = ("triage", "acceptance", "response", "callback")
RULE_KINDS = ("elapsed", "open_hours", "working_days", "same_working_day", "next_day")


class SlaPolicyError(ValueError):
    """The SLA policy data is invalid; the message names the source and the problem."""


# --- rules ---------------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class Elapsed:
    """A fixed duration of real time, whatever the calendar says."""

    duration: timedelta
    text: str  # as written, normalised: "15 min", "48 h", "28 days"
    kind: ClassVar[str] = "elapsed"

    def due(self, start: datetime, calendar: Calendar) -> datetime:
        return start.astimezone(UTC) + self.duration

    def describe(self, calendar_label: str) -> str:
        return self.text


@dataclass(frozen=True)
class OpenHours:
    """Hours of the calendar's open time, from the start or from the next opening if closed."""

    hours: float
    kind: ClassVar[str] = "open_hours"

    def due(self, start: datetime, calendar: Calendar) -> datetime:
        return add_open_time(calendar, start, timedelta(hours=self.hours))

    def describe(self, calendar_label: str) -> str:
        return f"{self.hours:g} h of open time ({calendar_label})"


@dataclass(frozen=True)
class WorkingDays:
    """By the close of the Nth working day after the start's working day."""

    days: int
    kind: ClassVar[str] = "working_days"

    def due(self, start: datetime, calendar: Calendar) -> datetime:
        day = working_day_of(calendar, start)
        for _ in range(self.days):
            day = next_working_day(calendar, day)
        return _close(calendar, day)

    def describe(self, calendar_label: str) -> str:
        return f"{_plural(self.days, 'working day', 'working days')} ({calendar_label})"


@dataclass(frozen=True)
class SameWorkingDay:
    """By the close of the start's working day; from the cut-off (local time) on, the next one's."""

    cut_off: time | None = None
    kind: ClassVar[str] = "same_working_day"

    def due(self, start: datetime, calendar: Calendar) -> datetime:
        begins = calendar.next_open(start)
        day = local_date(begins)
        if self.cut_off is not None and begins.astimezone(LONDON).time() >= self.cut_off:
            day = next_working_day(calendar, day)
        return _close(calendar, day)

    def describe(self, calendar_label: str) -> str:
        cut = f", cut-off {self.cut_off:%H:%M}" if self.cut_off is not None else ""
        return f"same working day{cut} ({calendar_label})"


@dataclass(frozen=True)
class NextDay:
    """By the close of the first working day after the start's London date."""

    kind: ClassVar[str] = "next_day"

    def due(self, start: datetime, calendar: Calendar) -> datetime:
        return _close(calendar, next_working_day(calendar, local_date(start)))

    def describe(self, calendar_label: str) -> str:
        return f"next day ({calendar_label})"


Rule = Elapsed | OpenHours | WorkingDays | SameWorkingDay | NextDay


def _close(calendar: Calendar, day: date) -> datetime:
    close = working_day_close(calendar, day)
    if close is None:  # next_working_day / working_day_of only return days with opening time
        raise AssertionError(f"{day} is not a working day")
    return close


# --- the policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """One running clock."""

    kind: str  # "triage" | "acceptance" | "response" | "callback"
    due_at: datetime  # UTC
    rule: str  # human-readable, e.g. "urgent: 15 min", "routine: 1 working day (DN calendar)"


CLOCK_KINDS = ("triage", "acceptance", "response", "callback")
CLOCK_SUBJECTS = {"triage": "call", "callback": "call", "acceptance": "referral", "response": "referral"}


@dataclass(frozen=True)
class ClockBinding:
    """Where a clock runs: while its subject (a call or a referral, by workflow name) is in a state tagged
    `runs_in` (domain/meaning.py) in the subject's own workflow version, so a state renamed in a new version
    needs no change to sla.yaml and a record still on the old version keeps its clock. Entering those
    states from outside starts it, leaving them stops it, and a transition with an effect in `restarts_on`
    starts it afresh (move_centre, a transfer: the new centre's triage clock)."""

    kind: str
    workflow: str
    runs_in: str  # a state tag
    restarts_on: frozenset[str] = frozenset()  # effects

    def states(self, definition: WorkflowDefinition) -> frozenset[str]:
        """The states of this version the clock runs in."""
        return definition.states_tagged(self.runs_in)

    def restart_triggers(self, definition: WorkflowDefinition) -> frozenset[str]:
        return frozenset(t.trigger for t in definition.transitions if self.restarts_on.intersection(t.effects))

    def change(self, definition: WorkflowDefinition, from_state: str | None, to_state: str,
               trigger: str) -> str | None:
        """"start", "stop" or None for a transition of this binding's workflow (in `definition`'s version)."""
        states = self.states(definition)
        was, now = from_state in states, to_state in states
        if now and (not was or trigger in self.restart_triggers(definition)):
            return "start"
        if was and not now:
            return "stop"
        return None


@dataclass(frozen=True)
class AbandonedCalls:
    """A caller who hangs up while queued (Twilio Voice, docs/telephony.md): abandoned after waiting more
    than `after` (shorter waits are not counted, docs/domain.md "Telephony measures"), and promised a
    callback within `call_back_within` of hanging up: the call's callback clock, escalated like any promised
    callback (`callback.overdue_after` after the promised time)."""

    after: timedelta = timedelta(seconds=5)
    call_back_within: timedelta = timedelta(minutes=20)
    call_back_text: str = "20 min"


class SlaPolicy:
    def __init__(
        self,
        triage: Mapping[str, Rule],
        acceptance: Mapping[str, Rule],
        response: Mapping[str, Mapping[str, Rule]],
        callback_overdue_after: timedelta,
        callback_text: str = "",
        clocks: Mapping[str, ClockBinding] | None = None,
        abandoned: AbandonedCalls | None = None,
    ):
        # Where each clock runs is data (sla.yaml `clocks`, checked against the workflows on load): no
        # state names here. A policy built without bindings keeps no clock.
        self.clocks = dict(clocks or {})
        self.triage = dict(triage)
        self.acceptance = dict(acceptance)
        self.response = {code: dict(rules) for code, rules in response.items()}
        self.callback_overdue_after = callback_overdue_after
        self._callback_text = callback_text or f"{callback_overdue_after}"
        self.abandoned = abandoned or AbandonedCalls()

    def triage_due(self, urgency: str, logged_at: datetime, centre_calendar: Calendar) -> Clock:
        rule = self.triage[_urgency(urgency)]
        return _clock("triage", urgency, rule, logged_at, centre_calendar, "centre calendar")

    def acceptance_due(self, urgency: str, sent_at: datetime, service_calendar: Calendar) -> Clock:
        rule = self.acceptance[_urgency(urgency)]
        return _clock("acceptance", urgency, rule, sent_at, service_calendar, "service calendar")

    def response_due(
        self, service: str, urgency: str, accepted_at: datetime, service_calendar: Calendar
    ) -> Clock:
        if service not in self.response:
            raise ValueError(f"no response target for service {service!r}")
        rule = self.response[service][_urgency(urgency)]
        return _clock("response", urgency, rule, accepted_at, service_calendar, f"{service} calendar")

    def callback_due(self, promised_at: datetime) -> Clock:
        require_aware(promised_at)
        return Clock(
            "callback",
            promised_at.astimezone(UTC),
            f"promised callback: escalates {self._callback_text} after the promised time",
        )

    def callback_escalates_at(self, promised_at: datetime) -> datetime:
        require_aware(promised_at)
        return promised_at.astimezone(UTC) + self.callback_overdue_after

    def __repr__(self) -> str:
        return f"SlaPolicy(services={sorted(self.response)})"


def _urgency(urgency: str) -> str:
    if urgency not in URGENCIES:
        raise ValueError(f"unknown urgency {urgency!r}; known: {', '.join(URGENCIES)}")
    return urgency


def _clock(kind: str, urgency: str, rule: Rule, start: datetime, calendar: Calendar, label: str) -> Clock:
    require_aware(start)
    return Clock(kind, rule.due(start, calendar).astimezone(UTC), f"{urgency}: {rule.describe(label)}")


def describe_remaining(due_at: datetime, now: datetime) -> str:
    """"due in 12 min", "overdue by 1 h 5 min", "due now"; whole minutes, rounded down."""
    require_aware(due_at)
    require_aware(now)
    delta = due_at - now
    if delta == timedelta(0):
        return "due now"
    text = describe_span(abs(delta))
    return f"due in {text}" if delta > timedelta(0) else f"overdue by {text}"


def describe_span(span: timedelta) -> str:
    """"under 1 min", "12 min", "1 h 5 min", "2 days 3 h"; whole minutes, rounded down."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if minutes == 0:
        return "under 1 min"
    if days:
        return _plural(days, "day", "days") + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


# --- loading -------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?")
_DURATION_HINT = 'use a number and unit, e.g. "15m", "2h", "1h30m", "28d"'


class _CallbackIn(Strict):
    overdue_after: Any


class _AbandonedIn(Strict):
    after_seconds: int = 5
    call_back_within: Any = "20m"


class _ClockIn(Strict):
    workflow: str
    runs_in: str
    restarts_on: list[str] = []


class _PolicyIn(Strict):
    clocks: dict[str, _ClockIn]
    triage: dict[str, Any]
    acceptance: dict[str, Any]
    response: dict[str, Any]
    callback: _CallbackIn
    abandoned_call: _AbandonedIn | None = None  # optional: the defaults of AbandonedCalls


def parse_duration(value: Any, *, allow_zero: bool = False) -> tuple[timedelta, str]:
    """"15m", "2h", "1h30m", "28d" -> (timedelta, "1 h 30 min"). Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r} ({_DURATION_HINT})")
    match = _DURATION.fullmatch(value.strip())
    if not value.strip() or not match or not any(match.groups()):
        raise ValueError(f"bad duration {value!r} ({_DURATION_HINT})")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if duration <= timedelta(0) and not (allow_zero and duration == timedelta(0)):
        raise ValueError(f"bad duration {value!r}: must be more than zero")
    parts = [
        _plural(days, "day", "days") if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
    ]
    return duration, " ".join(p for p in parts if p) or "0 min"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_rule(raw: Any) -> Rule:
    """One rule: {elapsed: 2h}, {open_hours: 4}, {working_days: 1}, same_working_day,
    {same_working_day: {cut_off: "16:00"}} or next_day. Raises ValueError naming the problem."""
    kinds = ", ".join(RULE_KINDS)
    if isinstance(raw, str):
        name = raw.strip()
        if name == "same_working_day":
            return SameWorkingDay()
        if name == "next_day":
            return NextDay()
        if name in RULE_KINDS:
            raise ValueError(f"rule kind {name!r} needs a value, e.g. {{{name}: ...}}")
        raise ValueError(f"unknown rule kind {name!r} (use {kinds})")
    if not isinstance(raw, Mapping) or len(raw) != 1:
        got = f"keys {', '.join(map(repr, raw))}" if isinstance(raw, Mapping) and raw else repr(raw)
        raise ValueError(f"a rule is one kind with its value, e.g. {{elapsed: 2h}}; got {got}")
    ((kind, value),) = raw.items()
    if kind not in RULE_KINDS:
        raise ValueError(f"unknown rule kind {kind!r} (use {kinds})")
    if kind == "elapsed":
        return Elapsed(*parse_duration(value))
    if kind == "open_hours":
        if not _is_number(value) or not 0 < value <= 24 * 366:
            raise ValueError(f"open_hours must be a positive number of hours, got {value!r}")
        return OpenHours(float(value))
    if kind == "working_days":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 366:
            raise ValueError(f"working_days must be a whole number from 1, got {value!r}")
        return WorkingDays(value)
    if kind == "same_working_day":
        if value is None:
            return SameWorkingDay()
        if not isinstance(value, Mapping) or set(value) - {"cut_off"}:
            raise ValueError(f'same_working_day takes only {{cut_off: "HH:MM"}}, got {value!r}')
        if value.get("cut_off") is None:
            return SameWorkingDay()
        try:
            return SameWorkingDay(parse_time(value["cut_off"]))
        except ValueError as exc:
            raise ValueError(f"same_working_day cut_off: {exc}") from None
    # next_day
    if value not in (None, {}):
        raise ValueError(f"next_day takes no value (write just next_day), got {value!r}")
    return NextDay()


class _Loader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str) -> SlaPolicyError:
        return SlaPolicyError(f"{self.source}: {where}: {problem}")

    def rule(self, where: str, raw: Any) -> Rule:
        try:
            return parse_rule(raw)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from None

    def per_urgency(self, where: str, raw: Mapping[str, Any]) -> dict[str, Rule]:
        for key in raw:
            if key not in URGENCIES:
                raise self.fail(where, f"unknown urgency {key!r} (use {', '.join(URGENCIES)})")
        for urgency in URGENCIES:
            if urgency not in raw:
                raise self.fail(where, f"no rule for urgency {urgency!r}")
        return {u: self.rule(f"{where}.{u}", raw[u]) for u in URGENCIES}

    def response(self, raw: Mapping[str, Any], directory: Directory) -> dict[str, dict[str, Rule]]:
        for code in raw:
            if code not in directory.services:
                raise self.fail("response", f"unknown service code {code!r} (not in the directory)")
        for code in directory.services:
            if code not in raw:
                raise self.fail("response", f"no response target for service {code!r}")
        result = {}
        for code in directory.services:
            entry = raw[code]
            # Split by urgency when the keys name urgencies; otherwise one rule for every urgency.
            if isinstance(entry, Mapping) and any(k in URGENCIES for k in entry):
                result[code] = self.per_urgency(f"response.{code}", entry)
            else:
                rule = self.rule(f"response.{code}", entry)
                result[code] = dict.fromkeys(URGENCIES, rule)
        return result


def load_sla_policy(data: Any, directory: Directory, source: str = "<sla data>") -> SlaPolicy:
    """Validate the policy against the directory: every service needs a response target, and every
    clock a rule for each urgency."""
    if not isinstance(data, dict):
        raise SlaPolicyError(f"{source}: expected a mapping with triage, acceptance, response and callback")
    try:
        raw = _PolicyIn.model_validate(data)
    except ValidationError as exc:
        raise SlaPolicyError(f"{source}: {describe_validation_errors(exc)}") from None
    loader = _Loader(source)
    try:
        overdue, overdue_text = parse_duration(raw.callback.overdue_after, allow_zero=True)
    except ValueError as exc:
        raise loader.fail("callback.overdue_after", str(exc)) from None
    abandoned = AbandonedCalls()
    if raw.abandoned_call is not None:
        if not 0 <= raw.abandoned_call.after_seconds <= 600:
            raise loader.fail("abandoned_call.after_seconds", "must be a whole number of seconds from 0 to 600")
        try:
            within, within_text = parse_duration(raw.abandoned_call.call_back_within)
        except ValueError as exc:
            raise loader.fail("abandoned_call.call_back_within", str(exc)) from None
        abandoned = AbandonedCalls(timedelta(seconds=raw.abandoned_call.after_seconds), within, within_text)
    clocks = {}
    for kind in CLOCK_KINDS:
        if kind not in raw.clocks:
            raise loader.fail("clocks", f"no binding for the {kind} clock")
    for kind, c in raw.clocks.items():
        if kind not in CLOCK_KINDS:
            raise loader.fail("clocks", f"unknown clock {kind!r} (known: {', '.join(CLOCK_KINDS)})")
        tag = meaning.STATE_TAGS.get(c.runs_in)
        if tag is None or tag.workflow != c.workflow:
            known = ", ".join(sorted(t for t, w in meaning.STATE_TAGS.items() if w.workflow == c.workflow))
            raise loader.fail(f"clocks.{kind}", f"runs_in: {c.runs_in!r} is not a state tag of the "
                                                f"{c.workflow} workflow (known: {known or 'none'})")
        clocks[kind] = ClockBinding(kind, c.workflow, c.runs_in, frozenset(c.restarts_on))
    return SlaPolicy(
        clocks=clocks,
        triage=loader.per_urgency("triage", raw.triage),
        acceptance=loader.per_urgency("acceptance", raw.acceptance),
        response=loader.response(raw.response, directory),
        callback_overdue_after=overdue,
        callback_text=overdue_text,
        abandoned=abandoned,
    )


def check_clock_bindings(policy: SlaPolicy, workflows: Iterable[WorkflowDefinition], source: str) -> None:
    """Every clock's workflow exists, its tag marks at least one state and its effects at least one
    transition in every version of that workflow, and each clock runs on the kind of record it is measured
    on (triage on calls, acceptance on referrals...)."""
    by_name: dict[str, list[WorkflowDefinition]] = {}
    for wf in workflows:
        by_name.setdefault(wf.name, []).append(wf)
    for kind, b in policy.clocks.items():
        where = f"{source}: clocks.{kind}"
        if b.workflow not in by_name:
            raise SlaPolicyError(f"{where}: unknown workflow {b.workflow!r}")
        subject = CLOCK_SUBJECTS[kind]
        for wf in by_name[b.workflow]:
            if (wf.parent is None) != (subject == "call"):
                raise SlaPolicyError(f"{where}: the {kind} clock runs on {subject}s, and {b.workflow!r} "
                                     f"is not the {subject} workflow")
            if not b.states(wf):
                raise SlaPolicyError(f"{where}: {b.workflow} v{wf.version} ({wf.source}) has no state "
                                     f"tagged {b.runs_in!r}")
            effects = {e for t in wf.transitions for e in t.effects}
            for effect in sorted(b.restarts_on - effects):
                raise SlaPolicyError(f"{where}: {b.workflow} v{wf.version} ({wf.source}) has no transition "
                                     f"with the effect {effect!r} (restarts_on)")
