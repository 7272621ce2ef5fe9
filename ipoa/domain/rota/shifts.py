"""Rotas: who works which shift for a service, and who is on duty at an instant.

A rota holds weekly pattern shifts ("CRT, every Monday 08:00-20:00: Ann and Bob, Sam leads"), one-off
shifts on a date (extra cover, or a shift imported from a rostering tool's CSV), and one-off changes to a
pattern's occurrence on a date: a cover (the named professionals and/or the duty lead replaced for that
date only), leave (one professional off every occurrence on a range of dates) and a swap (two
professionals exchange occurrences). A service may also have a standing duty lead, the fall-back when a
shift has none (docs/domain.md, "Rotas").

ipoa's rules for turning wall-clock shifts into instants (docs/domain.md, "Rotas"):
- A shift's start and end are Europe/London wall-clock times on the date it starts; an end at or before
  the start is on the next day, so a shift over midnight belongs to the date it starts on. Start equal to
  end is 24 hours on the wall.
- Each end is converted on its own date with zoneinfo, so the real length follows the clocks: a 20:00-08:00
  night lasts 13 real hours across the October change and 11 across the March one.
- A wall time that does not exist (01:30 on the last Sunday of March, inside the skipped hour) is read as
  the first instant after the gap (02:00 BST, 01:00 UTC), as opening-hours calendars read it
  (calendar.wall_instant, the one rule for both), so a rota matching a window leaves no gap.
- A wall time that happens twice (01:30 on the last Sunday of October) is its first occurrence (fold=0,
  still BST).
- A shift that has no real length after this (wholly inside the March gap) does not occur, and is refused
  where shifts are made (shift_problem).
- A shift is at most 24 hours on the wall clock (its end on the next day at the latest) and its real length is
  not limited: a 00:00-00:00 shift lasts 25 real hours on the night the clocks go back and 23 on the night
  they go forward, so the export of any rota, in the import's shape, imports again.

One-off changes apply to a pattern's occurrence in this order: swaps, then leave, then the cover, which is
the final word for that date's occurrence (it names exactly who works it). One-off shifts are taken as
written: they are already dated decisions. Overlapping shifts both count.

Everything is pure: instants in (any timezone, aware) and out (UTC); naive datetimes are refused.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeAlias

from ..calendar import LONDON, require_aware, wall_instant

__all__ = [
    "DAY", "ProfessionalId", "RotaError", "PatternShift", "OneOffShift", "Cover", "Leave", "Swap",
    "OccurrenceRef", "StandingDutyLead", "Rota", "Occurrence", "OnDuty", "NextOnDuty", "wall_instant",
    "shift_interval", "wall_length", "NEVER", "shift_problem", "pattern_problem", "occurrences", "on_duty",
    "next_on_duty",
]

ProfessionalId: TypeAlias = int
DAY = timedelta(days=1)
# How far next_on_duty looks ahead before answering "nobody is rostered": a year covers any pattern that
# starts later (valid_from) and any one-off shift booked ahead.
_SEARCH = timedelta(days=370)
_SEARCH_STEP = timedelta(days=8)  # a weekly pattern occurs at least once in any 8 days


class RotaError(ValueError):
    """A rota's data contradicts itself (a cover for a pattern that does not run that day, ...)."""


def _ids(values: Iterable[ProfessionalId]) -> tuple[ProfessionalId, ...]:
    out = tuple(values)
    if len(set(out)) != len(out):
        raise RotaError(f"a professional is named twice on one shift: {list(out)}")
    return out


@dataclass(frozen=True)
class PatternShift:
    """A weekly shift: on `weekday` (0 = Monday) from `start` to `end` London wall-clock time, for every
    such date from `valid_from` to `valid_to` (both inclusive; None = open-ended)."""

    id: int
    service: str
    weekday: int
    start: time
    end: time
    professionals: tuple[ProfessionalId, ...] = ()
    duty_lead: ProfessionalId | None = None
    label: str | None = None  # "day", "late", "night"
    valid_from: date | None = None
    valid_to: date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise RotaError(f"pattern {self.id}: weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday}")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise RotaError(f"pattern {self.id}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        object.__setattr__(self, "professionals", _ids(self.professionals))

    def runs_on(self, day: date) -> bool:
        return (day.weekday() == self.weekday and (self.valid_from is None or day >= self.valid_from)
                and (self.valid_to is None or day <= self.valid_to))


@dataclass(frozen=True)
class OneOffShift:
    """A shift on one date (extra cover, or a row group of an imported CSV); `id` is the store's, None
    until stored."""

    service: str
    day: date
    start: time
    end: time
    professionals: tuple[ProfessionalId, ...] = ()
    duty_lead: ProfessionalId | None = None
    label: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "professionals", _ids(self.professionals))


@dataclass(frozen=True)
class OccurrenceRef:
    """One occurrence of a pattern: the pattern and the local date it starts on."""

    pattern_id: int
    day: date


@dataclass(frozen=True)
class Cover:
    """Replace, for one occurrence only, its professionals (None: keep them) and/or its duty lead (None:
    keep it). An empty tuple of professionals leaves the occurrence with nobody (a gap shows up)."""

    occurrence: OccurrenceRef
    professionals: tuple[ProfessionalId, ...] | None = None
    duty_lead: ProfessionalId | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.professionals is not None:
            object.__setattr__(self, "professionals", _ids(self.professionals))
        if self.professionals is None and self.duty_lead is None:
            raise RotaError("a cover must replace the professionals, the duty lead or both")


@dataclass(frozen=True)
class Leave:
    """`professional` is off every pattern occurrence starting on a date from `first_day` to `last_day`
    (inclusive), as a member and as duty lead."""

    professional: ProfessionalId
    first_day: date
    last_day: date
    reason: str = ""

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise RotaError(f"leave ends ({self.last_day}) before it starts ({self.first_day})")

    def covers(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True)
class Swap:
    """`first` works `second`'s place in `second_occurrence` and `second` works `first`'s place in
    `first_occurrence` (in whatever role each had there: member or duty lead)."""

    first: ProfessionalId
    first_occurrence: OccurrenceRef
    second: ProfessionalId
    second_occurrence: OccurrenceRef

    def __post_init__(self) -> None:
        if self.first == self.second:
            raise RotaError("a swap needs two different professionals")


@dataclass(frozen=True)
class StandingDutyLead:
    """The service's duty lead when a shift names none (or none is rostered at all)."""

    service: str
    professional: ProfessionalId


Change: TypeAlias = Cover | Leave | Swap


@dataclass(frozen=True)
class Rota:
    patterns: tuple[PatternShift, ...] = ()
    one_offs: tuple[OneOffShift, ...] = ()
    covers: tuple[Cover, ...] = ()
    leave: tuple[Leave, ...] = ()
    swaps: tuple[Swap, ...] = ()
    standing_duty_leads: tuple[StandingDutyLead, ...] = ()
    _patterns_by_id: dict[int, PatternShift] = field(init=False, repr=False, compare=False)
    _covers_by_ref: dict[OccurrenceRef, Cover] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("patterns", "one_offs", "covers", "leave", "swaps", "standing_duty_leads"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        by_id: dict[int, PatternShift] = {}
        for p in self.patterns:
            if p.id in by_id:
                raise RotaError(f"two patterns have the id {p.id}")
            by_id[p.id] = p
        object.__setattr__(self, "_patterns_by_id", by_id)
        refs = [c.occurrence for c in self.covers]
        refs += [r for s in self.swaps for r in (s.first_occurrence, s.second_occurrence)]
        for ref in refs:
            pattern = by_id.get(ref.pattern_id)
            if pattern is None:
                raise RotaError(f"a change refers to pattern {ref.pattern_id}, which is not in the rota")
            if not pattern.runs_on(ref.day):
                raise RotaError(f"pattern {ref.pattern_id} does not run on {ref.day:%A %d %B %Y}")
        covers: dict[OccurrenceRef, Cover] = {}
        for c in self.covers:
            if c.occurrence in covers:
                raise RotaError(f"two covers for pattern {c.occurrence.pattern_id} on {c.occurrence.day}")
            covers[c.occurrence] = c
        object.__setattr__(self, "_covers_by_ref", covers)
        services = [s.service for s in self.standing_duty_leads]
        if len(set(services)) != len(services):
            raise RotaError("a service has two standing duty leads")

    def pattern(self, pattern_id: int) -> PatternShift | None:
        return self._patterns_by_id.get(pattern_id)

    def cover_for(self, ref: OccurrenceRef) -> Cover | None:
        return self._covers_by_ref.get(ref)

    def standing_duty_lead(self, service: str) -> ProfessionalId | None:
        return next((s.professional for s in self.standing_duty_leads if s.service == service), None)


@dataclass(frozen=True)
class Occurrence:
    """A concrete shift: a pattern's occurrence on a date with the changes applied, or a one-off shift."""

    service: str
    day: date  # the London date it starts on
    start: datetime  # UTC
    end: datetime  # UTC
    wall_start: time
    wall_end: time
    professionals: tuple[ProfessionalId, ...]
    duty_lead: ProfessionalId | None
    label: str | None = None
    pattern_id: int | None = None  # None: a one-off shift
    one_off_id: int | None = None
    changes: tuple[Change, ...] = ()  # the covers, swaps and leave applied to it

    @property
    def key(self) -> str:
        """Stable identity of this occurrence, for idempotency and references."""
        if self.pattern_id is not None:
            return f"pattern:{self.pattern_id}:{self.day.isoformat()}"
        if self.one_off_id is not None:
            return f"shift:{self.one_off_id}"
        return f"shift:{self.service}:{self.day.isoformat()}:{self.wall_start:%H:%M}-{self.wall_end:%H:%M}"

    @property
    def ref(self) -> OccurrenceRef | None:
        return OccurrenceRef(self.pattern_id, self.day) if self.pattern_id is not None else None

    @property
    def cover(self) -> Cover | None:
        """The cover that replaced this pattern occurrence's people, if any."""
        return next((c for c in self.changes if isinstance(c, Cover)), None)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def covers_instant(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def as_shift(self) -> OneOffShift:
        """This occurrence as a dated shift (what a CSV export lists)."""
        return OneOffShift(self.service, self.day, self.wall_start, self.wall_end, self.professionals,
                           self.duty_lead, self.label)


def wall_length(start: time, end: time) -> timedelta:
    """A shift's length on the wall clock: an end at or before the start is on the next day."""
    span = datetime.combine(date.min, end) - datetime.combine(date.min, start)
    return span if span > timedelta(0) else span + DAY


def shift_interval(day: date, start: time, end: time) -> tuple[datetime, datetime]:
    """The UTC instants of a shift starting on local `day` (end on the next day if at or before start)."""
    end_day = day if end > start else day + DAY
    return wall_instant(day, start), wall_instant(end_day, end)


# Why a shift cannot be rostered (shift_problem): it has no real time, wholly inside the hour the clocks skip.
NEVER = "never"


def shift_problem(day: date, start: time, end: time) -> str | None:
    """ipoa's one rule for a shift that can be rostered (module docstring), which the CSV import and the weekly
    and one-off forms all apply: None, or NEVER when the shift starting on local `day` has no real time. Its
    length needs no check: as wall-clock times with the end on the next day at the latest, it is at most 24
    hours on the wall, however many real hours the clocks make of it."""
    first, last = shift_interval(day, start, end)
    return NEVER if last <= first else None


def pattern_problem(weekday: int, start: time, end: time, valid_from: date | None,
                    valid_to: date | None) -> str | None:
    """shift_problem for a weekly shift: NEVER when every date it runs on, from `valid_from` to `valid_to`, is
    one on which it does not happen (its one Sunday is the last of March). Open-ended, it runs on ordinary
    dates too; with no date on its weekday at all, it is not this rule's to refuse."""
    if valid_from is None or valid_to is None:
        return None
    day = valid_from + timedelta(days=(weekday - valid_from.weekday()) % 7)
    found = False
    while day <= valid_to:
        if shift_problem(day, start, end) is None:
            return None
        found = True
        day += timedelta(days=7)
    return NEVER if found else None


def _without(people: tuple[ProfessionalId, ...], who: ProfessionalId) -> tuple[ProfessionalId, ...]:
    return tuple(p for p in people if p != who)


def _replaced(people: tuple[ProfessionalId, ...], old: ProfessionalId,
              new: ProfessionalId) -> tuple[ProfessionalId, ...]:
    out: list[ProfessionalId] = []
    for p in people:
        q = new if p == old else p
        if q not in out:
            out.append(q)
    return tuple(out)


def _pattern_occurrence(rota: Rota, pattern: PatternShift, day: date) -> Occurrence | None:
    start, end = shift_interval(day, pattern.start, pattern.end)
    if end <= start:
        return None
    ref = OccurrenceRef(pattern.id, day)
    people, lead = pattern.professionals, pattern.duty_lead
    applied: list[Change] = []
    for swap in rota.swaps:
        for mine, theirs, where in ((swap.first, swap.second, swap.first_occurrence),
                                    (swap.second, swap.first, swap.second_occurrence)):
            if where == ref and (mine in people or lead == mine):
                people = _replaced(people, mine, theirs)
                lead = theirs if lead == mine else lead
                applied.append(swap)
    for leave in rota.leave:
        if leave.covers(day) and (leave.professional in people or lead == leave.professional):
            people = _without(people, leave.professional)
            lead = None if lead == leave.professional else lead
            applied.append(leave)
    cover = rota.cover_for(ref)
    if cover is not None:
        people = cover.professionals if cover.professionals is not None else people
        lead = cover.duty_lead if cover.duty_lead is not None else lead
        applied.append(cover)
    return Occurrence(pattern.service, day, start, end, pattern.start, pattern.end, people, lead,
                      pattern.label, pattern_id=pattern.id, changes=tuple(applied))


def _one_off_occurrence(shift: OneOffShift) -> Occurrence | None:
    start, end = shift_interval(shift.day, shift.start, shift.end)
    if end <= start:
        return None
    return Occurrence(shift.service, shift.day, start, end, shift.start, shift.end, shift.professionals,
                      shift.duty_lead, shift.label, one_off_id=shift.id)


def _order(o: Occurrence) -> tuple[datetime, datetime, str, str]:
    return o.start, o.end, o.service, o.key


def occurrences(rota: Rota, start: datetime, end: datetime, service: str | None = None) -> list[Occurrence]:
    """The concrete shifts overlapping [start, end) (of one service, or all), in order of start."""
    require_aware(start)
    require_aware(end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    # A shift lasts at most a day and an hour on the wall, so one starting two local dates before
    # `start` is the earliest that can still be running.
    first = start.astimezone(LONDON).date() - 2 * DAY
    last = end.astimezone(LONDON).date()
    found: list[Occurrence] = []
    day = first
    while day <= last:
        for pattern in rota.patterns:
            if (service is None or pattern.service == service) and pattern.runs_on(day):
                occ = _pattern_occurrence(rota, pattern, day)
                if occ is not None:
                    found.append(occ)
        day += DAY
    for shift in rota.one_offs:
        if (service is None or shift.service == service) and first <= shift.day <= last:
            occ = _one_off_occurrence(shift)
            if occ is not None:
                found.append(occ)
    return sorted((o for o in found if o.start < end and o.end > start), key=_order)


def _unique(values: Iterable[ProfessionalId]) -> tuple[ProfessionalId, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class OnDuty:
    """Who is on duty for a service at an instant: the professionals of every shift covering it (each
    once, in order of shift start, then as each shift names them), the shifts' duty leads, the shifts."""

    service: str
    at: datetime
    professionals: tuple[ProfessionalId, ...]
    duty_leads: tuple[ProfessionalId, ...]
    shifts: tuple[Occurrence, ...]

    @property
    def nobody(self) -> bool:
        return not self.professionals


def _on_duty_from(service: str, at: datetime, shifts: Sequence[Occurrence]) -> OnDuty:
    covering = tuple(o for o in shifts if o.covers_instant(at))
    return OnDuty(service, at, _unique(p for o in covering for p in o.professionals),
                  _unique(o.duty_lead for o in covering if o.duty_lead is not None), covering)


def on_duty(rota: Rota, service: str, at: datetime) -> OnDuty:
    require_aware(at)
    at = at.astimezone(UTC)
    return _on_duty_from(service, at, occurrences(rota, at, at + timedelta(microseconds=1), service))


@dataclass(frozen=True)
class NextOnDuty:
    """The next shift change after an instant: when, the shifts starting then, and who is on duty from
    then (every shift covering that instant, the ones carrying on included)."""

    starts_at: datetime
    starting: tuple[Occurrence, ...]
    then: OnDuty


def _windows(at: datetime) -> Iterator[tuple[datetime, datetime]]:
    cursor = at
    while cursor < at + _SEARCH:
        yield cursor, cursor + _SEARCH_STEP
        cursor += _SEARCH_STEP


def next_on_duty(rota: Rota, service: str, at: datetime) -> NextOnDuty | None:
    """The first shift start of the service strictly after `at`, or None if none within a year."""
    require_aware(at)
    at = at.astimezone(UTC)
    for low, high in _windows(at):
        found = occurrences(rota, low, high, service)
        starts = sorted({o.start for o in found if at < o.start < high})
        if starts:
            first = starts[0]
            # Shifts that started earlier and are still running at `first` come from a wider look-back.
            around = occurrences(rota, first, first + timedelta(microseconds=1), service)
            return NextOnDuty(first, tuple(o for o in around if o.start == first),
                              _on_duty_from(service, first, around))
    return None
