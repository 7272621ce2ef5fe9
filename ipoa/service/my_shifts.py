"""A professional's own shifts for their worklist page (issue 13: "the professional's pages show their
shifts"): the occurrences of the next week they work or lead, from the rota with its covers, leave and
swaps applied (domain/rota), which one is on now, who leads each, and whether they texted OFF
(service/availability.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..domain.calendar import LONDON, wall_instant
from ..domain.rota import occurrences
from ..domain.sms.timetext import local_time_text

if TYPE_CHECKING:
    from ..bootstrap import Services

DAYS_AHEAD = 7  # "Your shifts" lists the next 7 days (docs/domain.md, "Rotas")


def week_ahead(now: datetime) -> datetime:
    """The end of "the next 7 days" from `now`: the same UK wall-clock time 7 calendar days later, not 168 hours
    (across a clock change a week of days is 167 or 169 hours). A wall time the clocks skip or repeat on that day
    is read as rotas and opening hours read it (calendar.wall_instant, docs/domain.md "Rotas")."""
    local = now.astimezone(LONDON)
    return wall_instant(local.date() + timedelta(days=DAYS_AHEAD), local.time())


@dataclass(frozen=True)
class MyShift:
    start: datetime  # UTC
    end: datetime  # UTC
    label: str | None
    service: str
    duty_lead: str | None  # the name of the shift's duty lead, else of the service's standing duty lead
    standing_lead: bool  # duty_lead is the service's standing duty lead (the shift names none)
    leading: bool  # the professional is this shift's duty lead
    member: bool  # the professional works it (a member, as the rota with its changes says)
    on_now: bool

    @property
    def when(self) -> str:
        """'Mon 23 Nov 08:00 to 20:00' (London; the end's date when it is another day)."""
        return f"{local_time_text(self.start)} to {local_time_text(self.end, self.start)}"


@dataclass(frozen=True)
class MyShifts:
    shifts: tuple[MyShift, ...]
    unavailable_until: datetime | None  # texted OFF: not texted before this instant
    reply_number: str | None  # the number to text ON to (TWILIO_FROM), when configured

    now: datetime

    @property
    def on_now(self) -> MyShift | None:
        return next((s for s in self.shifts if s.on_now), None)

    @property
    def until_text(self) -> str | None:
        """When the OFF ends, as the texts say it: '20:00' today, else 'Tue 24 Nov 08:00'."""
        return local_time_text(self.unavailable_until, self.now) if self.unavailable_until else None


def my_shifts(svc: Services, prof: Any, now: datetime | None = None) -> MyShifts:
    """The professional's (a professionals row) shift occurrences overlapping the next 7 days (to the same UK
    wall-clock time 7 days on: week_ahead), in order."""
    now = now or svc.clock.now()
    until = week_ahead(now)
    with svc.uow() as uow:
        rota = uow.rotas.rota(prof.service, now, until)
        mine = [o for o in occurrences(rota, now, until, prof.service)
                if prof.id in o.professionals or o.duty_lead == prof.id]
        standing = rota.standing_duty_lead(prof.service)
        people = uow.rotas.contacts([*(o.duty_lead for o in mine if o.duty_lead is not None),
                                     *([standing] if standing is not None else [])])
    entry = svc.directory.services.get(prof.service)
    directory_lead = f"the {prof.service} duty lead" if entry is not None and entry.duty_lead else None

    def lead_of(lead_id: int | None) -> tuple[str | None, bool]:
        if lead_id is not None and lead_id in people:
            return people[lead_id].name, False
        if standing is not None and standing in people:
            return people[standing].name, True
        return directory_lead, True

    shifts = []
    for o in mine:
        name, is_standing = lead_of(o.duty_lead)
        shifts.append(MyShift(o.start, o.end, o.label, o.service, name, is_standing and o.duty_lead is None,
                              o.duty_lead == prof.id, prof.id in o.professionals, o.covers_instant(now)))
    off_until = prof.unavailable_until if prof.unavailable_until is not None and prof.unavailable_until > now else None
    return MyShifts(tuple(shifts), off_until, svc.twilio.get("from") or None, now)
