"""A rota change that opens a gap warns the person making it (issue 13): the gaps of the services concerned
over the next week (open by each service's calendar, nobody rostered: domain/rota/coverage.gaps) are
measured before the change and after it, and the new uncovered time is described in plain words with UK
(Europe/London) times, "Sat 5 Dec 20:00 to Sun 6 Dec 08:00, 12 hours". Also the reads the rota pages
need (web/rota_pages.py): a service's week day by day, its weekly pattern shifts with names, and the
professionals who may be put on its shifts (docs/domain.md, "Rotas")."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, TypeVar

from ..domain.calendar import LONDON
from ..domain.date_parts import london_clock
from ..domain.rota import Occurrence, PatternShift, gaps, occurrences
from ..domain.rota.coverage import Interval, opened
from ..domain.validation import EARLIEST_DAY, LATEST_DAY
from .errors import NotFound

if TYPE_CHECKING:
    from ..bootstrap import Services

T = TypeVar("T")
WARN_AHEAD = timedelta(days=7)  # a change's new gaps are looked for over the next week
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class GapText:
    """Uncovered time a change opened: the service, the UTC interval and the words for it."""

    service: str
    start: datetime
    end: datetime
    words: str


# -- the pure part ------------------------------------------------------------------------------------------

def length_words(span: timedelta) -> str:
    """"12 hours", "1 hour 30 minutes", "45 minutes" (real time: a clock change counts as it happens)."""
    hours, minutes = divmod(int(span.total_seconds()) // 60, 60)
    parts = ([f"{hours} hour{'' if hours == 1 else 's'}"] if hours else []) + (
        [f"{minutes} minute{'' if minutes == 1 else 's'}"] if minutes or not hours else [])
    return " ".join(parts)


def _at(instant: datetime) -> str:
    local = instant.astimezone(LONDON)  # "Sun 25 Oct 01:30 GMT" in the hour that happens twice (london_clock)
    return f"{local:%a} {local.day} {london_clock(instant, '%b %H:%M')}"


def gap_words(start: datetime, end: datetime) -> str:
    """"Sat 5 Dec 20:00 to Sun 6 Dec 08:00, 12 hours" (UK times)."""
    return f"{_at(start)} to {_at(end)}, {length_words(end - start)}"


def describe(service: str, intervals: Iterable[Interval]) -> list[GapText]:
    return [GapText(service, s, e, gap_words(s, e)) for s, e in intervals]


# -- measuring around a change --------------------------------------------------------------------------------

def measure(svc: Services, services: Iterable[str], start: datetime,
            ahead: timedelta = WARN_AHEAD) -> dict[str, tuple[Interval, ...]]:
    """Each service's gaps in [start, start + ahead): one read of the rota."""
    codes = [s for s in services if s in svc.directory.services]
    start = start.astimezone(UTC)
    end = start + ahead
    with svc.uow() as uow:
        rota = uow.rotas.rota(None, start, end)
    return {code: gaps(rota, code, svc.directory.services[code].calendar, start, end).intervals for code in codes}


def with_gap_warning(svc: Services, services: str | Iterable[str] | None,
                     change: Callable[[], T]) -> tuple[T, list[GapText]]:
    """Run `change` (a rota write of service/rotas.py) and return its result with the gaps it opened in the
    services concerned (one code, several, or None: every service of the directory) over the next week.
    Measured from the same instant before and after, so time passing opens no gap; a change that raises
    raises, and nothing is measured after it."""
    codes = ([services] if isinstance(services, str)
             else list(svc.directory.services) if services is None else list(services))
    now = svc.clock.now()
    before = measure(svc, codes, now)
    result = change()
    after = measure(svc, codes, now)
    found = [g for code in codes for g in describe(code, opened(before.get(code, ()), after.get(code, ())))]
    return result, sorted(found, key=lambda g: (g.start, g.service))


def warning_lines(svc: Services, found: Sequence[GapText]) -> list[str]:
    """One plain line per service a change left uncovered, for a notice or the command line: "This leaves
    District nursing (DN) with nobody on duty while it is open: Sat 5 Dec 20:00 to Sun 6 Dec 08:00, 12 hours.
    Arrange cover on its rota." """
    by_service: dict[str, list[str]] = {}
    for g in found:
        by_service.setdefault(g.service, []).append(g.words)
    lines = []
    for code, words in by_service.items():
        entry = svc.directory.services.get(code)
        name = f"{entry.name} ({code})" if entry is not None else code
        lines.append(f"This leaves {name} with nobody on duty while it is open: {'; '.join(words)}. "
                     f"Arrange cover on its rota.")
    return lines


# -- reads for the rota pages ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Named:
    id: int
    name: str


@dataclass(frozen=True)
class ShiftView:
    """One shift of a service's week as the page shows it."""

    day: date
    start: str  # "20:00" UK time
    end: str  # "08:00"
    next_day: bool  # the end is on the next day
    label: str | None
    professionals: tuple[Named, ...]
    duty_lead: Named | None
    pattern_id: int | None  # None: a one-off shift
    changed_by: tuple[str, ...]  # "cover", "swap", "leave": what changed this date's occurrence


@dataclass(frozen=True)
class PatternView:
    id: int
    weekday: int
    start: time
    end: time
    label: str | None
    professionals: tuple[Named, ...]
    duty_lead: Named | None
    valid_from: date | None
    valid_to: date | None

    @property
    def weekday_name(self) -> str:
        return WEEKDAYS[self.weekday]

    @property
    def describe(self) -> str:
        """"Wednesday 08:00 to 20:00 (day)"."""
        label = f" ({self.label})" if self.label else ""
        return f"{self.weekday_name} {self.start:%H:%M} to {self.end:%H:%M}{label}"


@dataclass(frozen=True)
class Week:
    service: str
    monday: date
    days: tuple[tuple[date, tuple[ShiftView, ...]], ...]
    patterns: tuple[PatternView, ...]
    gaps: tuple[GapText, ...]  # open by the calendar, nobody rostered, within the week


def _known(svc: Services, service: str) -> None:
    if service not in svc.directory.services:
        raise NotFound(f"no service {service}")


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _change_words(o: Occurrence) -> tuple[str, ...]:
    return tuple(dict.fromkeys(type(c).__name__.lower() for c in o.changes))


def week(svc: Services, service: str, monday: date) -> Week:
    """The service's shifts starting on each date of the week from `monday` (with covers, swaps and leave
    applied), its active weekly pattern shifts, and the week's gaps. Only its dates from 2000 to 2099, the
    rota's: the first week of 2000 begins in 1999, the last of 2099 ends in 2100."""
    _known(svc, service)
    first = max(monday, EARLIEST_DAY)
    stop = max(first, min(monday + timedelta(days=7), LATEST_DAY + timedelta(days=1)))
    start = datetime.combine(first, time(0), tzinfo=LONDON)
    end = datetime.combine(stop, time(0), tzinfo=LONDON)
    with svc.uow() as uow:
        rota = uow.rotas.rota(service, start, end)
        found = [o for o in occurrences(rota, start, end, service) if first <= o.day < stop]
        patterns = [p for p in rota.patterns if p.service == service]
        ids = {i for o in found for i in (*o.professionals, o.duty_lead) if i is not None}
        ids |= {i for p in patterns for i in (*p.professionals, p.duty_lead) if i is not None}
        people = uow.rotas.contacts(ids)
    open_gaps = gaps(rota, service, svc.directory.services[service].calendar, start, end).intervals

    def named(pid: int | None) -> Named | None:
        if pid is None:
            return None
        row = people.get(pid)
        return Named(pid, row.name if row is not None else f"professional {pid}")

    def many(ids_: Iterable[int]) -> tuple[Named, ...]:
        return tuple(n for n in (named(i) for i in ids_) if n is not None)

    def view(o: Occurrence) -> ShiftView:
        return ShiftView(o.day, f"{o.wall_start:%H:%M}", f"{o.wall_end:%H:%M}", o.wall_end <= o.wall_start,
                         o.label, many(o.professionals), named(o.duty_lead), o.pattern_id, _change_words(o))

    days = tuple((first + timedelta(days=i),
                  tuple(view(o) for o in sorted(found, key=lambda o: (o.start, o.end))
                        if o.day == first + timedelta(days=i)))
                 for i in range((stop - first).days))
    return Week(service, monday, days, tuple(_pattern_view(p, many, named) for p in patterns),
                tuple(describe(service, open_gaps)))


def _pattern_view(p: PatternShift, many: Callable[[Iterable[int]], tuple[Named, ...]],
                  named: Callable[[int | None], Named | None]) -> PatternView:
    return PatternView(p.id, p.weekday, p.start, p.end, p.label, many(p.professionals), named(p.duty_lead),
                       p.valid_from, p.valid_to)


def pattern(svc: Services, service: str, shift_id: int) -> PatternView:
    """An active weekly pattern shift of the service (NotFound otherwise: another service's, a one-off
    shift, a deactivated one)."""
    _known(svc, service)
    with svc.uow() as uow:
        row = uow.rotas.shift(shift_id)
        if row is None or row.weekday is None or not row.active or row.service != service:
            raise NotFound(f"no weekly shift {shift_id} of {service}")
        now = svc.clock.now()
        rota = uow.rotas.rota(service, now, now + timedelta(microseconds=1))
        found = rota.pattern(shift_id)
        if found is None:
            raise NotFound(f"no weekly shift {shift_id} of {service}")
        people = uow.rotas.contacts([*found.professionals, *([found.duty_lead] if found.duty_lead else [])])

    def named(pid: int | None) -> Named | None:
        if pid is None:
            return None
        row_ = people.get(pid)
        return Named(pid, row_.name if row_ is not None else f"professional {pid}")

    def many(ids_: Iterable[int]) -> tuple[Named, ...]:
        return tuple(n for n in (named(i) for i in ids_) if n is not None)

    return _pattern_view(found, many, named)


def patterns(svc: Services, service: str) -> list[PatternView]:
    """The service's active weekly pattern shifts, in the order they were added."""
    now = svc.clock.now()
    return list(week(svc, service, monday_of(now.astimezone(LONDON).date())).patterns)


def active_professionals(svc: Services, service: str) -> list[Named]:
    """The service's active professionals, by name: who may be put on its shifts."""
    _known(svc, service)
    with svc.uow() as uow:
        return [Named(r.id, r.name) for r in uow.professionals.listing(service, include_inactive=False)]


__all__ = ["GapText", "Named", "PatternView", "ShiftView", "WARN_AHEAD", "WEEKDAYS", "Week", "active_professionals",
           "describe", "gap_words", "length_words", "measure", "monday_of", "opened", "pattern", "patterns", "week",
           "with_gap_warning"]
