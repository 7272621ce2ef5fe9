"""The telephony measures (issue 15, point 5), per centre, from a period's phone legs: calls offered, answered,
answered within 60 s, abandoned, average speed to answer, longest wait, abandoned calls called back in time.
docs/domain.md ("Telephony measures") defines them and says exactly what counts; this module is that text as
code, over plain rows (the Protocols below say which columns each needs: never the caller's number).

The cohort is the legs that *rang* in the period (arrived_at), followed through to now, as the reports follow
their calls (domain/reporting/measures.py). A leg counts for the centre whose queue it ended in (`queue`: the
receiving centre's after an overflow into its queue); the centre it overflowed from counts it as overflowed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ..reporting.rate import Rate
from ..reporting.shown import pct_text, seconds_text
from . import legs as L

__all__ = ["ANSWER_WITHIN", "CallbackMade", "LegRow", "PhoneMeasures", "TelephonyTargets", "Verdict",
           "by_centre", "phone_measures", "seconds_text", "verdicts"]

# "Answered within 60 s" (docs/domain.md, "Telephony measures": NHS England's standard for 111). 60 s
# exactly is within.
ANSWER_WITHIN = timedelta(seconds=60)


class LegRow(Protocol):
    centre: str              # whose number was rung
    queue: str | None        # whose queue it ended in
    overflowed_from: str | None
    arrived_at: datetime
    enqueued_at: datetime | None
    answered_at: datetime | None
    left_queue_at: datetime | None
    hung_up_at: datetime | None
    outcome: str | None
    call_ref: str | None     # the call made (or matched) to call an abandoned caller back


class CallbackMade(Protocol):  # an audit event of a call leaving awaiting_callback by a callback
    call_ref: str
    at: datetime


@dataclass(frozen=True)
class TelephonyTargets:
    """board.yaml's telephony targets (domain/reporting/board.py loads them). None: no target set."""
    answered_within_60s: float = 95.0       # % of answered calls, at least
    abandoned: float = 3.0                  # % of calls offered, at most
    average_speed_to_answer_seconds: float = 20.0  # at most
    abandoned_called_back: float | None = None     # % of abandoned calls with a number, at least


@dataclass(frozen=True)
class PhoneMeasures:
    centre: str | None
    offered: int = 0                # reached the centre's queue
    answered: int = 0               # bridged to a handler
    answered_within: int = 0        # ... within ANSWER_WITHIN of entering the queue
    abandoned: int = 0              # hung up in the queue after more than the threshold (sla.yaml)
    short_abandons: int = 0         # hung up in the queue within it: not counted as abandoned
    still_waiting: int = 0
    not_held: int = 0               # Twilio could not hold the call (queue full, an error): called back
    overflowed: int = 0             # rang this centre, put through to another centre's queue or number
    out_of_hours: int = 0           # rang this centre while it was closed: the out-of-hours route
    answer_wait_total: float = 0.0  # seconds, over the answered calls
    longest_wait_seconds: float | None = None
    to_call_back: int = 0           # abandoned calls with a number to call back (not withheld)
    called_back_in_time: int = 0    # ... whose callback was made within the promise (20 min)

    @property
    def answered_within_rate(self) -> Rate:
        return Rate(self.answered_within, self.answered)

    @property
    def abandoned_rate(self) -> Rate:
        return Rate(self.abandoned, self.offered)

    @property
    def called_back_rate(self) -> Rate:
        return Rate(self.called_back_in_time, self.to_call_back)

    @property
    def withheld(self) -> int:
        """Abandoned calls nobody can call back (a withheld number, or not a UK one)."""
        return self.abandoned - self.to_call_back

    @property
    def longest_wait_text(self) -> str:
        return seconds_text(self.longest_wait_seconds)

    @property
    def average_speed_to_answer(self) -> float | None:
        """Seconds: the mean wait of the answered calls."""
        return None if self.answered == 0 else self.answer_wait_total / self.answered


def _wait(leg: LegRow, now: datetime) -> timedelta:
    """How long the caller waited in the queue(s): to the answer, the hang-up or leaving; still waiting: now."""
    assert leg.enqueued_at is not None
    end = leg.answered_at or leg.left_queue_at or leg.hung_up_at or now
    return max(end - leg.enqueued_at, timedelta(0))


def phone_measures(centre: str | None, legs: Iterable[LegRow], callbacks: Iterable[CallbackMade], *,
                   now: datetime, call_back_within: timedelta) -> PhoneMeasures:
    """One centre's measures (None: every centre's together). `legs`: the period's legs (any centre's: those
    that are not this centre's are ignored); `callbacks`: the callbacks made on the calls of abandoned legs,
    oldest first (any others are ignored); `call_back_within`: the callback promised after a hang-up
    (sla.yaml `abandoned_call.call_back_within`)."""
    made: dict[str, list[datetime]] = {}
    for c in callbacks:
        made.setdefault(c.call_ref, []).append(c.at)
    n: dict[str, int] = dict.fromkeys(("offered", "answered", "answered_within", "abandoned", "short_abandons",
                                       "still_waiting", "not_held", "overflowed", "out_of_hours", "to_call_back",
                                       "called_back_in_time"), 0)
    # Summed as timedeltas (whole microseconds): a sum of floats depends on the order of the legs.
    wait_total = timedelta(0)
    longest: float | None = None
    for leg in legs:
        if leg.overflowed_from is not None and (centre is None or leg.overflowed_from == centre):
            n["overflowed"] += 1
        if leg.outcome == L.OUT_OF_HOURS and (centre is None or leg.centre == centre):
            n["out_of_hours"] += 1
        if leg.enqueued_at is None or (centre is not None and leg.queue != centre):
            continue  # never reached this centre's queue: not offered to it
        n["offered"] += 1
        span = _wait(leg, now)
        waited = span.total_seconds()
        longest = waited if longest is None else max(longest, waited)
        if leg.outcome == L.ANSWERED and leg.answered_at is not None:
            n["answered"] += 1
            wait_total += span
            n["answered_within"] += int(span <= ANSWER_WITHIN)
        elif leg.outcome == L.ABANDONED:
            n["abandoned"] += 1
            if leg.call_ref is not None:
                n["to_call_back"] += 1
                hung_up = leg.hung_up_at or leg.left_queue_at
                due = hung_up + call_back_within if hung_up is not None else None
                n["called_back_in_time"] += int(due is not None and any(
                    hung_up is not None and hung_up <= at <= due for at in made.get(leg.call_ref, ())))
        elif leg.outcome == L.SHORT_ABANDON:
            n["short_abandons"] += 1
        elif leg.outcome == L.QUEUE_FAILED:
            n["not_held"] += 1
        elif leg.outcome is None and leg.answered_at is None and leg.left_queue_at is None \
                and leg.hung_up_at is None:
            n["still_waiting"] += 1
    return PhoneMeasures(centre=centre, answer_wait_total=wait_total.total_seconds(), longest_wait_seconds=longest,
                         **n)


def by_centre(centres: Iterable[str], legs: Iterable[LegRow], callbacks: Iterable[CallbackMade], *,
              now: datetime, call_back_within: timedelta) -> dict[str, PhoneMeasures]:
    """Each centre's measures, from one read of the period's legs and callbacks."""
    rows, made = list(legs), list(callbacks)
    return {code: phone_measures(code, rows, made, now=now, call_back_within=call_back_within)
            for code in centres}


@dataclass(frozen=True)
class Verdict:
    """One measure against its target, in words (the colour only repeats them)."""
    key: str
    name: str
    value: float | None
    value_text: str
    detail: str
    target_text: str
    met: bool | None  # None: no data, or no target set

    @property
    def status_text(self) -> str:
        if self.met is None:
            return "No data" if self.value is None else "No target set"
        return "Target met" if self.met else "Target not met"


def _judge(value: float | None, target: float | None, *, higher_is_better: bool) -> bool | None:
    if value is None or target is None:
        return None
    return value >= target if higher_is_better else value <= target


def verdicts(m: PhoneMeasures, targets: TelephonyTargets, *, abandoned_after: timedelta,
             call_back_within: timedelta) -> list[Verdict]:
    """The measures with a target, each judged met or not (sla.yaml's `abandoned_call` names them: the wait
    after which a hang-up is abandoned, the callback promised)."""
    within = m.answered_within_rate
    abandoned = m.abandoned_rate
    back = m.called_back_rate
    promise = int(call_back_within.total_seconds() // 60)
    asa = m.average_speed_to_answer
    back_target = targets.abandoned_called_back
    # Each figure is rounded toward the failing side of its target (domain/reporting/shown.py), so the
    # figure shown never meets a target that its verdict says is not met.
    return [
        Verdict("answered_within_60s", "Answered within 60 s", within.pct,
                pct_text(within.pct, higher_is_better=True),
                f"{within.hits} of {within.total} answered", f"at least {targets.answered_within_60s:g}%",
                _judge(within.pct, targets.answered_within_60s, higher_is_better=True)),
        Verdict("abandoned", f"Abandoned (after {int(abandoned_after.total_seconds())} s)", abandoned.pct,
                pct_text(abandoned.pct, higher_is_better=False),
                f"{abandoned.hits} of {abandoned.total} offered", f"at most {targets.abandoned:g}%",
                _judge(abandoned.pct, targets.abandoned, higher_is_better=False)),
        Verdict("average_speed_to_answer", "Average speed to answer", asa,
                seconds_text(asa, higher_is_better=False),
                f"{m.answered} answered", f"at most {seconds_text(targets.average_speed_to_answer_seconds)}",
                _judge(asa, targets.average_speed_to_answer_seconds, higher_is_better=False)),
        Verdict("abandoned_called_back", f"Abandoned calls called back within {promise} min", back.pct,
                pct_text(back.pct, higher_is_better=True), f"{back.hits} of {back.total}"
                + (f"; {m.withheld} withheld, cannot be called back" if m.withheld else ""),
                "none set" if back_target is None else f"at least {back_target:g}%",
                _judge(back.pct, back_target, higher_is_better=True)),
    ]
