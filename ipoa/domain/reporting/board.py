"""The board view: each headline measure against its target, with a RAG rating, the trend against the
previous period of equal length, and a verdict in words.

The targets are policy, not code: an administrator sets them for the deployment in workflows/board.yaml,
checked with the rest of workflows/ when it is loaded (domain/catalogue.py). Each is the share of cases
meeting an SLA clock of workflows/sla.yaml (docs/domain.md, "SLA clocks"), or a time limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..sla import parse_duration
from ..telephony.measures import PhoneMeasures, TelephonyTargets
from .figures import Rate, Report
from .shown import minutes_text, pct_text, seconds_text

__all__ = ["BoardRow", "BoardTargetError", "BoardTargets", "board", "board_row", "load_board_targets",
           "minutes_text", "phone_rows"]

# Amber: short of the target by no more than this (percentage points; for times, this share of the target).
AMBER_MARGIN_POINTS = 5.0
AMBER_MARGIN_TIME = 0.5
# Trend: a change smaller than this is "no change" (percentage points; for times, this share of the value).
TREND_POINTS = 1.0
TREND_TIME = 0.05


# -- the targets ------------------------------------------------------------------------------------

class BoardTargetError(ValueError):
    """The board's targets file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class BoardTargets:
    triage_in_sla: float  # % of calls triaged (first routing decision) within the triage clock
    accepted_in_sla: float  # % of referrals accepted within the acceptance clock
    acceptance_p90_minutes: float  # 90% of referrals accepted within this many minutes
    responded_in_target: float  # % of accepted referrals with a first visit/contact within the service's target
    sms_delivered: float  # % of texts delivered (of those delivered or failed)
    # The phone lines' (docs/domain.md, "Telephony measures"): optional in board.yaml, that section's figures
    # by default.
    telephony: TelephonyTargets = TelephonyTargets()


# Key in board.yaml's `targets` -> what it is, as an error message says it.
_PERCENT_TARGETS = {
    "triage_in_sla": "% of calls triaged within the triage clock",
    "accepted_in_sla": "% of referrals accepted within the acceptance clock",
    "responded_in_target": "% of accepted referrals with a first visit or contact within the response clock",
    "sms_delivered": "% of texts delivered",
}
_TIME_TARGETS = {"acceptance_p90": "the time within which 90% of referrals are accepted"}
# Optional: the phone lines' targets (key -> TelephonyTargets field, what it is, higher is better).
_PHONE_TARGETS = {
    "calls_answered_within_60s": ("answered_within_60s", "% of answered calls answered within 60 s", True),
    "calls_abandoned": ("abandoned", "% of calls offered abandoned (at most)", False),
    "average_speed_to_answer_seconds": ("average_speed_to_answer_seconds",
                                        "the mean wait of answered calls in seconds (at most)", False),
    "abandoned_called_back": ("abandoned_called_back",
                              "% of abandoned calls called back within the promised time", True),
}


def load_board_targets(data: Any, source: str = "<board data>") -> BoardTargets:
    """Validate board.yaml's content: a `targets` mapping with every target and nothing else; a
    percentage is a number above 0 and at most 100, a time a duration as in sla.yaml ("30m", "1h30m").
    Raises BoardTargetError naming `source` and the field."""
    if not isinstance(data, dict):
        raise BoardTargetError(f"{source}: expected a mapping with one section, targets")
    for key in sorted(map(str, data)):
        if key != "targets":
            raise BoardTargetError(f"{source}: {key}: unknown section (the file has one: targets)")
    if "targets" not in data:
        raise BoardTargetError(f"{source}: targets: missing")
    raw = data["targets"]
    if not isinstance(raw, dict):
        raise BoardTargetError(f"{source}: targets: expected a mapping of target name to value")
    known = {**_PERCENT_TARGETS, **_TIME_TARGETS}
    for key in sorted(map(str, raw)):
        if key not in known and key not in _PHONE_TARGETS:
            names = ", ".join(sorted([*known, *_PHONE_TARGETS]))
            raise BoardTargetError(f"{source}: targets.{key}: unknown target (known: {names})")
    for key in sorted(known):
        if key not in raw:
            raise BoardTargetError(f"{source}: targets.{key}: missing: {known[key]}")

    values: dict[str, float] = {}
    for key, what in _PERCENT_TARGETS.items():
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            raise BoardTargetError(f"{source}: targets.{key}: {value!r} is not a percentage above 0 and at "
                                   f"most 100 ({what})")
        values[key] = float(value)
    try:
        p90, _ = parse_duration(raw["acceptance_p90"])
    except ValueError as exc:
        raise BoardTargetError(f"{source}: targets.acceptance_p90: {exc}") from None
    phone: dict[str, float] = {}
    for key, (name, what, _) in _PHONE_TARGETS.items():
        if key not in raw:
            continue
        value = raw[key]
        ceiling = 3600 if name == "average_speed_to_answer_seconds" else 100
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= ceiling:
            raise BoardTargetError(f"{source}: targets.{key}: {value!r} is not a number above 0 and at most "
                                   f"{ceiling} ({what})")
        phone[name] = float(value)
    return BoardTargets(acceptance_p90_minutes=p90.total_seconds() / 60.0, telephony=TelephonyTargets(**phone),
                        **values)


# -- the rows ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardRow:
    metric: str
    target_text: str
    current: float | None
    current_text: str
    previous: float | None
    previous_text: str
    trend: str  # improving | deteriorating | no change | no data
    trend_text: str
    rag: str  # red | amber | green | none
    rag_text: str
    verdict: str


def board_row(metric: str, target: float | None, current: float | None, previous: float | None, *,
              higher_is_better: bool, unit: str) -> BoardRow:
    """unit: pct, time (minutes) or seconds. target None: none set (the row is graded by nothing, only
    compared with the previous period)."""
    is_time = unit in ("time", "seconds")

    def fmt(v: float | None, toward: bool | None) -> str:
        """toward: round toward the failing side of a target (domain/reporting/shown.py), so that the figure
        shown never meets the target its rating says it misses; None: the target itself, to the nearest."""
        if unit == "seconds":
            return seconds_text(v, higher_is_better=toward)
        if unit == "time":
            return minutes_text(None if v is None else v * 60, higher_is_better=toward)
        return pct_text(v, higher_is_better=toward)

    target_text = ("No target set" if target is None
                   else f"≤ {fmt(target, None)}" if not higher_is_better else f"≥ {fmt(target, None)}")
    sign = 1 if higher_is_better else -1
    if current is None or target is None:
        rag, met = "none", None
    else:
        met = sign * (current - target) >= 0
        margin = target * AMBER_MARGIN_TIME if is_time else AMBER_MARGIN_POINTS
        rag = "green" if met else ("amber" if sign * (target - current) <= margin else "red")
    if current is None or previous is None:
        trend = "no data"
    else:
        threshold = abs(previous) * TREND_TIME if is_time else TREND_POINTS
        delta = sign * (current - previous)
        trend = "no change" if abs(current - previous) < threshold or delta == 0 else (
            "improving" if delta > 0 else "deteriorating")
    if current is None:
        verdict = "No data for this period"
    elif target is None:
        verdict = {"improving": "Performance improving", "deteriorating": "Performance deteriorating",
                   "no change": "No change in performance"}.get(trend, "No previous period to compare")
    elif met:
        verdict = ("Achieving target but performance deteriorating" if trend == "deteriorating"
                   else "On track to achieve target")
    elif trend == "improving":
        verdict = "Performance improving but below target"
    elif trend == "deteriorating":
        verdict = "Performance deteriorating"
    elif trend == "no change":
        verdict = "No improvement in performance"
    else:
        verdict = "Below target; no previous period to compare"
    trend_text = {"improving": "▲ Improving", "deteriorating": "▼ Deteriorating",
                  "no change": "► No change", "no data": "– No comparison"}[trend]
    if is_time and trend in ("improving", "deteriorating") and current is not None and previous is not None:
        trend_text = ("▼ " if current < previous else "▲ ") + trend.capitalize()
    rag_text = {"green": "Green: target met", "amber": "Amber: just below target",
                "red": "Red: below target",
                "none": "Grey: no data" if current is None else "Grey: no target set"}[rag]
    return BoardRow(metric=metric, target_text=target_text, current=current,
                    current_text=fmt(current, higher_is_better), previous=previous,
                    previous_text=fmt(previous, higher_is_better), trend=trend, trend_text=trend_text,
                    rag=rag, rag_text=rag_text, verdict=verdict)


def _pct(rate: Rate | None) -> float | None:
    return None if rate is None else rate.pct


def board(current: Report, previous: Report, targets: BoardTargets) -> list[BoardRow]:
    rows = []
    if current.scope.calls_apply:
        rows.append(board_row("Calls triaged within SLA", targets.triage_in_sla, _pct(current.triage_in_sla),
                              _pct(previous.triage_in_sla), higher_is_better=True, unit="pct"))

    def p90_minutes(r: Report) -> float | None:
        v = r.time_to_acceptance.p90
        return None if v is None else v / 60.0

    rows += [
        board_row("Referrals accepted within SLA", targets.accepted_in_sla, current.accepted_in_sla.pct,
                  previous.accepted_in_sla.pct, higher_is_better=True, unit="pct"),
        board_row("Time to acceptance, 90th percentile", targets.acceptance_p90_minutes,
                  p90_minutes(current), p90_minutes(previous), higher_is_better=False, unit="time"),
        board_row("Responded within target", targets.responded_in_target, current.responded_in_target.pct,
                  previous.responded_in_target.pct, higher_is_better=True, unit="pct"),
        board_row("Texts delivered", targets.sms_delivered, current.sms_delivered_rate.pct,
                  previous.sms_delivered_rate.pct, higher_is_better=True, unit="pct"),
    ]
    if current.phone is not None and previous.phone is not None:
        rows += phone_rows(current.phone, previous.phone, targets.telephony)
    return rows


def phone_rows(current: PhoneMeasures, previous: PhoneMeasures, targets: TelephonyTargets) -> list[BoardRow]:
    """The phone lines' measures with a target (docs/domain.md, "Telephony measures")."""
    return [
        board_row("Phone calls answered within 60 s", targets.answered_within_60s,
                  current.answered_within_rate.pct, previous.answered_within_rate.pct,
                  higher_is_better=True, unit="pct"),
        board_row("Phone calls abandoned", targets.abandoned, current.abandoned_rate.pct,
                  previous.abandoned_rate.pct, higher_is_better=False, unit="pct"),
        board_row("Average speed to answer", targets.average_speed_to_answer_seconds,
                  current.average_speed_to_answer, previous.average_speed_to_answer,
                  higher_is_better=False, unit="seconds"),
        board_row("Abandoned calls called back in time", targets.abandoned_called_back,
                  current.called_back_rate.pct, previous.called_back_rate.pct, higher_is_better=True, unit="pct"),
    ]
