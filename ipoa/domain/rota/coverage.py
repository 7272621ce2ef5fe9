"""What the rota leaves uncovered ahead of time, and the shift changes a hand-over job acts on
(docs/domain.md, "Rotas").

A gap is time the service is open by its calendar and no professional is rostered on duty: a shift whose
professionals were all removed (leave, a cover naming nobody) or that names only a duty lead leaves a gap,
because its referrals would fall back to a duty lead. A hand-over is an instant a shift of the service
starts: referrals sent to the shifts before it and still unaccepted go to the incoming one, once per
change, which the change's idempotency key makes sure of.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..calendar import Calendar, open_intervals, require_aware
from .shifts import Occurrence, ProfessionalId, Rota, occurrences

__all__ = ["Gaps", "Handover", "gaps", "handover_due", "handover_key", "opened"]

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Gaps:
    service: str
    intervals: tuple[Interval, ...]  # UTC, in order, not touching one another

    @property
    def uncovered(self) -> timedelta:
        return sum((end - start for start, end in self.intervals), timedelta(0))

    @property
    def hours(self) -> float:
        """Total uncovered hours (real hours: a clock change counts as it happens)."""
        return self.uncovered / timedelta(hours=1)

    def __bool__(self) -> bool:
        return bool(self.intervals)


def _merged(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _subtract(span: Interval, covered: list[Interval]) -> list[Interval]:
    """`span` less the merged, sorted `covered` intervals."""
    out: list[Interval] = []
    cursor, stop = span
    for start, end in covered:
        if end <= cursor or start >= stop:
            continue
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < stop:
        out.append((cursor, stop))
    return out


def opened(before: Sequence[Interval], after: Sequence[Interval]) -> list[Interval]:
    """The parts of `after`'s intervals in none of `before`'s: the uncovered time a rota change added
    (service/rota_warnings.py). Sorted or not, touching or not; the answer is sorted and merged."""
    covered = _merged(list(before))
    return _merged([part for span in after for part in _subtract(span, covered)])


def gaps(rota: Rota, service: str, calendar: Calendar, start: datetime, end: datetime) -> Gaps:
    """The intervals in [start, end) when `service` is open by `calendar` and nobody is rostered on duty."""
    require_aware(start)
    require_aware(end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    covered = _merged([(o.start, o.end) for o in occurrences(rota, start, end, service) if o.professionals])
    found: list[Interval] = []
    for window in open_intervals(calendar, start, end):
        found += _subtract(window, covered)
    return Gaps(service, tuple(_merged(found)))


def handover_key(service: str, at: datetime) -> str:
    """The idempotency key of a shift change: one per (service, change instant)."""
    require_aware(at)
    return f"handover:{service}:{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Handover:
    """A shift change of a service: the shifts starting at that instant (incoming) and those ending at it
    (outgoing; none if the previous shift ended earlier or carries on)."""

    service: str
    at: datetime
    outgoing: tuple[Occurrence, ...]
    incoming: tuple[Occurrence, ...]
    key: str

    @property
    def incoming_professionals(self) -> tuple[ProfessionalId, ...]:
        return tuple(dict.fromkeys(p for o in self.incoming for p in o.professionals))


def handover_due(rota: Rota, service: str, previous_instant: datetime, now: datetime) -> list[Handover]:
    """Every shift change of `service` in (previous_instant, now], in order. A job that runs with the
    previous run's `now` as `previous_instant` sees each change exactly once."""
    require_aware(previous_instant)
    require_aware(now)
    previous_instant, now = previous_instant.astimezone(UTC), now.astimezone(UTC)
    if now <= previous_instant:
        return []
    # Widened by a second each side: a shift ending at previous_instant is still an outgoing one.
    found = occurrences(rota, previous_instant - timedelta(seconds=1), now + timedelta(seconds=1), service)
    changes = sorted({o.start for o in found if previous_instant < o.start <= now})
    out: list[Handover] = []
    for at in changes:
        incoming = tuple(o for o in found if o.start == at)
        outgoing = tuple(o for o in found if o.end == at)
        out.append(Handover(service, at, outgoing, incoming, handover_key(service, at)))
    return out
