"""The rota CSV (ipoa/domain/rota/csv_io.py): a whole file in, either every shift or every bad line with its
number; nothing half-imported; export in the same shape (docs/domain.md, "Rotas")."""
from datetime import date, time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ipoa.domain.rota import OneOffShift, export_csv, parse_rota_csv
from ipoa.domain.rota.shifts import shift_problem
from tests.helpers.properties import examples

SERVICES = {"CRT", "OOHV", "DN"}
# Professionals by mobile (E.164) and by id.
MOBILES = {"+447700900101": 1, "+447700900102": 2, "+447700900103": 3}
IDS = {"4": 4, "5": 5, "6": 6}
HEADER = "service,date,start,end,professional,role\n"


def resolve(reference: str) -> int | None:
    return MOBILES.get(reference) or IDS.get(reference)


def parse(text: str):
    return parse_rota_csv(text, SERVICES, resolve)


def test_a_good_file_gives_its_shifts_grouping_rows_by_shift():
    result = parse(HEADER
                   + "CRT,2026-06-03,08:00,20:00,07700 900101,member\n"
                   + "CRT,03/06/2026,08:00,20:00,+447700900102,member\n"
                   + "CRT,2026-06-03,08:00,20:00,+44 7700 900103,duty_lead\n"
                   + "OOHV,2026-06-03,20:00,08:00,4,member\n"
                   + "oohv,3/6/2026,20:00,08:00,5,Duty Lead\n"
                   + "DN,2026-06-04,16:00,24:00,6,duty_lead\n")
    assert result.ok and result.problems == ()
    assert result.shifts == (
        OneOffShift("CRT", date(2026, 6, 3), time(8), time(20), (1, 2), 3),
        OneOffShift("OOHV", date(2026, 6, 3), time(20), time(8), (4,), 5),
        OneOffShift("DN", date(2026, 6, 4), time(16), time(0), (), 6),  # 24:00 is midnight ending the day
    )


def test_a_byte_order_mark_crlf_line_ends_and_blank_lines_are_accepted():
    text = "\ufeff" + HEADER.replace("\n", "\r\n") + "\r\nCRT,2026-06-03,08:00,20:00,4,duty_lead\r\n\r\n"
    assert parse(text).shifts == (OneOffShift("CRT", date(2026, 6, 3), time(8), time(20), (), 4),)


def test_the_same_person_may_work_and_lead_a_shift():
    result = parse(HEADER + "CRT,2026-06-03,08:00,20:00,4,member\nCRT,2026-06-03,08:00,20:00,4,duty_lead\n")
    assert result.shifts == (OneOffShift("CRT", date(2026, 6, 3), time(8), time(20), (4,), 4),)


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_imported():
    result = parse(HEADER                                                # line 1
                   + "CRT,2026-06-03,08:00,20:00,4,duty_lead\n"          # 2: good, but the file is bad
                   + "XYZ,2026-06-03,08:00,20:00,4,duty_lead\n"          # 3
                   + "CRT,31/02/2026,08:00,20:00,4,duty_lead\n"          # 4
                   + "CRT,2026-06-04,8am,20:00,4,duty_lead\n"            # 5
                   + "CRT,2026-06-04,08:00,20:00,4,boss\n"               # 6
                   + "CRT,2026-06-04,08:00,25:00,4,duty_lead\n"          # 7
                   + "CRT,2026-06-05,08:00,20:00,07700 900999,member\n"  # 8
                   + "CRT,2026-06-05,08:00,20:00,99,duty_lead\n"         # 9
                   + "CRT,2026-06-06,08:00,20:00,4\n"                    # 10
                   + "CRT,2026-06-06,08:00,,4,member\n")                 # 11
    assert result.shifts == () and not result.ok
    assert result.messages == [
        "Line 3: 'XYZ' is not a service in the directory; use its code, like CRT",
        "Line 4: the date '31/02/2026' is not a real date from 2000 to 2099; use YYYY-MM-DD or DD/MM/YYYY",
        "Line 5: the start time '8am' is not a time of day; use 24-hour HH:MM",
        "Line 6: the role 'boss' is not member or duty_lead",
        "Line 7: the end time '25:00' is not a time of day; use 24-hour HH:MM",
        "Line 8: no professional has the mobile 07700 900999: add them first, or check the number",
        "Line 9: no professional has the mobile or id '99': give their UK mobile or their id",
        "Line 10: expected 6 values (service, date, start, end, professional, role) but found 5",
        "Line 11: the end is missing",
    ]


def test_a_line_with_several_problems_names_each():
    result = parse(HEADER + "XYZ,2026-13-01,08:00,20:00,4,boss\n")
    assert result.messages == [
        "Line 2: 'XYZ' is not a service in the directory; use its code, like CRT",
        "Line 2: the date '2026-13-01' is not a real date from 2000 to 2099; use YYYY-MM-DD or DD/MM/YYYY",
        "Line 2: the role 'boss' is not member or duty_lead",
    ]


@pytest.mark.parametrize("text, messages", [
    ("", ["The file is empty: export the rota again with the header service,date,start,end,professional,role"]),
    ("  \n\n", ["The file is empty: export the rota again with the header service,date,start,end,professional,role"]),
    (HEADER, ["The file has a header but no shifts: add a row for each professional on each shift"]),
    ("service,day,start,end,who,role\nCRT,2026-06-03,08:00,20:00,4,duty_lead\n",
     ["Line 1: the first line must be the header service,date,start,end,professional,role "
      "(found 'service,day,start,end,who,role')"]),
    ("CRT,2026-06-03,08:00,20:00,4,duty_lead\n",
     ["Line 1: the first line must be the header service,date,start,end,professional,role "
      "(found 'CRT,2026-06-03,08:00,20:00,4,duty_lead')"]),
])
def test_an_empty_file_or_a_wrong_header_is_refused(text, messages):
    result = parse(text)
    assert result.messages == messages and result.shifts == ()


def test_a_shift_without_a_duty_lead_or_with_two_is_refused():
    result = parse(HEADER
                   + "CRT,2026-06-03,08:00,20:00,4,member\n"      # 2: the shift names no duty lead
                   + "CRT,2026-06-03,08:00,20:00,5,member\n"      # 3
                   + "DN,2026-06-03,08:00,20:00,4,duty_lead\n"    # 4
                   + "DN,03/06/2026,08:00,20:00,5,duty_lead\n")   # 5: a second duty lead
    assert result.messages == [
        "Line 2: the CRT shift on 03/06/2026 from 08:00 to 20:00 names no duty lead: add a row for it with the "
        "role duty_lead",
        "Line 5: the DN shift on 03/06/2026 from 08:00 to 20:00 already has a duty lead (line 4): a shift has one "
        "duty lead",
    ]


def test_a_repeated_row_is_refused_however_the_mobile_is_written():
    result = parse(HEADER
                   + "CRT,2026-06-03,08:00,20:00,+447700900101,duty_lead\n"
                   + "CRT,2026-06-03,08:00,20:00,07700900101,member\n"
                   + "CRT,03/06/2026,08:00,20:00,07700 900 101,member\n")
    assert result.messages == [
        "Line 4: this repeats line 3: the same professional in the same role on the same shift"]


def test_a_shift_of_24_wall_hours_is_taken_whatever_the_clocks_do():
    # 08:00 to 08:00 is 24 hours on the wall: 25 real hours over the night the clocks go back, 23 over the night
    # they go forward. The limit is the wall's (docs/domain.md, "Rotas"), as for the weekly and one-off forms, so
    # the export of any rota imports again.
    for day in ("2026-10-24", "2027-03-27", "2026-10-31"):
        assert parse(HEADER + f"DN,{day},08:00,08:00,4,duty_lead\n").ok, day
    (shift,) = parse(HEADER + "DN,2026-10-25,00:00,24:00,4,duty_lead\n").shifts
    assert (shift.start, shift.end) == (time(0), time(0))


def test_a_shift_wholly_in_the_skipped_hour_is_refused():
    result = parse(HEADER + "DN,2027-03-28,01:10,01:50,4,duty_lead\n")
    assert result.messages == ["Line 2: the DN shift on 28/03/2027 from 01:10 to 01:50 does not happen: its times "
                               "fall in the hour the clocks skip; change the times"]


def test_a_control_character_is_refused_without_echoing_it():
    result = parse(HEADER + "CRT,2026-06-03,08:00,20:00,4\x00,duty_lead\n")
    assert result.messages == ["Line 2: the professional contains a character that is not allowed: remove it"]


def test_line_numbers_count_lines_inside_quoted_values():
    result = parse(HEADER + '"CRT","2026-06-03","08:00","20:00","4","duty_lead"\n'
                   + '"CRT","2026-06-04","08:00","20:00","4\n5","duty_lead"\n'
                   + "CRT,2026-06-05,08:00,20:00,4,lead\n")
    assert result.messages == [
        "Line 3: the professional must be on one line: remove the tab or line break",
        "Line 5: the role 'lead' is not member or duty_lead",
    ]


def test_export_writes_the_import_shape():
    shifts = [OneOffShift("CRT", date(2026, 6, 3), time(8), time(20), (1, 2), 3),
              OneOffShift("OOHV", date(2026, 6, 3), time(20), time(8), (), 4)]
    assert export_csv(shifts) == ("service,date,start,end,professional,role\r\n"
                                  "CRT,2026-06-03,08:00,20:00,1,member\r\n"
                                  "CRT,2026-06-03,08:00,20:00,2,member\r\n"
                                  "CRT,2026-06-03,08:00,20:00,3,duty_lead\r\n"
                                  "OOHV,2026-06-03,20:00,08:00,4,duty_lead\r\n")
    by_id = {pid: number for number, pid in MOBILES.items()}
    text = export_csv(shifts[:1], reference=by_id.__getitem__)
    assert "CRT,2026-06-03,08:00,20:00,+447700900101,member" in text
    assert parse(text).shifts == tuple(shifts[:1])


PEOPLE = list(range(1, 9))


@st.composite
def dated_shifts(draw):
    day = draw(st.dates(date(2026, 1, 1), date(2028, 12, 31)))
    start = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    end = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    assume(shift_problem(day, start, end) is None)  # the one rule the import applies (any length on the wall)
    members = tuple(draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=4)))
    return OneOffShift(draw(st.sampled_from(sorted(SERVICES))), day, start, end, members,
                       draw(st.sampled_from(PEOPLE)))


@settings(max_examples=examples(200), deadline=None)
@given(shifts=st.lists(dated_shifts(), min_size=1, max_size=6,
                       unique_by=lambda s: (s.service, s.day, s.start, s.end)))
def test_export_then_import_gives_the_same_shifts(shifts):
    result = parse_rota_csv(export_csv(shifts), SERVICES, lambda ref: int(ref) if ref.isdigit() else None)
    assert result.problems == () and result.shifts == tuple(shifts)
