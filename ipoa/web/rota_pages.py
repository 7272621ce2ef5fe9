"""Supervisors and administrators edit the onward services' rotas in the browser (issue 13): each service's
week day by day, its weekly pattern shifts, and a form for every change service/rotas.py makes (a weekly
shift added, edited or stopped, a one-off shift, a cover, leave, a swap, the standing duty lead, a CSV
imported whole or not at all), each audited there as a rota_changed security event. A change that opens a
gap in the next week says so (service/rota_warnings.py), in a warning callout on the service's rota.

Every form is read here before anything is stored: a problem (a missing or garbled time, a date that is not
one, a professional or shift that is not this service's, text too long or with control characters) shows
the form again with status 400, the NHS.UK error summary and the message beside the field it names
(docs/security.md: hostile input refused with a 4xx naming the field)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for

from ..domain import date_parts
from ..domain.calendar import LONDON
from ..domain.rota import RotaError
from ..domain.validation import EARLIEST_DAY, LATEST_DAY, day_in_range, text_problem, whole_number
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import rota_warnings as rw
from ..service import rotas
from ..service.errors import NotFound
from .converters import ID_LARGEST
from .form_values import part_names

bp = Blueprint("rotas_admin", __name__, url_prefix="/rotas")

WEEK_MESSAGE = (f"The week must be a date written YYYY-MM-DD from {EARLIEST_DAY.year} to {LATEST_DAY.year}, "
                "for example 2026-12-07.")
CAPABILITY = "rotas.manage"
LABEL_MAX = 20  # rota_shifts.label
REASON_MAX = 200  # rota_changes.reason
ID_MAX = 12  # digits of an id: longer is no id
GAPS_KEY = "rota_gap_warning"  # the session's gap warning, shown once on the service's rota
TIME_HINT = "24-hour clock, UK time, for example 08:00. An end at or before the start is the next day."

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def _day_words(day: date) -> str:
    return f"{day:%A} {day.day} {MONTHS[day.month - 1]} {day.year}"


# -- reading the forms -----------------------------------------------------------------------------------

@dataclass
class Field:
    """One input of a form, as the template draws it (templates/rota_form.html)."""

    name: str
    kind: str  # text, time, date, select, checkboxes, radios, textarea, file
    label: str
    hint: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)
    choose: str = "Choose…"


class Reader:
    """Reads a posted form field by field, keeping what was typed (to show again) and each problem (keyed
    by field name, in the order read)."""

    def __init__(self, form: Mapping[str, Any]):
        self.form = form
        self.errors: dict[str, str] = {}
        self.error_parts: dict[str, list[str]] = {}
        self.values: dict[str, str] = {}
        self.checked: dict[str, list[str]] = {}

    def _raw(self, name: str, limit: int = 400) -> str | None:
        value = self.form.get(name, "")
        if not isinstance(value, str):
            value = ""
        self.values[name] = value[:limit]
        if len(value) > limit:
            self.errors[name] = f"The {name.replace('_', ' ')} is too long: it must be {limit} characters or fewer"
            return None
        problem = text_problem(value, multiline=False)
        if problem:
            self.errors[name] = (f"The {name.replace('_', ' ')} contains a character that is not allowed "
                                 "(a control character or a line break): remove it")
            return None
        return value.strip()

    def text(self, name: str, label: str, limit: int) -> str | None:
        value = self._raw(name, 400)
        if value is None:
            return None
        if len(value) > limit:
            self.errors[name] = f"{label} must be {limit} characters or fewer"
            return None
        return value or None

    def time(self, name: str, label: str) -> time | None:
        value = self._raw(name, 20)
        if value is None:
            return None
        parsed = date_parts.parse_time(value)
        if isinstance(parsed, date_parts.PartsProblem):
            self.errors[name] = (f"Enter the {label.lower()}" if not value
                                 else f"The {label.lower()} must be a 24-hour time like 08:00 or 20:30")
            return None
        return parsed

    def date(self, name: str, label: str, *, required: bool) -> date | None:
        self.values.update({k: (v if isinstance(v := self.form.get(k, ""), str) else "")[:10]
                            for k in part_names(name)})
        boxes = [self.form.get(k, "") for k in part_names(name)]
        if any(not isinstance(b, str) or len(b) > 10 or text_problem(b) for b in boxes):
            self.errors[name] = f"The {label.lower()} must be a real date, for example 5 12 2026"
            return None
        parsed = date_parts.parse_date(*boxes)
        if parsed is None:
            if required:
                self.errors[name] = f"Enter the {label.lower()}"
            return None
        if isinstance(parsed, date_parts.PartsProblem):
            self.errors[name] = f"The {label.lower()} must be a real date, for example 5 12 2026"
            self.error_parts[name] = list(parsed.parts)
            return None
        if not day_in_range(parsed):  # a shift on 31/12/9999 ended in year 10000: every page showing it a 500
            self.errors[name] = (f"The {label.lower()} must be from {EARLIEST_DAY.year} to {LATEST_DAY.year}, "
                                 "for example 5 12 2026")
            self.error_parts[name] = ["year"]
            return None
        return parsed

    def _picked(self, name: str, label: str, *, required: bool) -> str | None:
        """What was chosen from a list, or None: nothing chosen ("Choose the ..." when required) or unreadable."""
        value = self._raw(name, 40)
        if value is None:
            return None
        if not value:
            if required:
                self.errors[name] = f"Choose the {label.lower()}"
            return None
        return value

    def choice(self, name: str, label: str, allowed: Iterable[str], *, required: bool) -> str | None:
        value = self._picked(name, label, required=required)
        if value is None:
            return None
        if value not in set(allowed):
            self.errors[name] = f"Choose the {label.lower()} from the list"
            return None
        return value

    def one_id(self, name: str, label: str, allowed: Iterable[int], *, required: bool) -> int | None:
        """An id chosen from a list (a professional or shift of this service)."""
        value = self._picked(name, label, required=required)
        if value is None:
            return None
        number = whole_number(value, ID_MAX)
        if number is None or number not in set(allowed):
            self.errors[name] = f"Choose the {label.lower()} from the list: that is not one of this service's"
            return None
        return number

    def ids(self, name: str, label: str, allowed: Iterable[int]) -> list[int] | None:
        getlist = getattr(self.form, "getlist", None)
        raw = getlist(name) if getlist is not None else []
        self.checked[name] = [v for v in raw if isinstance(v, str)][:50]
        ok = set(allowed)
        out: list[int] = []
        for value in raw:
            number = whole_number(value, ID_MAX) if isinstance(value, str) else None
            if number is None or number not in ok:
                self.errors[name] = f"Choose the {label.lower()} from the list: one is not this service's"
                return None
            if number in out:
                self.errors[name] = f"Each of the {label.lower()} can be chosen once"
                return None
            out.append(number)
        return out


def _people_options(people: list[rw.Named]) -> list[tuple[str, str]]:
    return [(str(p.id), p.name) for p in people]


def _shift_options(patterns: list[rw.PatternView]) -> list[tuple[str, str]]:
    return [(str(p.id), p.describe) for p in patterns]


WEEKDAY_OPTIONS = [(str(i), name) for i, name in enumerate(rw.WEEKDAYS)]


def _runs(p: rw.PatternView, day: date) -> bool:
    return (day.weekday() == p.weekday and (p.valid_from is None or day >= p.valid_from)
            and (p.valid_to is None or day <= p.valid_to))


# -- the pages -----------------------------------------------------------------------------------------------

def _service(code: str) -> Any:
    entry = services().directory.services.get(code)
    if entry is None:
        abort(404)
    return entry


def _today() -> date:
    return services().clock.now().astimezone(LONDON).date()


@bp.get("/")
@requires(CAPABILITY)
def index():
    svc = services()
    now = svc.clock.now()
    ahead = rotas.outlook(svc, now)
    rows = []
    for code, entry in svc.directory.services.items():
        duty = rotas.on_duty_now(svc, code, now)
        seen = ahead.services.get(code)
        rows.append({
            "code": code, "name": entry.name, "now": [p.name for p in duty.professionals],
            "next_at": seen.next_at if seen else None, "next_names": list(seen.next_names) if seen else [],
            "gaps": [rw.gap_words(s, e) for s, e in seen.gaps.intervals] if seen else [],
        })
    return render_template("rotas_index.html", rows=rows)


def _week_arg() -> date | None:
    given = request.args.get("week")
    if given is None:
        return rw.monday_of(_today())
    day = _day_arg(given)
    return rw.monday_of(day) if day is not None else None


# A rota's dates run from 2000 to 2099 (domain/validation.py); a week is any Monday-to-Sunday week holding one
# of them, so the first begins on Monday 27 December 1999 and the last ends on Sunday 3 January 2100. Its page
# and its download hold only its dates in range (service/rotas.export_csv, service/rota_warnings.week).
FIRST_MONDAY = rw.monday_of(EARLIEST_DAY)


def _day_arg(given: str) -> date | None:
    """A week's or an export's day as the query string gives it, YYYY-MM-DD; None if it is not one, or is not
    in a week holding a date from 2000 to 2099 (9999-12-31's week overflowed date arithmetic: a 500)."""
    try:
        day = date.fromisoformat(given.strip()[:10])
    except ValueError:
        return None
    return day if FIRST_MONDAY <= day <= LATEST_DAY else None


@bp.get("/<service>")
@requires(CAPABILITY)
def service_rota(service: str):
    entry = _service(service)
    monday = _week_arg()
    if monday is None:
        return render_template("error.html", code=400, title="Bad request", message=WEEK_MESSAGE), 400
    svc = services()
    week = rw.week(svc, service, monday)
    standing = rotas.on_duty_now(svc, service).standing_duty_lead
    warning = session.pop(GAPS_KEY, None)
    # No link to a week the page would refuse: none before the first week of 2000 nor after the last of 2099.
    previous = monday - timedelta(days=7) if monday > FIRST_MONDAY else None
    following = monday + timedelta(days=7) if monday + timedelta(days=7) <= LATEST_DAY else None
    return render_template("rota_service.html", service=entry, week=week, standing=standing,
                           previous=previous, following=following,
                           warning=warning if isinstance(warning, dict) else None, day_words=_day_words,
                           today=_today())


# -- the writes -----------------------------------------------------------------------------------------------

def _form(service: Any, kind: str, title: str, fields: list[Field], reader: Reader | None, *, button: str,
          status: int = 200, intro: str | None = None, action: str | None = None, multipart: bool = False,
          values: dict[str, str] | None = None, checked: dict[str, list[str]] | None = None):
    errors = reader.errors if reader else {}
    labels = {}
    for f in fields:
        if f.kind in ("checkboxes", "radios") and f.options:
            labels[f.name] = f"{f.name}-0"
    for key in errors:
        if key.startswith("csv-line-"):
            labels[key] = "csv"
    return render_template(
        "rota_form.html", service=service, kind=kind, title=title, fields=fields, errors=errors,
        error_parts=reader.error_parts if reader else {}, labels=labels,
        values=reader.values if reader else (values or {}), checked=reader.checked if reader else (checked or {}),
        dates=[f.name for f in fields if f.kind == "date"], submit_text=button, intro=intro,
        action=action or request.path, multipart=multipart), status


def _done(service: str, notice: str, found: list[rw.GapText], week_of: date | None = None):
    flash(notice, "success")
    if found:
        by_service: dict[str, list[str]] = {}
        for g in found:
            by_service.setdefault(g.service, []).append(g.words)
        directory = services().directory.services
        session[GAPS_KEY] = {"services": [{"code": code, "name": directory[code].name, "gaps": words}
                                          for code, words in by_service.items()]}
    else:
        session.pop(GAPS_KEY, None)
    if week_of is not None:
        return redirect(url_for("rotas_admin.service_rota", service=service, week=rw.monday_of(week_of).isoformat()))
    return redirect(url_for("rotas_admin.service_rota", service=service))


def _refused(reader: Reader, exc: Exception, where: str) -> None:
    """A refusal by the use case (rotas.InvalidRota, RotaError, NotFound), beside the field it concerns."""
    reader.errors.setdefault(where, str(exc)[:1].upper() + str(exc)[1:])


# What a rota change's use case refuses with: shown beside a field, the form again with 400.
_REFUSALS: tuple[type[Exception], ...] = (rotas.InvalidRota, RotaError, NotFound)


def _apply(reader: Reader, service: str, where: str, change: Callable[[], Any],
           refusals: tuple[type[Exception], ...] = _REFUSALS) -> list[rw.GapText] | None:
    """Make a rota change with its gap warning (service/rota_warnings.py): the gaps it opened, or None when
    the use case refused it (its message then stands beside `where`)."""
    try:
        _, found = rw.with_gap_warning(services(), service, change)
    except refusals as exc:
        _refused(reader, exc, where)
        return None
    return found


def _weekly_fields(people: list[rw.Named]) -> list[Field]:
    return [
        Field("weekday", "select", "Day of the week", options=WEEKDAY_OPTIONS),
        Field("start", "time", "Start time", hint=TIME_HINT),
        Field("end", "time", "End time", hint=TIME_HINT),
        Field("label", "text", "Label (optional)",
              hint=f"For example day, late or night; up to {LABEL_MAX} characters"),
        Field("members", "checkboxes", "Professionals on the shift", hint="Choose everyone who works it",
              options=_people_options(people)),
        Field("duty_lead", "select", "Duty lead (optional)", options=_people_options(people), choose="No duty lead"),
        Field("valid_from", "date", "Runs from (optional)", hint="Leave blank to start now. For example, 7 12 2026"),
        Field("valid_to", "date", "Runs until (optional)", hint="Leave blank to run on. For example, 31 3 2027"),
    ]


def _read_weekly(reader: Reader, people: list[rw.Named]) -> dict[str, Any]:
    ids = [p.id for p in people]
    weekday = reader.choice("weekday", "Day of the week", [v for v, _ in WEEKDAY_OPTIONS], required=True)
    values: dict[str, Any] = {
        "weekday": int(weekday) if weekday is not None else None,
        "start": reader.time("start", "Start time"),
        "end": reader.time("end", "End time"),
        "label": reader.text("label", "The label", LABEL_MAX),
        "members": reader.ids("members", "Professionals", ids),
        "duty_lead": reader.one_id("duty_lead", "Duty lead", ids, required=False),
        "valid_from": reader.date("valid_from", "Runs from date", required=False),
        "valid_to": reader.date("valid_to", "Runs until date", required=False),
    }
    if (values["valid_from"] and values["valid_to"] and values["valid_to"] < values["valid_from"]
            and "valid_to" not in reader.errors):
        reader.errors["valid_to"] = "The runs until date must be the same as or after the runs from date"
    return values


def _date_values(name: str, day: date | None) -> dict[str, str]:
    if day is None:
        return {}
    return dict(zip(part_names(name), (str(day.day), str(day.month), str(day.year)), strict=True))


@bp.route("/<service>/weekly/new", methods=["GET", "POST"])
@requires(CAPABILITY)
def add_weekly(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    fields = _weekly_fields(people)
    title = f"Add a weekly shift to {entry.code}"
    if request.method == "GET":
        return _form(entry, "weekly", title, fields, None, button="Add the weekly shift")
    reader = Reader(request.form)
    v = _read_weekly(reader, people)
    if not reader.errors:
        found = _apply(reader, service, "start", lambda: rotas.add_pattern_shift(
            svc, actor().username, service=service, weekday=v["weekday"], start=v["start"], end=v["end"],
            members=v["members"], duty_lead=v["duty_lead"], label=v["label"], valid_from=v["valid_from"],
            valid_to=v["valid_to"]))
        if found is not None:
            words = f"{rw.WEEKDAYS[v['weekday']]} {v['start']:%H:%M} to {v['end']:%H:%M}"
            return _done(service, f"Weekly shift added: {words}", found)
    return _form(entry, "weekly", title, fields, reader, button="Add the weekly shift", status=400)


def _pattern_or_404(service: str, shift_id: int) -> rw.PatternView:
    if not 0 < shift_id <= ID_LARGEST:
        abort(404)  # no such row; larger than the database's integers (SQLite raised OverflowError)
    try:
        return rw.pattern(services(), service, shift_id)
    except NotFound:
        abort(404)


@bp.route("/<service>/weekly/<int:shift_id>", methods=["GET", "POST"])
@requires(CAPABILITY)
def edit_weekly(service: str, shift_id: int):
    entry = _service(service)
    svc = services()
    shift = _pattern_or_404(service, shift_id)
    people = rw.active_professionals(svc, service)
    # Someone deactivated since is still shown ticked, so the form can take them off.
    known = {p.id for p in people}
    people += [rw.Named(p.id, f"{p.name} (no longer active)") for p in
               (*shift.professionals, *([shift.duty_lead] if shift.duty_lead else [])) if p.id not in known]
    people = list({p.id: p for p in people}.values())
    fields = _weekly_fields(people)
    title = f"Change the weekly shift: {shift.describe}"
    intro = "Changes apply from now on; covers, swaps and leave already recorded stay."
    if request.method == "GET":
        values = {"weekday": str(shift.weekday), "start": f"{shift.start:%H:%M}", "end": f"{shift.end:%H:%M}",
                  "label": shift.label or "", "duty_lead": str(shift.duty_lead.id) if shift.duty_lead else "",
                  **_date_values("valid_from", shift.valid_from), **_date_values("valid_to", shift.valid_to)}
        return _form(entry, "weekly", title, fields, None, button="Save the weekly shift", intro=intro,
                     values=values, checked={"members": [str(p.id) for p in shift.professionals]})
    reader = Reader(request.form)
    v = _read_weekly(reader, people)
    if v["weekday"] is not None and v["weekday"] != shift.weekday and "weekday" not in reader.errors:
        reader.errors["weekday"] = ("A weekly shift keeps its day: stop this one and add a shift on the other day")
    if not reader.errors:
        try:
            found = _apply(reader, service, "start", lambda: rotas.edit_pattern_shift(
                svc, actor().username, shift_id, members=v["members"], start=v["start"], end=v["end"],
                label=v["label"], duty_lead=v["duty_lead"], valid_from=v["valid_from"], valid_to=v["valid_to"]),
                refusals=(rotas.InvalidRota, RotaError))
        except NotFound:
            abort(404)
        if found is not None:
            return _done(service, f"Weekly shift changed: {rw.pattern(svc, service, shift_id).describe}", found)
    return _form(entry, "weekly", title, fields, reader, button="Save the weekly shift", intro=intro, status=400)


@bp.route("/<service>/weekly/<int:shift_id>/stop", methods=["GET", "POST"])
@requires(CAPABILITY)
def deactivate_weekly(service: str, shift_id: int):
    entry = _service(service)
    svc = services()
    shift = _pattern_or_404(service, shift_id)
    title = f"Stop the weekly shift: {shift.describe}?"
    intro = ("It will no longer run from now on. It is kept, with its covers and swaps, for the record. "
             "If nobody else is rostered then, the service is left with a gap.")
    fields = [Field("confirm", "radios", "Stop this weekly shift?", options=[("yes", "Yes, stop it")])]
    if request.method == "GET":
        return _form(entry, "stop", title, fields, None, button="Stop the weekly shift", intro=intro)
    reader = Reader(request.form)
    reader.choice("confirm", "Answer: choose yes to stop it", ["yes"], required=True)
    if not reader.errors:
        try:
            _, found = rw.with_gap_warning(svc, service, lambda: rotas.deactivate_pattern_shift(
                svc, actor().username, shift_id))
        except NotFound:
            abort(404)
        return _done(service, f"Weekly shift stopped: {shift.describe}", found)
    return _form(entry, "stop", title, fields, reader, button="Stop the weekly shift", intro=intro, status=400)


@bp.route("/<service>/one-off/new", methods=["GET", "POST"])
@requires(CAPABILITY)
def add_one_off(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    fields = [Field("day", "date", "Date", hint="The date the shift starts. For example, 5 12 2026"),
              *[f for f in _weekly_fields(people) if f.name in ("start", "end", "label", "members", "duty_lead")]]
    title = f"Add a one-off shift to {entry.code}"
    if request.method == "GET":
        return _form(entry, "one_off", title, fields, None, button="Add the one-off shift")
    reader = Reader(request.form)
    ids = [p.id for p in people]
    day = reader.date("day", "Date", required=True)
    start, end = reader.time("start", "Start time"), reader.time("end", "End time")
    label = reader.text("label", "The label", LABEL_MAX)
    members = reader.ids("members", "Professionals", ids)
    lead = reader.one_id("duty_lead", "Duty lead", ids, required=False)
    if day is not None and start is not None and end is not None:
        never = rotas.shift_refusal(day, start, end)  # beside its times; the use case's other refusals concern people
        if never is not None and "start" not in reader.errors:
            _refused(reader, rotas.InvalidRota(never), "start")
    if not reader.errors and day is not None and start is not None and end is not None:
        found = _apply(reader, service, "members", lambda: rotas.add_one_off_shift(
            svc, actor().username, service=service, day=day, start=start, end=end, members=members or (),
            duty_lead=lead, label=label))
        if found is not None:
            return _done(service, f"One-off shift added: {_day_words(day)}, {start:%H:%M} to {end:%H:%M}",
                         found, day)
    return _form(entry, "one_off", title, fields, reader, button="Add the one-off shift", status=400)


@bp.route("/<service>/cover", methods=["GET", "POST"])
@requires(CAPABILITY)
def cover(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    shifts = rw.patterns(svc, service)
    fields = [
        Field("shift", "select", "Weekly shift", options=_shift_options(shifts)),
        Field("day", "date", "Date", hint="The date of the shift to cover. For example, 9 12 2026"),
        Field("people", "radios", "Who works the shift that day",
              options=[("keep", "As rostered"), ("replace", "The professionals ticked below (none ticked: nobody)")]),
        Field("members", "checkboxes", "Professionals working it that day", options=_people_options(people)),
        Field("duty_lead", "select", "Duty lead that day", options=_people_options(people), choose="As rostered"),
        Field("reason", "text", "Reason (optional)", hint="For example, Ann on a course"),
    ]
    title = f"Cover a shift of {entry.code} on one date"
    given = request.args.get("shift", "")
    if request.method == "GET":
        values = {"people": "replace", "shift": given if given in {str(s.id) for s in shifts} else ""}
        day_arg = request.args.get("day", "")
        try:
            values.update(_date_values("day", date.fromisoformat(day_arg[:10])) if day_arg else {})
        except ValueError:
            pass
        return _form(entry, "cover", title, fields, None, button="Record the cover", values=values)
    reader = Reader(request.form)
    by_id = {s.id: s for s in shifts}
    ids = [p.id for p in people]
    shift_id = reader.one_id("shift", "Weekly shift", list(by_id), required=True)
    day = reader.date("day", "Date", required=True)
    mode = reader.choice("people", "Who works the shift that day", ["keep", "replace"], required=True)
    members = reader.ids("members", "Professionals working it that day", ids)
    lead = reader.one_id("duty_lead", "Duty lead that day", ids, required=False)
    reason = reader.text("reason", "The reason", REASON_MAX)
    if shift_id is not None and day is not None and not _runs(by_id[shift_id], day):
        reader.errors["day"] = f"That shift does not run on {_day_words(day)}: choose a {by_id[shift_id].weekday_name}"
    if mode == "keep" and lead is None and "people" not in reader.errors:
        reader.errors["people"] = "Choose the professionals who work it, or a duty lead, or both"
    if not reader.errors and shift_id is not None and day is not None:
        professionals = members if mode == "replace" else None
        found = _apply(reader, service, "day", lambda: rotas.cover(
            svc, actor().username, shift_id, day, professionals=professionals, duty_lead=lead,
            reason=reason or ""))
        if found is not None:
            return _done(service, f"Cover recorded: {by_id[shift_id].describe} on {_day_words(day)}", found, day)
    return _form(entry, "cover", title, fields, reader, button="Record the cover", status=400)


@bp.route("/<service>/leave", methods=["GET", "POST"])
@requires(CAPABILITY)
def leave(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    fields = [
        Field("professional", "select", "Professional", options=_people_options(people)),
        Field("first_day", "date", "First day of leave", hint="For example, 14 12 2026"),
        Field("last_day", "date", "Last day of leave", hint="For example, 18 12 2026"),
        Field("reason", "text", "Reason (optional)", hint="For example, annual leave"),
    ]
    title = f"Record leave for a professional of {entry.code}"
    intro = "They are taken off every weekly shift starting on those dates, as a member and as duty lead."
    if request.method == "GET":
        return _form(entry, "leave", title, fields, None, button="Record the leave", intro=intro)
    reader = Reader(request.form)
    names = {p.id: p.name for p in people}
    who = reader.one_id("professional", "Professional", list(names), required=True)
    first = reader.date("first_day", "First day of leave", required=True)
    last = reader.date("last_day", "Last day of leave", required=True)
    reason = reader.text("reason", "The reason", REASON_MAX)
    if first and last and last < first and "last_day" not in reader.errors:
        reader.errors["last_day"] = "The last day of leave must be the same as or after the first day"
    if not reader.errors and who is not None and first is not None and last is not None:
        found = _apply(reader, service, "professional", lambda: rotas.leave(
            svc, actor().username, who, first, last, reason or ""))
        if found is not None:
            return _done(service, f"Leave recorded: {names[who]} off from {_day_words(first)} to {_day_words(last)}",
                         found, first)
    return _form(entry, "leave", title, fields, reader, button="Record the leave", intro=intro, status=400)


@bp.route("/<service>/swap", methods=["GET", "POST"])
@requires(CAPABILITY)
def swap(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    shifts = rw.patterns(svc, service)
    fields = [
        Field("first", "select", "First professional", options=_people_options(people)),
        Field("first_shift", "select", "The first professional's shift", options=_shift_options(shifts)),
        Field("first_day", "date", "Date of the first professional's shift", hint="For example, 9 12 2026"),
        Field("second", "select", "Second professional", options=_people_options(people)),
        Field("second_shift", "select", "The second professional's shift", options=_shift_options(shifts)),
        Field("second_day", "date", "Date of the second professional's shift", hint="For example, 10 12 2026"),
    ]
    title = f"Swap two shifts of {entry.code}"
    intro = "Each works the other's place: the first professional the second's shift, and the second the first's."
    if request.method == "GET":
        return _form(entry, "swap", title, fields, None, button="Record the swap", intro=intro)
    reader = Reader(request.form)
    names = {p.id: p.name for p in people}
    by_id = {s.id: s for s in shifts}
    first = reader.one_id("first", "First professional", list(names), required=True)
    first_shift = reader.one_id("first_shift", "First professional's shift", list(by_id), required=True)
    first_day = reader.date("first_day", "Date of the first professional's shift", required=True)
    second = reader.one_id("second", "Second professional", list(names), required=True)
    second_shift = reader.one_id("second_shift", "Second professional's shift", list(by_id), required=True)
    second_day = reader.date("second_day", "Date of the second professional's shift", required=True)
    if first is not None and first == second and "second" not in reader.errors:
        reader.errors["second"] = "Choose a second professional other than the first"
    for shift_id, day, where in ((first_shift, first_day, "first_day"), (second_shift, second_day, "second_day")):
        if shift_id is not None and day is not None and not _runs(by_id[shift_id], day):
            reader.errors[where] = (f"That shift does not run on {_day_words(day)}: choose a "
                                    f"{by_id[shift_id].weekday_name}")
    if (not reader.errors and first is not None and second is not None and first_shift is not None
            and second_shift is not None and first_day is not None and second_day is not None):
        found = _apply(reader, service, "first", lambda: rotas.swap(
            svc, actor().username, first=first, first_shift=first_shift, first_day=first_day, second=second,
            second_shift=second_shift, second_day=second_day))
        if found is not None:
            return _done(service, f"Swap recorded: {names[first]} and {names[second]}", found, first_day)
    return _form(entry, "swap", title, fields, reader, button="Record the swap", intro=intro, status=400)


@bp.route("/<service>/duty-lead", methods=["GET", "POST"])
@requires(CAPABILITY)
def standing_duty_lead(service: str):
    entry = _service(service)
    svc = services()
    people = rw.active_professionals(svc, service)
    directory = ("directory", "None: the directory's duty lead number")
    fields = [Field("professional", "select", "Standing duty lead", options=[directory, *_people_options(people)],
                    hint="Texted when a shift names no duty lead and nobody is on duty")]
    title = f"Set the standing duty lead of {entry.code}"
    if request.method == "GET":
        standing = rotas.on_duty_now(svc, service).standing_duty_lead
        values = {"professional": str(standing.id) if standing and standing.id is not None else "directory"}
        return _form(entry, "duty_lead", title, fields, None, button="Set the standing duty lead", values=values)
    reader = Reader(request.form)
    names = {p.id: p.name for p in people}
    who = None
    if request.form.get("professional") != "directory":  # the directory's number: no professional
        who = reader.one_id("professional", "Standing duty lead", list(names), required=True)
    if not reader.errors:
        found = _apply(reader, service, "professional", lambda: rotas.set_standing_duty_lead(
            svc, actor().username, service, who))
        if found is not None:
            said = names[who] if who is not None else "the directory's duty lead number"
            return _done(service, f"Standing duty lead set: {said}", found)
    return _form(entry, "duty_lead", title, fields, reader, button="Set the standing duty lead", status=400)


CSV_HINT = ("One row per professional per shift, with the header service,date,start,end,professional,role; "
            "the professional by UK mobile or id, the role member or duty_lead. A file with any bad line imports "
            "nothing.")


@bp.route("/import", methods=["GET", "POST"])
@requires(CAPABILITY)
def import_csv():
    svc = services()
    back = request.values.get("service", "")
    back = back if back in svc.directory.services else ""
    fields = [Field("file", "file", "Rota CSV file", hint="A .csv file exported from the rostering tool"),
              Field("csv", "textarea", "Or paste the CSV", hint=CSV_HINT)]
    title = "Import a rota CSV"
    entry = svc.directory.services.get(back)
    action = url_for("rotas_admin.import_csv", service=back) if back else url_for("rotas_admin.import_csv")
    if request.method == "GET":
        return _form(entry, "import", title, fields, None, button="Import the rota", action=action, multipart=True)
    reader = Reader({})
    text = ""
    upload = request.files.get("file")
    pasted = request.form.get("csv", "")
    reader.values["csv"] = pasted if isinstance(pasted, str) else ""
    if upload is not None and upload.filename:
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            reader.errors["file"] = "The file must be a CSV saved as text (UTF-8): export it again"
    if not text and "file" not in reader.errors:
        text = reader.values["csv"]
        if not text.strip():
            reader.errors["csv"] = "Choose a rota CSV file or paste the CSV"
    if not reader.errors:
        result, found = rw.with_gap_warning(svc, None, lambda: rotas.import_csv(svc, actor().username, text))
        if result.ok:
            shifts = f"{result.shifts} shift{'' if result.shifts == 1 else 's'}"
            if back or found:  # a gap opened: shown on the rota of the first service it is in
                return _done(back or found[0].service, f"Imported {shifts}", found)
            flash(f"Imported {shifts}", "success")
            return redirect(url_for("rotas_admin.index"))
        count = len(result.problems)
        reader.errors["csv"] = (f"The CSV has {count} problem{'' if count == 1 else 's'}, listed above: fix "
                                f"{'it' if count == 1 else 'them'} and import it again. Nothing was imported.")
        for i, message in enumerate(result.messages[:100]):
            reader.errors[f"csv-line-{i}"] = message
    return _form(entry, "import", title, fields, reader, button="Import the rota", action=action, multipart=True,
                 status=400)


def _csv(body: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(body, mimetype="text/csv", headers=headers)


def _first_arg() -> date:
    given = request.args.get("week") or request.args.get("from")
    if given:
        day = _day_arg(given)
        if day is None:
            abort(400, WEEK_MESSAGE)
        return day
    return _today()


@bp.get("/export.csv")
@requires(CAPABILITY)
def export_all():
    first = _first_arg()
    return _csv(rotas.export_csv(services(), None, first=first), f"rota-{first.isoformat()}.csv")


@bp.get("/<service>/export.csv")
@requires(CAPABILITY)
def export_service(service: str):
    _service(service)
    first = _first_arg()
    return _csv(rotas.export_csv(services(), service, first=first), f"rota-{service}-{first.isoformat()}.csv")


__all__ = ["bp"]
