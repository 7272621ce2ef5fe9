"""Rotas: who is on duty for a service now and next, who a referral's texts go to (the fall-back chain of
domain/rota/recipients.py), and the changes to a rota: weekly pattern shifts, one-off shifts, cover,
leave, swaps, the standing duty lead, and a rostering tool's CSV imported whole or not at all
(docs/domain.md, "Rotas"). Every change is one unit of work with its `rota_changed` security event
(docs/security.md), which names the service and the change, never a mobile number."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from ..domain.calendar import LONDON
from ..domain.rota import (
    Contact,
    CsvProblem,
    Gaps,
    Occurrence,
    OneOffShift,
    RecipientChoice,
    Rota,
    RotaError,
    choose_recipients,
    gaps,
    occurrences,
    parse_rota_csv,
    pattern_problem,
    shift_problem,
)
from ..domain.rota import export_csv as rota_csv
from ..domain.rota import next_on_duty as rota_next_on_duty
from ..domain.rota import on_duty as rota_on_duty
from ..domain.validation import EARLIEST_DAY, LATEST_DAY, whole_number
from . import security
from .errors import NotFound

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

_INSTANT = timedelta(microseconds=1)
EXPORT_DAYS = 7  # a CSV export lists the shifts of the next week unless told otherwise


class InvalidRota(ValueError):
    """A rota change that cannot be made, in words for the person making it."""


@dataclass(frozen=True)
class Person:
    id: int | None  # None: the directory's duty-lead number, not a registered professional
    name: str
    mobile: str


@dataclass(frozen=True)
class Duty:
    """Who is on duty for a service at an instant: the professionals, the shifts' duty leads, the shifts,
    and the service's standing duty lead (the fall-back when no shift names one)."""

    service: str
    at: datetime
    professionals: tuple[Person, ...]
    duty_leads: tuple[Person, ...]
    shifts: tuple[Occurrence, ...]
    standing_duty_lead: Person | None


@dataclass(frozen=True)
class ImportResult:
    shifts: int  # how many shifts were stored (0 when there are problems)
    problems: tuple[CsvProblem, ...]  # line-numbered, in plain English

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


# -- reading -----------------------------------------------------------------------------------------------

def _standing(svc: Services, uow: UnitOfWork, rota: Rota, service: str) -> Person | None:
    """The service's standing duty lead: the professional set for it, else the directory's duty_lead
    number, as the professional registered with it if there is one."""
    chosen = rota.standing_duty_lead(service)
    if chosen is not None:
        row = uow.rotas.contacts([chosen]).get(chosen)
        return Person(row.id, row.name, row.mobile) if row is not None and row.active else None
    entry = svc.directory.services.get(service)
    number = entry.duty_lead if entry is not None else None
    if not number:
        return None
    row = uow.rotas.professional_by_mobile(number)
    if row is not None:
        return Person(row.id, row.name, row.mobile) if row.active else None
    return Person(None, f"the {service} duty lead", number)


def _duty(svc: Services, uow: UnitOfWork, service: str, at: datetime, rota: Rota) -> Duty:
    found = rota_on_duty(rota, service, at)
    people = uow.rotas.contacts([*found.professionals, *found.duty_leads])

    def persons(ids: Iterable[int]) -> tuple[Person, ...]:
        # Deactivated professionals, and those who texted OFF, are not on duty whatever the rota says.
        return tuple(Person(people[i].id, people[i].name, people[i].mobile) for i in ids
                     if i in people and people[i].on_duty_at(at))

    return Duty(service, found.at, persons(found.professionals), persons(found.duty_leads), found.shifts,
                _standing(svc, uow, rota, service))


def _known(svc: Services, service: str) -> None:
    if service not in svc.directory.services:
        raise NotFound(f"no service {service}")


def on_duty_now(svc: Services, service: str, at: datetime | None = None) -> Duty:
    """Who is on duty for the service at `at` (now by default)."""
    _known(svc, service)
    at = at or svc.clock.now()
    with svc.uow() as uow:
        return _duty(svc, uow, service, at, uow.rotas.rota(service, at, at + _INSTANT))


def next_on_duty(svc: Services, service: str, at: datetime | None = None) -> Duty | None:
    """Who is on duty from the service's next shift change after `at` (now by default); None when nothing
    is rostered within a year."""
    _known(svc, service)
    at = at or svc.clock.now()
    with svc.uow() as uow:
        # The one-off shifts and changes of the year ahead: what domain next_on_duty searches.
        rota = uow.rotas.rota(service, at, at + timedelta(days=371))
        found = rota_next_on_duty(rota, service, at)
        if found is None:
            return None
        return _duty(svc, uow, service, found.starts_at, rota)


def is_on_duty(svc: Services, professional_id: int, service: str, at: datetime | None = None) -> bool:
    """Whether the rota has the professional working a shift of their service at `at` (now by default)."""
    return any(p.id == professional_id for p in on_duty_now(svc, service, at).professionals)


def on_duty_people(svc: Services, uow: UnitOfWork, at: datetime) -> dict[str, list[tuple[str, bool]]]:
    """Per service with anyone on duty at `at`, each professional on duty (active, not texted OFF) as
    (name, can be texted: their number did not text STOP, by the one rule reachable applies: on their row or
    in sms_opt_outs, adapters/rota_store.contacts), in the rota's order. One read of the rota and one of the
    professionals."""
    rota = uow.rotas.rota(None, at, at + _INSTANT)
    by_service = {s: rota_on_duty(rota, s, at).professionals
                  for s in sorted({p.service for p in rota.patterns} | {o.service for o in rota.one_offs})}
    people = uow.rotas.contacts(p for ids in by_service.values() for p in ids)
    found = {s: [(people[p].name, not people[p].opted_out) for p in ids
                 if p in people and people[p].on_duty_at(at)]
             for s, ids in by_service.items()}
    return {s: rows for s, rows in found.items() if rows}


def on_duty_counts(svc: Services, uow: UnitOfWork, at: datetime) -> dict[str, int]:
    """Per service, how many professionals are on duty at `at` and can be texted (not opted out)."""
    counts = {s: sum(1 for _, textable in rows if textable) for s, rows in on_duty_people(svc, uow, at).items()}
    return {s: n for s, n in counts.items() if n}


# -- the supervisor's look ahead ----------------------------------------------------------------------------

GAPS_AHEAD = timedelta(hours=24)  # the exceptions panel lists the rota gaps of the next 24 hours (issue 13)
NEXT_AHEAD = timedelta(days=7)  # the dashboard names the next shift if it starts within a week


@dataclass(frozen=True)
class ServiceOutlook:
    """One service seen from the start of a minute: the gaps of the next 24 hours (open by its calendar,
    nobody rostered), and the next shift change within a week with who is on duty from then."""

    service: str
    gaps: Gaps
    next_at: datetime | None
    next_names: tuple[str, ...]


@dataclass(frozen=True)
class Outlook:
    minute: datetime  # UTC, seconds 0: the windows start here
    services: dict[str, ServiceOutlook]

    @property
    def window_end(self) -> datetime:
        return self.minute + GAPS_AHEAD


# The dashboard fragment is polled every 2 s; the look ahead is worked out at most once a minute per
# Services (shift times and calendars are in whole minutes, so a minute's answer holds for all of it) and
# again at once after a rota change made through this process (`_record`).
_OUTLOOKS: WeakKeyDictionary[Services, Outlook] = WeakKeyDictionary()


def outlook(svc: Services, now: datetime) -> Outlook:
    """Per service of the directory, its rota gaps in the 24 hours from the start of `now`'s minute and
    its next shift change (docs/domain.md, "Rotas": a gap is open time with no professional rostered)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    cached = _OUTLOOKS.get(svc)
    if cached is not None and cached.minute == minute:
        return cached
    found: dict[str, tuple[Gaps, datetime | None, tuple[int, ...]]] = {}
    with svc.uow() as uow:
        rota = uow.rotas.rota(None, minute, minute + NEXT_AHEAD)
        for code, entry in svc.directory.services.items():
            ahead = occurrences(rota, minute, minute + NEXT_AHEAD, code)
            starts = sorted({o.start for o in ahead if o.start > minute})
            then = rota_on_duty(rota, code, starts[0]).professionals if starts else ()
            found[code] = (gaps(rota, code, entry.calendar, minute, minute + GAPS_AHEAD),
                           starts[0] if starts else None, then)
        people = uow.rotas.contacts(p for _, _, ids in found.values() for p in ids)
    result = Outlook(minute, {code: ServiceOutlook(code, g, at, tuple(people[p].name for p in ids if p in people))
                              for code, (g, at, ids) in found.items()})
    _OUTLOOKS[svc] = result
    return result


def forget_outlook(svc: Services) -> None:
    """Work the look ahead out afresh at the next call (the rota changed under this process: a test's
    emptied database)."""
    _OUTLOOKS.pop(svc, None)


def reachable(uow: UnitOfWork, at: datetime, professional_ids: Iterable[int] = (), others: Iterable[Contact] = (),
              stopped: list[str] | None = None) -> list[Contact]:
    """Who of these ipoa may text at `at`, in their order: the one check the recipients of every text chosen
    from the rota pass (referral texts and their hand-over re-sends, escalations: service/sms.py). A
    professional (by id) who is active and not marked unavailable (OFF) then; any other number (the
    directory's duty-lead number, a supervisor's mobile) as it is; either way not a number that texted STOP
    (docs/domain.md, "SMS to professionals": on the professional's row or in sms_opt_outs, one rule,
    adapters/sms_store.stopped). The names of those left out for their STOP are added to `stopped`. At most
    two reads."""
    ids = list(dict.fromkeys(professional_ids))
    rows = uow.rotas.contacts(ids) if ids else {}
    # A professional's contact row says whether their number texted STOP by that one rule
    # (adapters/rota_store.contacts); any other number is asked of it.
    found = [(Contact(rows[i].name, rows[i].mobile, i), rows[i].opted_out) for i in ids
             if i in rows and rows[i].on_duty_at(at)]
    other_contacts = list(others)
    found += [(c, False) for c in other_contacts]
    numbers_stopped = uow.sms.opted_out(c.mobile for c in other_contacts) if other_contacts else set()
    out: list[Contact] = []
    for contact, row_stopped in found:
        if row_stopped or contact.mobile in numbers_stopped:
            if stopped is not None:
                stopped.append(contact.name)
        else:
            out.append(contact)
    return out


def supervisors_to_text(uow: UnitOfWork, centre: str, at: datetime, stopped: list[str] | None = None) -> list[Contact]:
    """The centre's active supervisors with a mobile ipoa may text (reachable), in id order: a referral's last
    step, and who a breach at the centre escalates to."""
    return reachable(uow, at, others=[Contact(name, mobile) for name, mobile in uow.rotas.supervisors(centre)],
                     stopped=stopped)


def _duty_lead_choice(svc: Services, uow: UnitOfWork, rota: Rota, shift_leads: Iterable[int], service: str,
                      at: datetime, stopped: list[str]) -> RecipientChoice:
    """The chain's duty-lead steps: the running shifts' duty leads ipoa may text, else the service's standing
    duty lead (the directory's number when no professional is set) if it may be texted, else nobody."""
    leads = reachable(uow, at, shift_leads, stopped=stopped)
    if leads:
        return choose_recipients(service, (), leads, None, ())
    standing = _standing(svc, uow, rota, service)
    if standing is not None:
        found = (reachable(uow, at, [standing.id], stopped=stopped) if standing.id is not None
                 else reachable(uow, at, others=[Contact(standing.name, standing.mobile)], stopped=stopped))
        if found:
            return choose_recipients(service, (), (), found[0], ())
    return choose_recipients(service, (), (), None, ())


def duty_lead_recipients(svc: Services, uow: UnitOfWork, service: str, at: datetime) -> tuple[Contact, ...]:
    """Who a breach of the service's referral clock escalates to: its duty lead(s) by the steps referral texts
    follow after the people on duty (the shifts' duty leads, else the standing duty lead, else the directory's
    number), each one ipoa may text (reachable); none when nobody may be."""
    rota = uow.rotas.rota(service, at, at + _INSTANT)
    return _duty_lead_choice(svc, uow, rota, rota_on_duty(rota, service, at).duty_leads, service, at, []).recipients


def referral_recipients(svc: Services, uow: UnitOfWork, service: str, centre: str | None,
                        at: datetime) -> RecipientChoice:
    """Who a referral to `service` from `centre` is texted at `at`, and why: the professionals on duty;
    else the shifts' duty leads; else the service's standing duty lead; else the referring centre's
    supervisors with a mobile (domain/rota/recipients.choose_recipients). Everyone at every step passes
    `reachable` (not deactivated, not OFF, no STOP from their number). Chosen once per service and centre per
    transaction (a relay's batch is made within a second)."""
    memo = uow.rotas.memo()
    key = (service, centre)
    choice: RecipientChoice | None = memo.get(key)
    if choice is None:
        choice = memo[key] = _choose(svc, uow, service, centre, at)
    return choice


def _choose(svc: Services, uow: UnitOfWork, service: str, centre: str | None, at: datetime) -> RecipientChoice:
    # The chain's first step with anyone wins, so a step is read only when those before it have nobody.
    rota = uow.rotas.rota(service, at, at + _INSTANT)
    found = rota_on_duty(rota, service, at)
    stopped: list[str] = []
    working = reachable(uow, at, found.professionals, stopped=stopped)
    if working:
        return choose_recipients(service, working, (), None, ())
    leads = _duty_lead_choice(svc, uow, rota, found.duty_leads, service, at, stopped)
    if not leads.nobody:
        return leads
    choice = choose_recipients(service, (), (), None,
                               supervisors_to_text(uow, centre, at, stopped) if centre else ())
    if choice.nobody and stopped:
        # On the exceptions panel: the supervisor reading it learns why a duty lead they know of was not
        # texted (its number texted STOP), and rings the service as the reason says.
        names = list(dict.fromkeys(stopped))
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        choice = replace(choice, reason=f"{choice.reason} (not texted, their number texted STOP: {who})")
    return choice


def preview_recipients(svc: Services, service: str, centre: str | None) -> RecipientChoice:
    """Who a referral sent now would be texted, and why (what the relay will choose: for a confirmation)."""
    with svc.uow() as uow:
        return referral_recipients(svc, uow, service, centre, svc.clock.now())


# -- writing -----------------------------------------------------------------------------------------------

def _check_people(uow: UnitOfWork, ids: Iterable[int | None]) -> None:
    wanted = {i for i in ids if i is not None}
    missing = wanted - set(uow.rotas.contacts(wanted))
    if missing:
        raise InvalidRota(f"no professional has the id {', '.join(str(i) for i in sorted(missing))}")


def _record(svc: Services, uow: UnitOfWork, actor: str, service: str, change: str, **detail: Any) -> None:
    _OUTLOOKS.pop(svc, None)  # the look ahead is worked out again from the changed rota
    security.record(uow, svc.clock.now(), security.ROTA_CHANGED, actor, subject=service,
                    detail={"change": change, **{k: _plain(v) for k, v in detail.items()}})


def _plain(value: Any) -> Any:
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _pattern(uow: UnitOfWork, shift_id: int) -> Any:
    row = uow.rotas.shift(shift_id)
    if row is None or row.weekday is None:
        raise NotFound(f"no weekly pattern shift {shift_id}")
    return row


def _never_words(day: date, start: time, end: time) -> str:
    return (f"the shift does not happen: {start:%H:%M} to {end:%H:%M} on {day:%A} {day.day} {day:%B %Y} falls in "
            "the hour the clocks go forward; change the times")


def shift_refusal(day: date, start: time, end: time) -> str | None:
    """Why a one-off shift cannot be rostered, in words (the CSV import's rule, domain/rota shift_problem), or
    None."""
    return _never_words(day, start, end) if shift_problem(day, start, end) is not None else None


def pattern_refusal(weekday: int, start: time, end: time, valid_from: date | None,
                    valid_to: date | None) -> str | None:
    """Why a weekly shift cannot be rostered, in words (domain/rota pattern_problem), or None."""
    if pattern_problem(weekday, start, end, valid_from, valid_to) is None or valid_from is None:
        return None
    return _never_words(valid_from + timedelta(days=(weekday - valid_from.weekday()) % 7), start, end)


def add_pattern_shift(svc: Services, actor: str, *, service: str, weekday: int, start: time, end: time,
                      members: Sequence[int] = (), duty_lead: int | None = None, label: str | None = None,
                      valid_from: date | None = None, valid_to: date | None = None) -> int:
    """A weekly shift (weekday 0 = Monday); its id."""
    _known(svc, service)
    if not 0 <= weekday <= 6:
        raise InvalidRota("the weekday must be 0 (Monday) to 6 (Sunday)")
    if len(set(members)) != len(members):
        raise InvalidRota("a professional is named twice on the shift")
    if valid_from and valid_to and valid_to < valid_from:
        raise InvalidRota("the shift stops before it starts: check the dates")
    if (never := pattern_refusal(weekday, start, end, valid_from, valid_to)) is not None:
        raise InvalidRota(never)
    with svc.uow() as uow:
        _check_people(uow, [*members, duty_lead])
        shift_id = uow.rotas.add_shift(service=service, weekday=weekday, start=start, end=end, members=members,
                                       duty_lead=duty_lead, label=label, valid_from=valid_from, valid_to=valid_to)
        _record(svc, uow, actor, service, "pattern_added", shift=shift_id, weekday=weekday, start=start, end=end,
                members=list(members), duty_lead=duty_lead)
        uow.commit()
    return shift_id


_EDITABLE = {"start": "start_time", "end": "end_time", "label": "label", "duty_lead": "duty_lead_id",
             "valid_from": "valid_from", "valid_to": "valid_to"}


def edit_pattern_shift(svc: Services, actor: str, shift_id: int, *, members: Sequence[int] | None = None,
                       **changes: Any) -> None:
    """Change a weekly shift's times, label, duty lead, dates (start, end, label, duty_lead, valid_from,
    valid_to) and/or its members, from now on (covers and swaps already made stay)."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise InvalidRota(f"a shift has no {', '.join(sorted(unknown))} to change")
    if members is not None and len(set(members)) != len(members):
        raise InvalidRota("a professional is named twice on the shift")
    with svc.uow() as uow:
        row = _pattern(uow, shift_id)
        _check_people(uow, [*(members or ()), changes.get("duty_lead")])
        valid_from = changes.get("valid_from", row.valid_from)
        valid_to = changes.get("valid_to", row.valid_to)
        if valid_from and valid_to and valid_to < valid_from:
            raise InvalidRota("the shift stops before it starts: check the dates")
        never = pattern_refusal(row.weekday, changes.get("start", row.start_time), changes.get("end", row.end_time),
                                valid_from, valid_to)
        if never is not None:
            raise InvalidRota(never)
        uow.rotas.update_shift(shift_id, members=members, **{_EDITABLE[k]: v for k, v in changes.items()})
        _record(svc, uow, actor, row.service, "pattern_edited", shift=shift_id, fields=sorted(changes),
                **({"members": list(members)} if members is not None else {}))
        uow.commit()


def deactivate_pattern_shift(svc: Services, actor: str, shift_id: int) -> None:
    """The weekly shift no longer runs (kept, with its covers and swaps, for the record)."""
    with svc.uow() as uow:
        row = _pattern(uow, shift_id)
        uow.rotas.update_shift(shift_id, active=False)
        _record(svc, uow, actor, row.service, "pattern_deactivated", shift=shift_id)
        uow.commit()


def add_one_off_shift(svc: Services, actor: str, *, service: str, day: date, start: time, end: time,
                      members: Sequence[int] = (), duty_lead: int | None = None, label: str | None = None) -> int:
    """A shift on one date (extra cover); its id."""
    _known(svc, service)
    try:
        OneOffShift(service, day, start, end, tuple(members), duty_lead, label)
    except RotaError as exc:
        raise InvalidRota(str(exc)) from exc
    if (never := shift_refusal(day, start, end)) is not None:
        raise InvalidRota(never)
    with svc.uow() as uow:
        _check_people(uow, [*members, duty_lead])
        shift_id = uow.rotas.add_shift(service=service, day=day, start=start, end=end, members=members,
                                       duty_lead=duty_lead, label=label)
        _record(svc, uow, actor, service, "shift_added", shift=shift_id, day=day, start=start, end=end,
                members=list(members), duty_lead=duty_lead)
        uow.commit()
    return shift_id


def _runs(row: Any, day: date) -> bool:
    return (row.active and day.weekday() == row.weekday and (row.valid_from is None or day >= row.valid_from)
            and (row.valid_to is None or day <= row.valid_to))


def cover(svc: Services, actor: str, shift_id: int, day: date, *, professionals: Sequence[int] | None = None,
          duty_lead: int | None = None, reason: str = "") -> int:
    """For the weekly shift's occurrence on `day` only: these professionals work it (None: as rostered)
    and/or this duty lead leads it (None: as rostered)."""
    if professionals is None and duty_lead is None:
        raise InvalidRota("a cover must name who works the shift, its duty lead or both")
    if professionals is not None and len(set(professionals)) != len(professionals):
        raise InvalidRota("a professional is named twice on the shift")
    with svc.uow() as uow:
        row = _pattern(uow, shift_id)
        if not _runs(row, day):
            raise InvalidRota(f"that shift does not run on {day:%A %d %B %Y}")
        _check_people(uow, [*(professionals or ()), duty_lead])
        change_id = uow.rotas.add_change(service=row.service, kind="cover", shift_id=shift_id, day=day,
                                         professionals=list(professionals) if professionals is not None else None,
                                         duty_lead_id=duty_lead, reason=reason[:200] or None)
        _record(svc, uow, actor, row.service, "cover", shift=shift_id, day=day,
                members=list(professionals) if professionals is not None else None, duty_lead=duty_lead)
        uow.commit()
    return change_id


def leave(svc: Services, actor: str, professional_id: int, first_day: date, last_day: date,
          reason: str = "") -> int:
    """The professional is off every weekly shift starting from `first_day` to `last_day` (inclusive)."""
    if last_day < first_day:
        raise InvalidRota("the leave ends before it starts: check the dates")
    with svc.uow() as uow:
        row = uow.rotas.contacts([professional_id]).get(professional_id)
        if row is None:
            raise InvalidRota(f"no professional has the id {professional_id}")
        change_id = uow.rotas.add_change(service=row.service, kind="leave", professional_id=professional_id,
                                         first_day=first_day, last_day=last_day, reason=reason[:200] or None)
        _record(svc, uow, actor, row.service, "leave", professional=professional_id, first_day=first_day,
                last_day=last_day)
        uow.commit()
    return change_id


def swap(svc: Services, actor: str, *, first: int, first_shift: int, first_day: date, second: int,
         second_shift: int, second_day: date) -> int:
    """`first` works `second`'s place on second_shift/second_day, and `second` first's on
    first_shift/first_day."""
    if first == second:
        raise InvalidRota("a swap needs two different professionals")
    with svc.uow() as uow:
        one, other = _pattern(uow, first_shift), _pattern(uow, second_shift)
        for row, day in ((one, first_day), (other, second_day)):
            if not _runs(row, day):
                raise InvalidRota(f"shift {row.id} does not run on {day:%A %d %B %Y}")
        _check_people(uow, [first, second])
        change_id = uow.rotas.add_change(service=one.service, kind="swap", professional_id=first,
                                         shift_id=first_shift, day=first_day, other_professional_id=second,
                                         other_shift_id=second_shift, other_day=second_day)
        _record(svc, uow, actor, one.service, "swap", first=first, first_shift=first_shift, first_day=first_day,
                second=second, second_shift=second_shift, second_day=second_day)
        uow.commit()
    return change_id


def set_standing_duty_lead(svc: Services, actor: str, service: str, professional_id: int | None) -> None:
    """The service's standing duty lead (None: back to the directory's duty_lead number)."""
    _known(svc, service)
    with svc.uow() as uow:
        _check_people(uow, [professional_id])
        uow.rotas.set_standing_duty_lead(service, professional_id)
        _record(svc, uow, actor, service, "standing_duty_lead", professional=professional_id)
        uow.commit()


def _resolver(uow: UnitOfWork) -> Callable[[str], int | None]:
    ids = uow.rotas.professional_ids()

    def resolve(value: str) -> int | None:
        if value.startswith("+"):
            row = uow.rotas.professional_by_mobile(value)
            return row.id if row is not None else None
        number = whole_number(value, 10)
        return number if number is not None and number in ids else None
    return resolve


def _service_of(uow: UnitOfWork) -> Callable[[int], str | None]:
    """The service of an active professional (None when deactivated), read once per professional named."""
    seen: dict[int, str | None] = {}

    def service_of(professional_id: int) -> str | None:
        if professional_id not in seen:
            row = uow.rotas.contacts([professional_id]).get(professional_id)
            seen[professional_id] = row.service if row is not None and row.active else None
        return seen[professional_id]
    return service_of


def import_csv(svc: Services, actor: str, text: str) -> ImportResult:
    """A rostering tool's CSV (domain/rota/csv_io.py): every shift is stored, replacing the one-off shifts
    of each service on each date the file lists, or, if any line is wrong, none is and every problem is
    returned with its line number."""
    with svc.uow() as uow:
        parsed = parse_rota_csv(text, set(svc.directory.services), _resolver(uow), _service_of(uow))
        if not parsed.ok:
            return ImportResult(0, parsed.problems)
        for service, day in sorted({(s.service, s.day) for s in parsed.shifts}):
            uow.rotas.delete_one_offs(service, day, day)
        for s in parsed.shifts:
            uow.rotas.add_shift(service=s.service, day=s.day, start=s.start, end=s.end, members=s.professionals,
                                duty_lead=s.duty_lead, label=s.label)
        for service in sorted({s.service for s in parsed.shifts}):
            mine = [s for s in parsed.shifts if s.service == service]
            _record(svc, uow, actor, service, "csv_imported", shifts=len(mine),
                    first_day=min(s.day for s in mine), last_day=max(s.day for s in mine))
        uow.commit()
    return ImportResult(len(parsed.shifts), ())


def _uk(mobile: str) -> str:
    """An E.164 UK mobile as people write it (a spreadsheet reads a leading + as a formula)."""
    return "0" + mobile[3:7] + " " + mobile[7:] if mobile.startswith("+44") and len(mobile) == 13 else mobile


def export_csv(svc: Services, service: str | None = None, first: date | None = None,
               days: int = EXPORT_DAYS) -> str:
    """The shifts (weekly patterns with their changes, and one-off shifts) starting on `days` dates from
    `first` (today by default), in the import's shape, each professional by their UK mobile. Only dates from
    2000 to 2099 are written, the import's (the first and last weeks reach beyond them)."""
    if service is not None:
        _known(svc, service)
    first = first or svc.clock.now().astimezone(LONDON).date()
    stop = min(first + timedelta(days=days), LATEST_DAY + timedelta(days=1))
    first = max(first, EARLIEST_DAY)
    start = datetime.combine(first, time(0), tzinfo=LONDON)
    end = datetime.combine(max(stop, first), time(0), tzinfo=LONDON)
    with svc.uow() as uow:
        rota = uow.rotas.rota(service, start, end)
        shifts = [o for o in occurrences(rota, start, end, service) if first <= o.day < stop]
        people = uow.rotas.contacts(p for o in shifts for p in (*o.professionals, o.duty_lead) if p is not None)
    return rota_csv([o.as_shift() for o in shifts],
                    lambda pid: _uk(people[pid].mobile) if pid in people else str(pid))
