"""What a report holds: rates, durations with their median and 90th percentile, the figures per day, and
the report itself (its measures are worked out in measures.py)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from .period import Period, Scope
from .rate import Rate

if TYPE_CHECKING:
    from ..telephony.measures import PhoneMeasures

__all__ = ["ACCEPTANCE_BANDS", "DayRow", "Durations", "Rate", "Report", "percentile"]

# Bands of the time-to-acceptance chart: (upper bound in seconds or None for "and over", label).
ACCEPTANCE_BANDS: tuple[tuple[int | None, str], ...] = (
    (15 * 60, "under 15 min"), (30 * 60, "15-30 min"), (60 * 60, "30-60 min"), (2 * 3600, "1-2 h"),
    (4 * 3600, "2-4 h"), (24 * 3600, "4-24 h"), (None, "24 h and over"),
)


@dataclass(frozen=True)
class Durations:
    """Durations in seconds, sorted."""
    values: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def p90(self) -> float | None:
        return percentile(self.values, 90)


def percentile(sorted_values: tuple[float, ...] | list[float], pct: float) -> float | None:
    """Nearest-rank percentile: the smallest value that at least pct% of the values do not exceed."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class DayRow:
    day: date
    calls_logged: int = 0
    resolved: int = 0
    referred: int = 0
    transfers: int = 0
    referrals_sent: int = 0
    accepted_in_sla: int = 0
    acceptance_judged: int = 0  # referrals whose acceptance is accepted or breached
    declined: int = 0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_failed: int = 0

    @property
    def accepted_in_sla_pct(self) -> float | None:
        return Rate(self.accepted_in_sla, self.acceptance_judged).pct


@dataclass
class Report:
    period: Period
    scope: Scope
    generated_at: datetime
    calls_logged: int | None = None
    resolved: Rate | None = None  # tier 1: resolved at first contact
    diverted_999: int | None = None
    referred: Rate | None = None  # calls referred at least once
    transfers: int | None = None  # centre: in + out
    transfers_out: int | None = None
    transfers_in: int | None = None
    time_to_triage: Durations | None = None
    triage_in_sla: Rate | None = None
    referrals_sent: int = 0
    time_to_acceptance: Durations = field(default_factory=lambda: Durations(()))
    accepted_in_sla: Rate = Rate(0, 0)
    declined: int = 0
    # Referrals declined, by the service that declined them (code, count), most first: never by their
    # free-text reason, which can name the person (docs/information-governance.md, section 3).
    declined_by_service: list[tuple[str, int]] = field(default_factory=list)
    responded_in_target: Rate = Rate(0, 0)
    # Referrals sent, by the basis the person's details were shared on (domain/sharing.py): every basis,
    # zeros included, in BASES order; None (sent before the basis was recorded) only when there are any.
    shared_by_basis: list[tuple[str | None, int]] = field(default_factory=list)
    sms_recorded: int = 0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_failed: int = 0
    days: list[DayRow] = field(default_factory=list)
    # The phone lines' measures (docs/domain.md, "Telephony measures"): the centre's, or every centre's
    # together; None for a service's report (calls do not apply). abandoned_after and call_back_within are
    # sla.yaml's `abandoned_call`, which the measures' names quote.
    phone: PhoneMeasures | None = None
    # The services' names by code (the directory's), for the rows by service; a code without one is shown as is.
    service_names: dict[str, str] = field(default_factory=dict)
    abandoned_after_seconds: int = 5
    call_back_within_minutes: int = 20

    @property
    def sms_delivered_rate(self) -> Rate:
        """Delivered out of the texts whose fate is known (delivered or failed)."""
        return Rate(self.sms_delivered, self.sms_delivered + self.sms_failed)

    def service_label(self, code: str) -> str:
        name = self.service_names.get(code)
        return f"{code} – {name}" if name else code

    def acceptance_bands(self) -> list[tuple[str, int]]:
        counts = [0] * len(ACCEPTANCE_BANDS)
        for v in self.time_to_acceptance.values:
            for i, (upper, _) in enumerate(ACCEPTANCE_BANDS):
                if upper is None or v < upper:
                    counts[i] += 1
                    break
        return [(label, n) for (_, label), n in zip(ACCEPTANCE_BANDS, counts)]

    def weeks(self) -> list[tuple[date, Rate]]:
        """% accepted within SLA by week (weeks start on the period's first day; the last may be short)."""
        out = []
        for i in range(0, len(self.days), 7):
            chunk = self.days[i:i + 7]
            out.append((chunk[0].day, Rate(sum(d.accepted_in_sla for d in chunk),
                                           sum(d.acceptance_judged for d in chunk))))
        return out
