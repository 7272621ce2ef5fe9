"""How a figure is shown: one rounding rule for every figure judged against a target, on the dashboard, the
report and the board view (docs/domain.md, "Telephony measures" and "What supervisors and boards look at").

A figure judged against a target is rounded toward the failing side: an "at least" target's figure down, an
"at most" target's up. The verdict is worked out on the exact value, so a figure that misses its target by
less than the last digit shown would otherwise be shown as the target itself next to "Target not met"
(94.95% as "95.0%", an average speed to answer of 20.5 s as "20 s"). Rounded this way, the figure shown never
meets a target its value misses. A figure with no target (a longest wait) is rounded to the nearest. The CSV
keeps its own plain numbers (service/report_export.py).

The words for durations are the app's: "59 s", "1 min 05 s", "3 h 00 min 05 s"; "12 min", "1 h 05 min".
Its own module, with no import from the reports' figures, so that the telephony measures
(domain/telephony/measures.py) use it as the board does.
"""
from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

__all__ = ["minutes_text", "pct_text", "rounded", "seconds_text"]


def rounded(value: float, places: int = 0, *, higher_is_better: bool | None = None) -> Decimal:
    """`value` to `places` decimals: down when higher is better (an "at least" target), up when lower is
    (an "at most" one), to the nearest (halves to even, as Python's format does) when there is no target."""
    step = Decimal(1).scaleb(-places)
    if higher_is_better is None:
        return Decimal(value).quantize(step, rounding=ROUND_HALF_EVEN)
    # From the shortest decimal that is this float, not its binary expansion: 95.3% (stored as
    # 95.29999...) is shown as 95.3, and the order against a target is kept (a float below the target
    # has a shortest decimal below the target's).
    return Decimal(repr(value)).quantize(step, rounding=ROUND_FLOOR if higher_is_better else ROUND_CEILING)


def pct_text(v: float | None, *, higher_is_better: bool | None = None) -> str:
    return "no data" if v is None else f"{rounded(v, 1, higher_is_better=higher_is_better)}%"


def seconds_text(v: float | None, *, higher_is_better: bool | None = None) -> str:
    """Seconds in words, to the second: "59 s", "1 min 05 s", "3 h 00 min 05 s"."""
    if v is None:
        return "no data"
    total = int(rounded(v, higher_is_better=higher_is_better))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def minutes_text(seconds: float | None, *, higher_is_better: bool | None = None) -> str:
    """A duration in minutes: to the tenth under 10 minutes (whole minutes as "5 min"), to the minute under
    an hour, then in hours and minutes ("1 h 05 min")."""
    if seconds is None:
        return "no data"
    minutes = seconds / 60.0
    if minutes < 10 and minutes != int(minutes):
        return f"{rounded(minutes, 1, higher_is_better=higher_is_better)} min"
    whole = int(rounded(minutes, higher_is_better=higher_is_better))
    if whole < 60:
        return f"{whole} min"
    hours, mins = divmod(whole, 60)
    return f"{hours} h {mins:02d} min"
