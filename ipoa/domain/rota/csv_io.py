"""A rota as CSV, in the shape rostering tools export: one row per professional per shift,

    service,date,start,end,professional,role
    CRT,2026-06-03,08:00,20:00,07700 900123,member
    CRT,03/06/2026,08:00,20:00,+447700900456,duty_lead

- date: YYYY-MM-DD or DD/MM/YYYY; start and end: 24-hour HH:MM UK (Europe/London) wall-clock time, an end
  at or before the start being on the next day (24:00 is accepted as an end: midnight), so a shift is at
  most 24 hours on the wall (25 real hours over the night the clocks go back); one wholly inside the hour
  the clocks skip never happens and is refused (shifts.shift_problem, the forms' rule too);
- professional: their mobile (E.164 or UK format) or an id, which the caller's resolver turns into a
  professional's id, an active professional of the line's service when the caller says whose each is
  (`service_of`); role: member (works the shift) or duty_lead (leads it; a person who works and leads
  it has a row for each).
Rows with the same service, date, start and end are one shift, which must name exactly one duty lead.

Parsing checks the whole file and returns either every shift or every problem, each with its line
number, in plain English (what is wrong and what to do): nothing is half-imported, the caller stores all
of the shifts or none.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, time

from ..validation import EARLIEST_DAY, LATEST_DAY, day_in_range, normalise_uk_mobile, text_problem
from .shifts import NEVER, OneOffShift, ProfessionalId, shift_problem

__all__ = ["HEADER", "MEMBER", "DUTY_LEAD", "ROLES", "CsvProblem", "RotaCsv", "parse_rota_csv", "export_csv"]

HEADER = ("service", "date", "start", "end", "professional", "role")
MEMBER = "member"
DUTY_LEAD = "duty_lead"
ROLES = (MEMBER, DUTY_LEAD)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")

# The messages (NHS.UK error message style: say what is wrong and what to do).
EMPTY_FILE = "The file is empty: export the rota again with the header " + ",".join(HEADER)
NO_SHIFTS = "The file has a header but no shifts: add a row for each professional on each shift"
WRONG_HEADER = "the first line must be the header " + ",".join(HEADER) + " (found {found!r})"
NOT_CSV = "this line could not be read as CSV ({detail}): check its quotes"
COLUMNS = "expected 6 values (service, date, start, end, professional, role) but found {count}"
BAD_TEXT = "the {column} contains a character that is not allowed: remove it"
ONE_LINE = "the {column} must be on one line: remove the tab or line break"
MISSING = "the {column} is missing"
UNKNOWN_SERVICE = "'{value}' is not a service in the directory; use its code, like CRT"
BAD_DATE = ("the date '{value}' is not a real date from " + f"{EARLIEST_DAY.year} to {LATEST_DAY.year}"
            + "; use YYYY-MM-DD or DD/MM/YYYY")
BAD_TIME = "the {column} time '{value}' is not a time of day; use 24-hour HH:MM"
BAD_ROLE = "the role '{value}' is not member or duty_lead"
UNKNOWN_MOBILE = "no professional has the mobile {value}: add them first, or check the number"
UNKNOWN_ID = "no professional has the mobile or id '{value}': give their UK mobile or their id"
OTHER_SERVICE = ("the professional {value} is registered with {theirs}, not {service}: a rota holds only its "
                 "own service's professionals; check the service or the number")
DEACTIVATED = "the professional {value} is deactivated: reactivate them first, or remove the line"
REPEATED = "this repeats line {first}: the same professional in the same role on the same shift"
NO_DUTY_LEAD = "the {shift} names no duty lead: add a row for it with the role duty_lead"
TWO_DUTY_LEADS = "the {shift} already has a duty lead (line {first}): a shift has one duty lead"
NO_TIME = "the {shift} does not happen: its times fall in the hour the clocks skip; change the times"


@dataclass(frozen=True)
class CsvProblem:
    line: int | None  # None: the file as a whole
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass(frozen=True)
class RotaCsv:
    """The result of parsing: the shifts when there are no problems, otherwise no shifts and every problem."""

    shifts: tuple[OneOffShift, ...]
    problems: tuple[CsvProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


def _date(text: str) -> date | None:
    if m := _ISO_DATE.fullmatch(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _UK_DATE.fullmatch(text):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    else:
        return None
    try:
        parsed = date(year, month, day)
    except ValueError:
        return None
    return parsed if day_in_range(parsed) else None  # a shift on 31/12/9999 would end in year 10000


def _time(text: str, *, end: bool) -> time | None:
    m = _TIME.fullmatch(text)
    if not m:
        return None
    hours, minutes = int(m[1]), int(m[2])
    if end and (hours, minutes) == (24, 0):
        return time(0, 0)
    return time(hours, minutes) if hours <= 23 and minutes <= 59 else None


_Key = tuple[str, date, time, time]


@dataclass
class _Shift:
    first_line: int
    members: list[ProfessionalId]
    lead: ProfessionalId | None = None
    lead_line: int | None = None


def _describe(key: _Key) -> str:
    service, day, start, end = key
    return f"{service} shift on {day:%d/%m/%Y} from {start:%H:%M} to {end:%H:%M}"


def _rows(text: str) -> Iterable[tuple[int, list[str] | str]]:
    """(line number, cells) per non-blank row, or (line, error detail) where the CSV cannot be read."""
    reader = csv.reader(io.StringIO(text))
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, str(exc)
            return
        if any(cell.strip() for cell in row):
            yield line, row
        line = reader.line_num + 1


def parse_rota_csv(text: str, services: Collection[str],
                   resolve: Callable[[str], ProfessionalId | None],
                   service_of: Callable[[ProfessionalId], str | None] | None = None) -> RotaCsv:
    """Parse a whole rota CSV. `services`: the service codes that exist; `resolve`: a professional's id
    from their mobile (given in E.164) or from the text of the cell when it is not a UK mobile;
    `service_of`: the service of a professional who is active (None: deactivated), when given, so that a
    line naming another service's professional or a deactivated one is refused as the rota's forms refuse
    them (they offer only the service's active professionals)."""
    text = text.removeprefix("\ufeff")  # spreadsheet programs start UTF-8 CSV with a byte-order mark
    if not text.strip():
        return RotaCsv((), (CsvProblem(None, EMPTY_FILE),))
    problems: list[CsvProblem] = []
    shifts: dict[_Key, _Shift] = {}
    tainted: set[_Key] = set()  # shifts with a bad row: checked no further, so one mistake is told once
    seen: dict[tuple[_Key, ProfessionalId, str], int] = {}
    header_done = False
    for line, row in _rows(text):
        if isinstance(row, str):
            problems.append(CsvProblem(line, NOT_CSV.format(detail=row)))
            break
        if not header_done:
            found = tuple(cell.strip().lower() for cell in row)
            if found != HEADER:
                return RotaCsv((), (CsvProblem(line, WRONG_HEADER.format(found=",".join(row)[:80])),))
            header_done = True
            continue
        if len(row) != len(HEADER):
            problems.append(CsvProblem(line, COLUMNS.format(count=len(row))))
            continue
        row_problems: list[str] = []
        cells = dict(zip(HEADER, (cell.strip() for cell in row)))
        for column, value in cells.items():
            if text_problem(value, multiline=True):
                row_problems.append(BAD_TEXT.format(column=column))
            elif text_problem(value):
                row_problems.append(ONE_LINE.format(column=column))
            elif not value:
                row_problems.append(MISSING.format(column=column))
        if row_problems:
            problems += [CsvProblem(line, m) for m in row_problems]
            continue
        service = cells["service"].upper()
        if service not in services:
            row_problems.append(UNKNOWN_SERVICE.format(value=cells["service"]))
        day = _date(cells["date"])
        if day is None:
            row_problems.append(BAD_DATE.format(value=cells["date"]))
        start = _time(cells["start"], end=False)
        if start is None:
            row_problems.append(BAD_TIME.format(column="start", value=cells["start"]))
        end = _time(cells["end"], end=True)
        if end is None:
            row_problems.append(BAD_TIME.format(column="end", value=cells["end"]))
        mobile = normalise_uk_mobile(cells["professional"])
        who = resolve(mobile or cells["professional"])
        if who is None:
            message = UNKNOWN_MOBILE if mobile else UNKNOWN_ID
            row_problems.append(message.format(value=cells["professional"]))
        elif service_of is not None and service in services:
            theirs = service_of(who)
            if theirs is None:
                row_problems.append(DEACTIVATED.format(value=cells["professional"]))
            elif theirs != service:
                row_problems.append(OTHER_SERVICE.format(value=cells["professional"], theirs=theirs,
                                                         service=service))
        role = re.sub(r"[\s-]+", "_", cells["role"].lower())
        if role not in ROLES:
            row_problems.append(BAD_ROLE.format(value=cells["role"]))
        problems += [CsvProblem(line, m) for m in row_problems]
        if day is None or start is None or end is None:
            continue
        key: _Key = (service, day, start, end)
        shift = shifts.setdefault(key, _Shift(line, []))
        if row_problems or who is None:
            tainted.add(key)
            continue
        if (key, who, role) in seen:
            problems.append(CsvProblem(line, REPEATED.format(first=seen[key, who, role])))
            tainted.add(key)
            continue
        seen[key, who, role] = line
        if role == MEMBER:
            shift.members.append(who)
        elif shift.lead is not None:
            problems.append(CsvProblem(line, TWO_DUTY_LEADS.format(shift=_describe(key), first=shift.lead_line)))
            tainted.add(key)
        else:
            shift.lead, shift.lead_line = who, line
    if not header_done:
        return RotaCsv((), (CsvProblem(None, EMPTY_FILE),))
    if not shifts and not problems:
        return RotaCsv((), (CsvProblem(None, NO_SHIFTS),))
    out: list[OneOffShift] = []
    for shift_key, shift in shifts.items():
        if shift_key in tainted:
            continue
        service, day, start, end = shift_key
        if shift.lead is None:
            problems.append(CsvProblem(shift.first_line, NO_DUTY_LEAD.format(shift=_describe(shift_key))))
            continue
        # The forms' rule too (shifts.shift_problem): no limit in real hours, so an export imports again.
        if shift_problem(day, start, end) == NEVER:
            problems.append(CsvProblem(shift.first_line, NO_TIME.format(shift=_describe(shift_key))))
            continue
        out.append(OneOffShift(service, day, start, end, tuple(shift.members), shift.lead))
    if problems:
        return RotaCsv((), tuple(sorted(problems, key=lambda p: (p.line or 0))))
    return RotaCsv(tuple(out), ())


def export_csv(shifts: Iterable[OneOffShift], reference: Callable[[ProfessionalId], str] = str) -> str:
    """The shifts in the import's shape, a row per member then the duty lead's row. `reference` writes a
    professional (their id by default; a caller may give their mobile, best in UK format: a spreadsheet
    reads a leading + as a formula). A shift naming nobody has no row to be written on, so it is left out."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for shift in shifts:
        when = [shift.service, shift.day.isoformat(), f"{shift.start:%H:%M}", f"{shift.end:%H:%M}"]
        for member in shift.professionals:
            writer.writerow([*when, reference(member), MEMBER])
        if shift.duty_lead is not None:
            writer.writerow([*when, reference(shift.duty_lead), DUTY_LEAD])
    return buffer.getvalue()
