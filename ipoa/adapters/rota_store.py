"""Rotas: a service's shifts, their members, the one-off changes and its standing duty lead (tables
rota_shifts, rota_shift_members, rota_changes, standing_duty_leads: migration 0011), loaded as the
domain's Rota (domain/rota) for a window of time; and who a referral's texts went to and why
(sms_recipient_choices)."""
from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from ..domain.calendar import LONDON
from ..domain.rota import Cover, Leave, OccurrenceRef, OneOffShift, PatternShift, Rota, StandingDutyLead, Swap
from .orm import (
    professionals,
    rota_changes,
    rota_shift_members,
    rota_shifts,
    sms_recipient_choices,
    standing_duty_leads,
    users,
)
from .prepared import Prepared, batched
from .results import inserted_int_id
from .sms_store import stopped
from .upsert import insert_ignoring_conflicts

# A shift lasts at most a day and an hour on the wall, so one starting two dates earlier may still run
# (domain/rota/shifts.occurrences looks as far back).
_LOOK_BACK = timedelta(days=2)


class ContactRow(NamedTuple):
    id: int
    name: str
    mobile: str
    service: str
    opted_out: bool  # the number texted STOP (sms_store.stopped: on this row or in sms_opt_outs)
    active: bool = True  # deactivated professionals are never on duty nor texted
    unavailable_until: datetime | None = None  # texted OFF: not texted before this instant

    def on_duty_at(self, at: datetime) -> bool:
        """Whether a rostered professional is working at `at`: active, and not marked unavailable by an
        OFF text then."""
        return self.active and (self.unavailable_until is None or self.unavailable_until <= at)

    def textable_at(self, at: datetime) -> bool:
        return self.on_duty_at(at) and not self.opted_out


def _contact(r: Any) -> ContactRow:
    return ContactRow(r.id, r.name, r.mobile, r.service, bool(r.stopped), bool(r.active), r.unavailable_until)


# A professional's row with whether their number texted STOP, by the one rule (sms_store.stopped: their own
# STOP on the row, or the number's in sms_opt_outs, sent before it was theirs or kept when it was edited),
# so that everything reading a contact (service/rotas.reachable and on_duty_people, service/availability.py)
# asks the same question the send claim does (docs/domain.md, "SMS to professionals").
_CONTACT = select(professionals.c.id, professionals.c.name, professionals.c.mobile, professionals.c.service,
                  professionals.c.active, professionals.c.unavailable_until,
                  stopped(professionals.c.mobile).label("stopped"))


class ChoiceRow(NamedTuple):
    call_ref: str
    referral_id: str | None
    service: str
    step: str
    reason: str
    created_at: datetime


class RotaStore:
    def __init__(self, session: Session):
        self.session = session

    # -- reading -----------------------------------------------------------------------------------------

    def _members(self, shift_ids: list[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {i: [] for i in shift_ids}
        if shift_ids:
            for sid, pid in self.session.execute(
                    select(rota_shift_members.c.shift_id, rota_shift_members.c.professional_id)
                    .where(rota_shift_members.c.shift_id.in_(shift_ids))
                    .order_by(rota_shift_members.c.shift_id, rota_shift_members.c.professional_id)):
                out[sid].append(pid)
        return out

    def rota(self, service: str | None, start: datetime, end: datetime) -> Rota:
        """The rota of one service (or every service) as far as it matters for instants in [start, end):
        every active weekly pattern, the one-off shifts and changes on the dates concerned, the standing
        duty leads set.

        Five reads, prepared once (_rota_reads) and sent together: on PostgreSQL one round trip, in the
        transaction's batch (adapters/prepared.batched). The relay reads a service's rota for each batch
        of referrals it texts, and the five round trips, each statement built and compiled by Core, were
        a fifth of the relay's time (docs/performance.md, SMS)."""
        connection = self.session.connection()
        reads = _rota_reads(service is not None)
        params = {"b_service": service, "b_first": start.astimezone(LONDON).date() - _LOOK_BACK,
                  "b_last": end.astimezone(LONDON).date()}
        with batched(connection):
            later = [read.rows_later(connection, params) for read in reads]
        pattern_rows, one_off_rows, member_rows, change_rows, lead_rows = (rows() for rows in later)
        members: dict[int, list[int]] = {}
        for shift_id, professional_id in member_rows:  # (in shift and professional order)
            members.setdefault(shift_id, []).append(professional_id)
        patterns = tuple(PatternShift(r.id, r.service, r.weekday, r.start_time, r.end_time,
                                      tuple(members.get(r.id, ())), r.duty_lead_id, r.label, r.valid_from,
                                      r.valid_to) for r in map(_ShiftRow._make, pattern_rows))
        one_offs = tuple(OneOffShift(r.service, r.day, r.start_time, r.end_time, tuple(members.get(r.id, ())),
                                     r.duty_lead_id, r.label, r.id) for r in map(_ShiftRow._make, one_off_rows))
        by_id = {p.id: p for p in patterns}

        def runs(shift_id: int | None, day: date | None) -> bool:
            # A change for a pattern deactivated since (or moved off that date) no longer applies.
            pattern = by_id.get(shift_id) if shift_id is not None else None
            return pattern is not None and day is not None and pattern.runs_on(day)

        covers: dict[OccurrenceRef, Cover] = {}
        leave: list[Leave] = []
        swaps: list[Swap] = []
        for c in map(_ChangeRow._make, change_rows):
            if c.kind == "cover" and runs(c.shift_id, c.day):
                ref = OccurrenceRef(c.shift_id, c.day)
                covers[ref] = Cover(ref, tuple(c.professionals) if c.professionals is not None else None,
                                    c.duty_lead_id, c.reason or "")  # the latest cover has the final word
            elif c.kind == "leave":
                leave.append(Leave(c.professional_id, c.first_day, c.last_day, c.reason or ""))
            elif c.kind == "swap" and runs(c.shift_id, c.day) and runs(c.other_shift_id, c.other_day):
                swaps.append(Swap(c.professional_id, OccurrenceRef(c.shift_id, c.day), c.other_professional_id,
                                  OccurrenceRef(c.other_shift_id, c.other_day)))
        return Rota(patterns, one_offs, tuple(covers.values()), tuple(leave), tuple(swaps),
                    tuple(StandingDutyLead(service_, professional_id) for service_, professional_id in lead_rows))

    def shift(self, shift_id: int) -> Any:
        """A shift's row (pattern or one-off), or None."""
        return self.session.execute(select(rota_shifts).where(rota_shifts.c.id == shift_id)).first()

    def one_offs_between(self, service: str | None, first: date, last: date) -> list[OneOffShift]:
        rows = self.session.execute(select(rota_shifts).where(
            (rota_shifts.c.service == service) if service is not None else true(),
            rota_shifts.c.day.between(first, last), rota_shifts.c.active.is_(True))
            .order_by(rota_shifts.c.day, rota_shifts.c.start_time, rota_shifts.c.id)).all()
        members = self._members([r.id for r in rows])
        return [OneOffShift(r.service, r.day, r.start_time, r.end_time, tuple(members[r.id]), r.duty_lead_id,
                            r.label, r.id) for r in rows]

    def contacts(self, ids: Iterable[int]) -> dict[int, ContactRow]:
        """Professionals by id: name, mobile, service, whether their number texted STOP (_CONTACT), are
        active, and until when they texted OFF."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        return {r.id: _contact(r)
                for r in self.session.execute(_CONTACT.where(professionals.c.id.in_(wanted)))}

    def professional_by_mobile(self, e164: str) -> ContactRow | None:
        r = self.session.execute(_CONTACT.where(professionals.c.mobile == e164)).first()
        return _contact(r) if r else None

    def professional_ids(self) -> set[int]:
        return set(self.session.scalars(select(professionals.c.id)))

    def supervisors(self, centre: str) -> list[tuple[str, str]]:
        """(name, mobile) of the centre's active supervisors with a mobile, in id order."""
        return [(r.display_name or r.username, r.mobile) for r in self.session.execute(
            select(users.c.username, users.c.display_name, users.c.mobile).where(
                users.c.role == "supervisor", users.c.centre == centre, users.c.active.is_(True),
                users.c.mobile.is_not(None)).order_by(users.c.id))]

    # -- writing -----------------------------------------------------------------------------------------

    def _set_members(self, shift_id: int, members: Iterable[int]) -> None:
        self.session.execute(delete(rota_shift_members).where(rota_shift_members.c.shift_id == shift_id))
        rows = [{"shift_id": shift_id, "professional_id": p} for p in members]
        if rows:
            self.session.execute(insert(rota_shift_members), rows)

    def add_shift(self, *, service: str, start: time, end: time, members: Iterable[int], duty_lead: int | None,
                  label: str | None = None, weekday: int | None = None, day: date | None = None,
                  valid_from: date | None = None, valid_to: date | None = None) -> int:
        """A weekly pattern (weekday) or a one-off shift (day); its id."""
        shift_id = inserted_int_id(self.session.execute(insert(rota_shifts).values(
            service=service, weekday=weekday, day=day, start_time=start, end_time=end, label=label,
            duty_lead_id=duty_lead, valid_from=valid_from, valid_to=valid_to, active=True)))
        self._set_members(shift_id, members)
        return shift_id

    def update_shift(self, shift_id: int, *, members: Iterable[int] | None = None, **values: Any) -> None:
        """Change a shift's columns (start_time, end_time, label, duty_lead_id, valid_from, valid_to,
        active) and/or its members."""
        if values:
            self.session.execute(update(rota_shifts).where(rota_shifts.c.id == shift_id).values(**values))
        if members is not None:
            self._set_members(shift_id, members)

    def add_change(self, *, service: str, kind: str, **values: Any) -> int:
        return inserted_int_id(self.session.execute(insert(rota_changes).values(service=service, kind=kind,
                                                                                 **values)))

    def delete_one_offs(self, service: str, first: date, last: date) -> int:
        """Remove the one-off shifts of a service on these dates (a CSV import replaces them); how many."""
        ids = list(self.session.scalars(select(rota_shifts.c.id).where(
            rota_shifts.c.service == service, rota_shifts.c.day.between(first, last))))
        if ids:
            self.session.execute(delete(rota_shift_members).where(rota_shift_members.c.shift_id.in_(ids)))
            self.session.execute(delete(rota_shifts).where(rota_shifts.c.id.in_(ids)))
        return len(ids)

    def set_standing_duty_lead(self, service: str, professional_id: int | None) -> None:
        self.session.execute(delete(standing_duty_leads).where(standing_duty_leads.c.service == service))
        if professional_id is not None:
            self.session.execute(insert(standing_duty_leads).values(service=service,
                                                                    professional_id=professional_id))

    # -- who a referral's texts went to --------------------------------------------------------------------

    def memo(self) -> dict[Any, Any]:
        """Per session, so per transaction: the relay's batch holds many referrals to the same few
        services, and choosing their recipients reads the rota (docs/performance.md, SMS)."""
        return self.session.info.setdefault("ipoa_rota_choices", {})

    def record_choice(self, *, outbox_id: str, call_ref: str, referral_id: str | None, service: str, step: str,
                      reason: str, created_at: datetime) -> None:
        self.record_choices([{"outbox_id": outbox_id, "call_ref": call_ref, "referral_id": referral_id,
                              "service": service, "step": step, "reason": reason, "created_at": created_at}])

    def record_choices(self, choices: list[dict[str, Any]]) -> None:
        """Who referrals were texted and why (one row per outbox event, record_choice's keys), in one
        statement: an event's choice already recorded (outbox_id is unique) is left as it is."""
        insert_ignoring_conflicts(self.session, sms_recipient_choices, choices)

    def choices_for_call(self, call_ref: str) -> list[ChoiceRow]:
        c = sms_recipient_choices.c
        return [ChoiceRow(*r) for r in self.session.execute(
            select(c.call_ref, c.referral_id, c.service, c.step, c.reason, c.created_at)
            .where(c.call_ref == call_ref).order_by(c.created_at, c.id))]

    def choices_with_step(self, step: str, since: datetime, limit: int) -> tuple[list[ChoiceRow], int]:
        """The choices of one step (NOBODY: referrals that reached nobody) since an instant, newest first."""
        c = sms_recipient_choices.c
        where = (c.step == step, c.created_at >= since)
        total = self.session.execute(select(func.count()).select_from(sms_recipient_choices).where(*where)).scalar_one()
        rows = [ChoiceRow(*r) for r in self.session.execute(
            select(c.call_ref, c.referral_id, c.service, c.step, c.reason, c.created_at)
            .where(*where).order_by(c.created_at.desc(), c.id.desc()).limit(limit))]
        return rows, total


class _ShiftRow(NamedTuple):
    """A row of rota_shifts, as RotaStore.rota reads it (all its columns, in the table's order). A pattern
    has its weekday, a one-off shift its day (the reads select each kind by them): Any, not Optional."""

    id: int
    service: str
    weekday: Any
    day: Any
    start_time: time
    end_time: time
    label: str | None
    duty_lead_id: int | None
    valid_from: date | None
    valid_to: date | None
    active: bool


class _ChangeRow(NamedTuple):
    """A row of rota_changes, as RotaStore.rota reads it (all its columns, in the table's order). Which of
    the nullable columns a change fills depends on its kind (cover, swap, leave): Any, not Optional."""

    id: int
    service: str
    kind: str
    shift_id: Any
    day: Any
    professionals: list[int] | None
    duty_lead_id: int | None
    professional_id: Any
    first_day: Any
    last_day: Any
    other_professional_id: Any
    other_shift_id: Any
    other_day: Any
    reason: str | None


# The rows are read by position: a column added to either table must be added to its class too.
for _row, _table in ((_ShiftRow, rota_shifts), (_ChangeRow, rota_changes)):
    if _row._fields != tuple(c.name for c in _table.columns):
        raise RuntimeError(f"{_table.name}'s columns are not {_row.__name__}'s fields")


@functools.cache
def _rota_reads(one_service: bool) -> tuple[Prepared, ...]:
    """The five reads of a rota for dates b_first to b_last, of the service b_service (one_service) or of
    every service: active weekly patterns; active one-off shifts on those dates; the members of both, in
    shift and professional order; the cover and swap changes touching those dates and the leave
    overlapping them; the standing duty leads. Built and compiled once each (adapters/prepared.py)."""
    first, last = bindparam("b_first", type_=Date()), bindparam("b_last", type_=Date())

    def of(column: Any) -> Any:
        return column == bindparam("b_service", type_=String()) if one_service else true()

    patterns = (of(rota_shifts.c.service), rota_shifts.c.weekday.is_not(None), rota_shifts.c.active.is_(True))
    one_offs = (of(rota_shifts.c.service), rota_shifts.c.day.is_not(None), rota_shifts.c.active.is_(True),
                rota_shifts.c.day >= first, rota_shifts.c.day <= last)
    shift_ids = union_all(select(rota_shifts.c.id).where(*patterns), select(rota_shifts.c.id).where(*one_offs))
    changes = (of(rota_changes.c.service),
               or_(and_(rota_changes.c.kind.in_([literal("cover"), literal("swap")]),
                        or_(rota_changes.c.day.between(first, last), rota_changes.c.other_day.between(first, last))),
                   and_(rota_changes.c.kind == literal("leave"), rota_changes.c.first_day <= last,
                        rota_changes.c.last_day >= first)))
    return tuple(Prepared(statement) for statement in (
        select(rota_shifts).where(*patterns).order_by(rota_shifts.c.id),
        select(rota_shifts).where(*one_offs).order_by(rota_shifts.c.id),
        select(rota_shift_members.c.shift_id, rota_shift_members.c.professional_id)
        .where(rota_shift_members.c.shift_id.in_(shift_ids))
        .order_by(rota_shift_members.c.shift_id, rota_shift_members.c.professional_id),
        select(rota_changes).where(*changes).order_by(rota_changes.c.id),
        select(standing_duty_leads.c.service, standing_duty_leads.c.professional_id)
        .where(of(standing_duty_leads.c.service)).order_by(standing_duty_leads.c.service)))
