"""Rotas on the real database (adapters/rota_store.py, service/rotas.py): who is on duty at instants across
a shift change, a cover on one date, leave, the CSV import's all-or-nothing, the export, the security
events each change writes, and the dashboard's on-duty figure from the rota."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from ipoa.adapters.orm import rota_shifts
from ipoa.service import dashboard, rotas, security
from ipoa.service.professionals import add_professional, deactivate_professional
from tests.helpers.rota import on_duty

WEDNESDAY = 2  # weekday of 2 December 2026 (winter: London time is UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def team(svc):
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    cat = add_professional(svc, name="Cat Cover", service="DN", mobile="07700 900203")
    day = rotas.add_pattern_shift(svc, "sup", service="DN", weekday=WEDNESDAY, start=time(8), end=time(20),
                                  members=[ann], duty_lead=ann, label="day")
    night = rotas.add_pattern_shift(svc, "sup", service="DN", weekday=WEDNESDAY, start=time(20), end=time(8),
                                    members=[bob], duty_lead=bob, label="night")
    return {"ann": ann, "bob": bob, "cat": cat, "day": day, "night": night}


def names(duty) -> list[str]:
    return [p.name for p in duty.professionals]


def test_who_is_on_duty_follows_the_rota_across_a_shift_change(svc, team):
    assert names(rotas.on_duty_now(svc, "DN", at(2, 7, 59))) == []
    day = rotas.on_duty_now(svc, "DN", at(2, 19, 59))
    assert names(day) == ["Ann Day"] and [p.mobile for p in day.duty_leads] == ["+447700900201"]
    assert [s.label for s in day.shifts] == ["day"]
    assert names(rotas.on_duty_now(svc, "DN", at(2, 20))) == ["Bob Night"]
    assert names(rotas.on_duty_now(svc, "DN", at(3, 7, 59))) == ["Bob Night"]  # the night runs into Thursday
    assert names(rotas.on_duty_now(svc, "DN", at(3, 8))) == []
    following = rotas.next_on_duty(svc, "DN", at(2, 10))
    assert following is not None and following.at == at(2, 20) and names(following) == ["Bob Night"]
    # The directory's duty-lead number is no registered professional's: the standing lead by number.
    standing = rotas.on_duty_now(svc, "DN", at(2, 10)).standing_duty_lead
    assert standing is not None and standing.id is None
    assert standing.mobile == svc.directory.services["DN"].duty_lead


def test_a_cover_changes_one_date_only(svc, team):
    rotas.cover(svc, "sup", team["day"], date(2026, 12, 9), professionals=[team["cat"]], duty_lead=team["cat"],
                reason="Ann on a course")
    assert names(rotas.on_duty_now(svc, "DN", at(9, 10))) == ["Cat Cover"]
    assert [p.name for p in rotas.on_duty_now(svc, "DN", at(9, 10)).duty_leads] == ["Cat Cover"]
    assert names(rotas.on_duty_now(svc, "DN", at(2, 10))) == ["Ann Day"]
    assert names(rotas.on_duty_now(svc, "DN", at(16, 10))) == ["Ann Day"]
    with pytest.raises(rotas.InvalidRota, match="does not run on Thursday 10 December 2026"):
        rotas.cover(svc, "sup", team["day"], date(2026, 12, 10), professionals=[team["cat"]])


def test_leave_takes_a_professional_off_and_a_deactivated_shift_stops(svc, team):
    rotas.leave(svc, "sup", team["ann"], date(2026, 12, 9), date(2026, 12, 9))
    on_leave = rotas.on_duty_now(svc, "DN", at(9, 10))
    assert names(on_leave) == [] and on_leave.duty_leads == ()
    assert names(rotas.on_duty_now(svc, "DN", at(16, 10))) == ["Ann Day"]
    rotas.edit_pattern_shift(svc, "sup", team["day"], members=[team["ann"], team["cat"]])
    assert names(rotas.on_duty_now(svc, "DN", at(16, 10))) == ["Ann Day", "Cat Cover"]
    rotas.deactivate_pattern_shift(svc, "sup", team["day"])
    assert names(rotas.on_duty_now(svc, "DN", at(16, 10))) == []


GOOD = """service,date,start,end,professional,role
DN,2026-12-05,08:00,20:00,07700 900201,member
DN,2026-12-05,08:00,20:00,07700 900203,member
DN,05/12/2026,08:00,20:00,07700 900203,duty_lead
"""


def test_a_csv_with_a_bad_line_imports_nothing_and_says_which_line(svc, team):
    bad = GOOD + "DN,2026-12-05,20:00,08:00,07700 900999,member\nXX,2026-12-06,08:00,20:00,07700 900202,member\n"
    result = rotas.import_csv(svc, "sup", bad)
    assert not result.ok and result.shifts == 0
    assert [p.line for p in result.problems] == [5, 6]  # an unknown mobile; an unknown service
    assert result.messages[0] == ("Line 5: no professional has the mobile 07700 900999: add them first, or "
                                  "check the number")
    with svc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(rota_shifts).where(
            rota_shifts.c.day.is_not(None))) == 0
    assert names(rotas.on_duty_now(svc, "DN", at(5, 10))) == []
    assert [e.detail.get("change") for e in security.events(svc, kind=security.ROTA_CHANGED).events
            if e.detail.get("change") == "csv_imported"] == []


def test_a_csv_naming_another_services_or_a_deactivated_professional_imports_nothing(svc, team):
    """As the rota's forms offer only the service's active professionals: a CRT nurse on a DN shift would be
    texted DN's referrals and could act on none of them."""
    add_professional(svc, name="Cal Crisis", service="CRT", mobile="07700 900209")
    deactivate_professional(svc, "admin", team["bob"])
    result = rotas.import_csv(svc, "sup", GOOD + "DN,2026-12-05,08:00,20:00,07700 900209,member\n"
                                                 f"DN,2026-12-05,08:00,20:00,{team['bob']},member\n")
    assert result.shifts == 0 and [p.line for p in result.problems] == [5, 6]
    assert result.messages == [
        "Line 5: the professional 07700 900209 is registered with CRT, not DN: a rota holds only its own "
        "service's professionals; check the service or the number",
        f"Line 6: the professional {team['bob']} is deactivated: reactivate them first, or remove the line"]
    assert names(rotas.on_duty_now(svc, "DN", at(5, 10))) == []


def test_a_good_csv_imports_every_shift_once_and_exports_again(svc, team):
    assert rotas.import_csv(svc, "sup", GOOD).shifts == 1
    assert rotas.import_csv(svc, "sup", GOOD).shifts == 1  # the same file again replaces, never doubles
    duty = rotas.on_duty_now(svc, "DN", at(5, 10))
    assert names(duty) == ["Ann Day", "Cat Cover"] and [p.name for p in duty.duty_leads] == ["Cat Cover"]
    exported = rotas.export_csv(svc, "DN", first=date(2026, 12, 2), days=4)
    assert exported.splitlines() == [
        "service,date,start,end,professional,role",
        "DN,2026-12-02,08:00,20:00,07700 900201,member", "DN,2026-12-02,08:00,20:00,07700 900201,duty_lead",
        "DN,2026-12-02,20:00,08:00,07700 900202,member", "DN,2026-12-02,20:00,08:00,07700 900202,duty_lead",
        "DN,2026-12-05,08:00,20:00,07700 900201,member", "DN,2026-12-05,08:00,20:00,07700 900203,member",
        "DN,2026-12-05,08:00,20:00,07700 900203,duty_lead"]


def test_every_change_is_in_the_security_log_without_a_mobile_number(svc, team):
    rotas.cover(svc, "sup", team["night"], date(2026, 12, 9), duty_lead=team["cat"])
    rotas.leave(svc, "sup", team["bob"], date(2026, 12, 16), date(2026, 12, 17))
    rotas.swap(svc, "sup", first=team["ann"], first_shift=team["day"], first_day=date(2026, 12, 23),
               second=team["bob"], second_shift=team["night"], second_day=date(2026, 12, 23))
    rotas.set_standing_duty_lead(svc, "sup", "DN", team["cat"])
    rotas.import_csv(svc, "sup", GOOD)
    logged = security.events(svc, kind=security.ROTA_CHANGED).events
    assert [e.detail["change"] for e in reversed(logged)] == [
        "pattern_added", "pattern_added", "cover", "leave", "swap", "standing_duty_lead", "csv_imported"]
    assert {(e.actor, e.subject) for e in logged} == {("sup", "DN")}
    dumped = json.dumps([e.detail for e in logged])
    assert "7700" not in dumped
    assert logged[0].detail == {"change": "csv_imported", "shifts": 1, "first_day": "2026-12-05",
                                "last_day": "2026-12-05"}
    # The swap: Bob works Ann's day on the 23rd, Ann Bob's night.
    assert names(rotas.on_duty_now(svc, "DN", at(23, 10))) == ["Bob Night"]
    assert names(rotas.on_duty_now(svc, "DN", at(23, 21))) == ["Ann Day"]
    assert rotas.on_duty_now(svc, "DN", at(2, 10)).standing_duty_lead.name == "Cat Cover"


def test_the_dashboard_counts_who_the_rota_has_on_duty(svc, clock, team):
    clock.set(at(2, 10))
    by_code = {f.code: f for f in dashboard.figures(svc).services}
    assert (by_code["DN"].staff, by_code["CRT"].staff) == (1, 0)
    clock.set(at(3, 10))  # Thursday: no shift
    assert {f.code: f for f in dashboard.figures(svc).services}["DN"].staff == 0


def test_the_gaps_ahead_come_from_the_stored_rota_and_each_calendar(svc, clock, team):
    """Issue 13, point 4: open by its calendar in the next 24 hours and nobody rostered. DN is open 24/7,
    CRT 08:00-20:00 and OOHV 20:00-08:00 (workflows/directory.yaml); only DN has a rota (Wednesdays)."""
    clock.set(at(2, 10))  # Wednesday 10:00
    ahead = rotas.outlook(svc, at(2, 10))
    assert ahead.services["DN"].gaps.intervals == ((at(3, 8), at(3, 10)),)  # the night ends 08:00 Thursday
    assert ahead.services["CRT"].gaps.intervals == ((at(2, 10), at(2, 20)), (at(3, 8), at(3, 10)))
    assert ahead.services["OOHV"].gaps.intervals == ((at(2, 20), at(3, 8)),)
    assert ahead.services["DN"].next_at == at(2, 20) and ahead.services["DN"].next_names == ("Bob Night",)
    by_service = {g.service: g.words for g in dashboard.exceptions(svc).rota_gaps}
    assert by_service["OOHV"] == "nobody rostered 20:00–08:00 tonight (12 hours)"
    assert by_service["DN"] == "nobody rostered from 08:00 tomorrow for the rest of the next 24 hours (2 hours)"
    assert by_service["CRT"] == ("nobody rostered from now until 20:00 today (10 hours) and from 08:00 tomorrow "
                                 "for the rest of the next 24 hours (2 hours)")
    assert by_service["CRS"] == "nobody rostered for the whole of the next 24 hours (24 hours)"  # 24/7, no rota

    # Worked out once a minute: the same answer for the rest of the minute, a fresh one after it ...
    assert rotas.outlook(svc, at(2, 10).replace(second=40)) is ahead
    assert rotas.outlook(svc, at(2, 10, 1)) is not ahead
    # ... and at once after a rota change: Bob's leave empties the night (only its duty lead is left).
    rotas.leave(svc, "sup", team["bob"], date(2026, 12, 2), date(2026, 12, 2))
    assert rotas.outlook(svc, at(2, 10, 1)).services["DN"].gaps.intervals == ((at(2, 20), at(3, 10, 1)),)


def test_a_gap_over_the_october_clock_change_lasts_the_real_hours(svc, clock):
    """OOHV's 20:00-08:00 on the night the clocks go back (Sunday 25 October 2026) is 13 real hours."""
    saturday_noon = datetime(2026, 10, 24, 11, 0, tzinfo=UTC)  # 12:00 BST
    (gap,) = [g for g in dashboard.rota_gaps_ahead(svc, saturday_noon) if g.service == "OOHV"]
    assert gap.words == "nobody rostered 20:00–08:00 tonight (13 hours)"
    assert gap.starts_at == datetime(2026, 10, 24, 19, 0, tzinfo=UTC)


def test_an_all_day_rota_exported_over_both_clock_changes_imports_again(svc, team):
    """The export is in the import's shape (docs/domain.md, "Rotas"): a 00:00-00:00 shift is 24 hours on the
    wall, taken by the import though it lasts 25 real hours on 25 October and 23 on 28 March."""
    on_duty(svc, "DN", team["ann"], duty_lead=team["ann"])
    for monday in (date(2026, 10, 19), date(2027, 3, 22)):
        body = rotas.export_csv(svc, "DN", first=monday)
        result = rotas.import_csv(svc, "sup", body)
        assert result.ok, result.messages
    assert "DN,2026-10-25,00:00,00:00,07700 900201,member" in rotas.export_csv(svc, "DN", first=date(2026, 10, 25),
                                                                               days=1).splitlines()


def test_a_shift_that_never_happens_is_refused_as_the_csv_refuses_it(svc, team):
    spring = date(2027, 3, 28)  # 01:00 GMT becomes 02:00 BST
    never = ("the shift does not happen: 01:00 to 02:00 on Sunday 28 March 2027 falls in the hour the clocks go "
             "forward; change the times")
    with pytest.raises(rotas.InvalidRota) as refused:
        rotas.add_one_off_shift(svc, "sup", service="DN", day=spring, start=time(1), end=time(2),
                                members=[team["bob"]], duty_lead=team["bob"])
    assert str(refused.value) == never
    with pytest.raises(rotas.InvalidRota, match="^the shift does not happen: 01:00 to 02:00 on Sunday 28 March"):
        rotas.add_pattern_shift(svc, "sup", service="DN", weekday=6, start=time(1), end=time(2),
                                members=[team["bob"]], valid_from=spring, valid_to=spring)
    sunday = rotas.add_pattern_shift(svc, "sup", service="DN", weekday=6, start=time(1), end=time(2),
                                     members=[team["bob"]])  # runs on every other Sunday
    with pytest.raises(rotas.InvalidRota, match="^the shift does not happen"):
        rotas.edit_pattern_shift(svc, "sup", sunday, valid_from=spring, valid_to=spring)
    with svc.uow() as uow:
        kept = uow.session.scalar(select(func.count()).select_from(rota_shifts))
    assert kept == 3  # the team's two and the Sunday one: nothing refused was stored
    # 25 real hours on the night the clocks go back: 24 on the wall, as the CSV takes it.
    rotas.add_one_off_shift(svc, "sup", service="DN", day=date(2026, 10, 25), start=time(0), end=time(0),
                            members=[team["bob"]], duty_lead=team["bob"])
