"""Shift resolution (ipoa/domain/rota): shifts over midnight, the clock-change nights, overlaps, cover, leave
and swaps; the recipient chain; gaps within open hours; hand-overs (docs/domain.md, "Rotas")."""
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ipoa.domain.calendar import LONDON, AlwaysOpen, calendar_from_spec
from ipoa.domain.directory import load_directory_file
from ipoa.domain.rota import (
    Contact,
    Cover,
    Leave,
    OccurrenceRef,
    OneOffShift,
    PatternShift,
    Rota,
    RotaError,
    StandingDutyLead,
    Swap,
    choose_recipients,
    gaps,
    handover_due,
    handover_key,
    next_on_duty,
    occurrences,
    on_duty,
    wall_instant,
)
from ipoa.domain.rota.recipients import NOBODY, ON_DUTY, SHIFT_DUTY_LEAD, STANDING_DUTY_LEAD, SUPERVISOR
from ipoa.domain.rota.shifts import NEVER, pattern_problem, shift_problem, wall_length
from tests.helpers.properties import examples

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = load_directory_file(ROOT / "workflows" / "directory.yaml")

ANN, BOB, SAM, PAT, KIM, LEE = 1, 2, 3, 4, 5, 6
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEDNESDAY = date(2026, 6, 3)  # an ordinary BST Wednesday
AUTUMN_SATURDAY = date(2026, 10, 24)  # the clocks go back in the night that follows (02:00 BST -> 01:00 GMT)
SPRING_SATURDAY = date(2027, 3, 27)  # the clocks go forward in the night that follows (01:00 GMT -> 02:00 BST)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def london(day: date, hh: int, mm: int = 0, fold: int = 0) -> datetime:
    """The instant of a London wall time, in UTC so that adding a timedelta adds real time."""
    return datetime.combine(day, time(hh, mm), tzinfo=LONDON).replace(fold=fold).astimezone(UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def pattern(pid: int, service: str, weekday: int, start: str, end: str, people=(ANN, BOB), lead: int | None = SAM,
            **extra) -> PatternShift:
    return PatternShift(pid, service, weekday, time.fromisoformat(start), time.fromisoformat(end), tuple(people),
                        lead, **extra)


def every_day(first_id: int, service: str, start: str, end: str, people=(ANN, BOB), lead: int | None = SAM,
              label: str | None = None) -> tuple[PatternShift, ...]:
    return tuple(pattern(first_id + d, service, d, start, end, people, lead, label=label) for d in range(7))


def the_week_of(day: date) -> tuple[datetime, datetime]:
    monday = day - timedelta(days=day.weekday())
    return london(monday, 0), london(monday + timedelta(days=7), 0)


# --- wall-clock times to instants -----------------------------------------------------------------

def test_an_ordinary_wall_time_is_that_time_in_london():
    assert wall_instant(WEDNESDAY, time(8, 0)) == utc(2026, 6, 3, 7, 0)  # BST
    assert wall_instant(date(2026, 1, 14), time(8, 0)) == utc(2026, 1, 14, 8, 0)  # GMT


def test_a_skipped_wall_time_is_the_first_instant_after_the_gap():
    spring = SPRING_SATURDAY + timedelta(days=1)
    assert wall_instant(spring, time(1, 30)) == utc(2027, 3, 28, 1, 0)  # 02:00 BST
    assert wall_instant(spring, time(1, 0)) == utc(2027, 3, 28, 1, 0)
    assert wall_instant(spring, time(1, 59)) == utc(2027, 3, 28, 1, 0)
    assert wall_instant(spring, time(2, 0)) == utc(2027, 3, 28, 1, 0)  # the first wall time after the gap
    assert wall_instant(spring, time(0, 59)) == utc(2027, 3, 28, 0, 59)


def test_a_repeated_wall_time_is_its_first_occurrence():
    autumn = AUTUMN_SATURDAY + timedelta(days=1)
    assert wall_instant(autumn, time(1, 30)) == utc(2026, 10, 25, 0, 30)  # 01:30 BST, not 01:30 GMT
    assert wall_instant(autumn, time(2, 0)) == utc(2026, 10, 25, 2, 0)  # after the change: GMT


# --- shifts over midnight and the clock-change nights -------------------------------------------------

NIGHTS = Rota(patterns=every_day(10, "OOHV", "20:00", "08:00", label="night"))


def test_a_shift_over_midnight_belongs_to_the_date_it_starts_on():
    found = occurrences(NIGHTS, london(WEDNESDAY, 0), london(WEDNESDAY, 12), "OOHV")
    assert [(o.day, o.start, o.end) for o in found] == [
        (WEDNESDAY - timedelta(days=1), utc(2026, 6, 2, 19), utc(2026, 6, 3, 7))]  # Tuesday's night
    assert found[0].pattern_id == 10 + TUE and found[0].label == "night"
    at_three = on_duty(NIGHTS, "OOHV", london(WEDNESDAY, 3))
    assert at_three.professionals == (ANN, BOB) and at_three.duty_leads == (SAM,)
    assert [o.day for o in at_three.shifts] == [date(2026, 6, 2)]


def test_the_night_the_clocks_go_back_lasts_13_real_hours():
    night = next(o for o in occurrences(NIGHTS, *the_week_of(AUTUMN_SATURDAY)) if o.day == AUTUMN_SATURDAY)
    assert (night.start, night.end) == (utc(2026, 10, 24, 19), utc(2026, 10, 25, 8))
    assert night.duration == 13 * HOUR
    # 01:30 happens twice that night: both instants are inside the night shift.
    first, second = london(AUTUMN_SATURDAY + timedelta(days=1), 1, 30), london(
        AUTUMN_SATURDAY + timedelta(days=1), 1, 30, fold=1)
    assert second - first == HOUR
    for at in (first, second, night.end - SECOND):
        assert on_duty(NIGHTS, "OOHV", at).shifts == (night,)
    assert on_duty(NIGHTS, "OOHV", night.end).nobody


def test_the_night_the_clocks_go_forward_lasts_11_real_hours():
    night = next(o for o in occurrences(NIGHTS, *the_week_of(SPRING_SATURDAY)) if o.day == SPRING_SATURDAY)
    assert (night.start, night.end) == (utc(2027, 3, 27, 20), utc(2027, 3, 28, 7))
    assert night.duration == 11 * HOUR
    # Either side of the skipped hour (00:59:59 GMT, 02:00 BST) the night shift is on duty.
    for at in (utc(2027, 3, 28, 0, 59, 59), utc(2027, 3, 28, 1, 0), night.end - SECOND):
        assert on_duty(NIGHTS, "OOHV", at).shifts == (night,)
    assert on_duty(NIGHTS, "OOHV", night.end).nobody


def test_a_shift_starting_inside_the_gap_starts_when_the_gap_ends():
    spring = SPRING_SATURDAY + timedelta(days=1)
    rota = Rota(patterns=(pattern(1, "DN", SUN, "01:30", "09:00", valid_from=spring, valid_to=spring),))
    (shift,) = occurrences(rota, london(spring, 0), london(spring, 12))
    assert shift.start == utc(2027, 3, 28, 1, 0) and shift.end == utc(2027, 3, 28, 8, 0)
    assert on_duty(rota, "DN", utc(2027, 3, 28, 0, 59, 59)).nobody
    assert on_duty(rota, "DN", utc(2027, 3, 28, 1, 0)).professionals == (ANN, BOB)


def test_a_shift_starting_inside_the_repeated_hour_starts_at_its_first_occurrence():
    autumn = AUTUMN_SATURDAY + timedelta(days=1)
    rota = Rota(patterns=(pattern(1, "DN", SUN, "01:30", "09:00", valid_from=autumn, valid_to=autumn),))
    (shift,) = occurrences(rota, london(autumn, 0), london(autumn, 12))
    assert shift.start == utc(2026, 10, 25, 0, 30) and shift.duration == 8.5 * HOUR
    assert on_duty(rota, "DN", utc(2026, 10, 25, 0, 29)).nobody
    assert on_duty(rota, "DN", london(autumn, 1, 30, fold=1)).professionals == (ANN, BOB)


def test_a_shift_wholly_inside_the_skipped_hour_does_not_happen():
    spring = SPRING_SATURDAY + timedelta(days=1)
    rota = Rota(patterns=(pattern(1, "DN", SUN, "01:10", "01:50"),))
    assert occurrences(rota, london(spring, 0), london(spring, 12)) == []
    assert len(occurrences(rota, london(spring + timedelta(days=7), 0), london(spring + timedelta(days=7), 12))) == 1


def test_a_24_hour_shift_starts_and_ends_at_the_same_wall_time():
    rota = Rota(patterns=(pattern(1, "CRS", WED, "09:00", "09:00"),))
    (shift,) = occurrences(rota, london(WEDNESDAY, 0), london(WEDNESDAY, 23))
    assert shift.duration == 24 * HOUR and shift.end == london(WEDNESDAY + timedelta(days=1), 9)


def test_one_rule_says_which_shifts_can_be_rostered():
    # The CSV import and the weekly and one-off forms all ask it (docs/domain.md, "Rotas").
    spring, autumn, week = date(2027, 3, 28), date(2026, 10, 25), timedelta(days=7)
    assert shift_problem(spring, time(1), time(2)) == NEVER  # wholly in the hour the clocks skip
    assert shift_problem(spring, time(1, 10), time(1, 50)) == NEVER
    assert shift_problem(spring, time(1, 30), time(9)) is None  # starts when the gap ends
    assert shift_problem(autumn, time(0), time(0)) is None  # 24 hours on the wall, 25 real hours
    assert shift_problem(spring, time(0), time(0)) is None  # 24 on the wall, 23 real
    assert shift_problem(autumn, time(1), time(2)) is None  # the repeated hour happens
    # A weekly shift never happens when its only dates are such a date.
    assert pattern_problem(SUN, time(1), time(2), spring, spring) == NEVER
    assert pattern_problem(SUN, time(1), time(2), spring - timedelta(days=6), spring + timedelta(days=6)) == NEVER
    assert pattern_problem(SUN, time(1), time(2), spring, spring + week) is None
    assert pattern_problem(SUN, time(1), time(2), None, spring) is None
    assert pattern_problem(SUN, time(1), time(2), spring, None) is None
    assert pattern_problem(SAT, time(1), time(2), spring, spring) is None  # not this rule's: no Saturday there
    assert pattern_problem(SUN, time(0), time(0), autumn, autumn) is None


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="naive"):
        on_duty(NIGHTS, "OOHV", datetime(2026, 6, 3, 3, 0))


# --- overlaps, validity, one-off shifts ----------------------------------------------------------------

DAY_AND_LATE = Rota(patterns=(
    *every_day(10, "CRT", "08:00", "20:00", people=(ANN, BOB), lead=SAM, label="day"),
    *every_day(20, "CRT", "14:00", "22:00", people=(BOB, LEE), lead=KIM, label="late"),
))


def test_overlapping_shifts_both_count_and_each_person_once():
    both = on_duty(DAY_AND_LATE, "CRT", london(WEDNESDAY, 15))
    assert both.professionals == (ANN, BOB, LEE)  # the day shift's first (it started first), Bob once
    assert both.duty_leads == (SAM, KIM)
    assert [o.label for o in both.shifts] == ["day", "late"]
    assert on_duty(DAY_AND_LATE, "CRT", london(WEDNESDAY, 21)).professionals == (BOB, LEE)
    assert on_duty(DAY_AND_LATE, "CRT", london(WEDNESDAY, 7, 59)).nobody
    assert on_duty(DAY_AND_LATE, "DN", london(WEDNESDAY, 15)).nobody  # another service's rota


def test_a_pattern_runs_only_on_its_weekday_within_its_validity():
    rota = Rota(patterns=(pattern(1, "ILT", WED, "08:00", "18:00", valid_from=date(2026, 6, 10),
                                  valid_to=date(2026, 6, 24)),))
    days = [o.day for o in occurrences(rota, london(date(2026, 6, 1), 0), london(date(2026, 7, 6), 0))]
    assert days == [date(2026, 6, 10), date(2026, 6, 17), date(2026, 6, 24)]


def test_a_one_off_shift_adds_cover_on_its_date():
    extra = OneOffShift("CRT", WEDNESDAY, time(20), time(23), (KIM,), SAM, label="extra")
    rota = Rota(patterns=DAY_AND_LATE.patterns, one_offs=(extra,))
    at = on_duty(rota, "CRT", london(WEDNESDAY, 21))
    assert at.professionals == (BOB, LEE, KIM)
    assert at.shifts[-1].one_off_id is None and at.shifts[-1].label == "extra"
    assert on_duty(rota, "CRT", london(WEDNESDAY + timedelta(days=7), 21)).professionals == (BOB, LEE)


def test_next_on_duty_is_the_next_shift_start_and_who_is_on_from_then():
    after = next_on_duty(DAY_AND_LATE, "CRT", london(WEDNESDAY, 10))
    assert after is not None and after.starts_at == london(WEDNESDAY, 14)
    assert [o.label for o in after.starting] == ["late"]
    assert after.then.professionals == (ANN, BOB, LEE)  # the day shift carries on
    late = next_on_duty(DAY_AND_LATE, "CRT", london(WEDNESDAY, 14))  # strictly after
    assert late is not None and late.starts_at == london(WEDNESDAY + timedelta(days=1), 8)
    assert next_on_duty(DAY_AND_LATE, "DN", london(WEDNESDAY, 10)) is None


def test_next_on_duty_finds_a_pattern_that_starts_weeks_ahead():
    rota = Rota(patterns=(pattern(1, "LB", FRI, "09:00", "17:00", valid_from=date(2026, 9, 4)),))
    ahead = next_on_duty(rota, "LB", london(WEDNESDAY, 10))
    assert ahead is not None and ahead.starts_at == london(date(2026, 9, 4), 9)


# --- cover, leave, swaps ---------------------------------------------------------------------------

DAYS = Rota(patterns=every_day(10, "CRT", "08:00", "20:00"))  # Ann and Bob, Sam leads
WED_DAY = OccurrenceRef(10 + WED, WEDNESDAY)


def _rota_with(**changes) -> Rota:
    return Rota(patterns=DAYS.patterns, **changes)


def test_a_cover_replaces_a_pattern_occurrence_on_its_date_only():
    cover = Cover(WED_DAY, professionals=(LEE,), duty_lead=KIM, reason="sickness")
    rota = _rota_with(covers=(cover,))
    covered = on_duty(rota, "CRT", london(WEDNESDAY, 12))
    assert covered.professionals == (LEE,) and covered.duty_leads == (KIM,)
    assert covered.shifts[0].cover == cover and covered.shifts[0].changes == (cover,)
    for other in (WEDNESDAY - timedelta(days=1), WEDNESDAY + timedelta(days=1), WEDNESDAY + timedelta(days=7)):
        plain = on_duty(rota, "CRT", london(other, 12))
        assert plain.professionals == (ANN, BOB) and plain.duty_leads == (SAM,) and plain.shifts[0].cover is None


def test_a_cover_may_replace_only_the_duty_lead_or_only_the_people():
    lead_only = on_duty(_rota_with(covers=(Cover(WED_DAY, duty_lead=KIM),)), "CRT", london(WEDNESDAY, 12))
    assert (lead_only.professionals, lead_only.duty_leads) == ((ANN, BOB), (KIM,))
    people_only = on_duty(_rota_with(covers=(Cover(WED_DAY, professionals=()),)), "CRT", london(WEDNESDAY, 12))
    assert people_only.nobody and people_only.duty_leads == (SAM,)


@pytest.mark.parametrize("changes, message", [
    ({"covers": (Cover(OccurrenceRef(10 + WED, WEDNESDAY + timedelta(days=1)), duty_lead=KIM),)}, "does not run"),
    ({"covers": (Cover(OccurrenceRef(99, WEDNESDAY), duty_lead=KIM),)}, "not in the rota"),
    ({"covers": (Cover(WED_DAY, duty_lead=KIM), Cover(WED_DAY, professionals=(LEE,)))}, "two covers"),
    ({"swaps": (Swap(ANN, WED_DAY, LEE, OccurrenceRef(10 + THU, WEDNESDAY)),)}, "does not run"),
])
def test_a_change_that_does_not_fit_the_rota_is_refused(changes, message):
    with pytest.raises(RotaError, match=message):
        _rota_with(**changes)


def test_an_empty_cover_and_a_repeated_pattern_id_are_refused():
    with pytest.raises(RotaError, match="must replace"):
        Cover(WED_DAY)
    with pytest.raises(RotaError, match="two patterns"):
        Rota(patterns=(pattern(1, "CRT", MON, "08:00", "20:00"), pattern(1, "CRT", TUE, "08:00", "20:00")))


def test_leave_removes_one_professional_from_every_occurrence_in_its_dates():
    leave = Leave(ANN, WEDNESDAY, WEDNESDAY + timedelta(days=2))
    rota = _rota_with(leave=(leave,))
    for offset, expected in [(-1, (ANN, BOB)), (0, (BOB,)), (1, (BOB,)), (2, (BOB,)), (3, (ANN, BOB))]:
        assert on_duty(rota, "CRT", london(WEDNESDAY + timedelta(days=offset), 12)).professionals == expected
    assert on_duty(rota, "CRT", london(WEDNESDAY, 12)).shifts[0].changes == (leave,)


def test_a_night_shift_starting_on_the_last_day_of_leave_is_still_leave():
    rota = Rota(patterns=NIGHTS.patterns, leave=(Leave(BOB, WEDNESDAY, WEDNESDAY),))
    assert on_duty(rota, "OOHV", london(WEDNESDAY + timedelta(days=1), 3)).professionals == (ANN,)


def test_leave_of_the_duty_lead_leaves_the_shift_without_one():
    at = on_duty(_rota_with(leave=(Leave(SAM, WEDNESDAY, WEDNESDAY),)), "CRT", london(WEDNESDAY, 12))
    assert at.professionals == (ANN, BOB) and at.duty_leads == ()


def test_a_cover_has_the_final_word_over_leave():
    rota = _rota_with(leave=(Leave(ANN, WEDNESDAY, WEDNESDAY),), covers=(Cover(WED_DAY, professionals=(ANN, LEE)),))
    assert on_duty(rota, "CRT", london(WEDNESDAY, 12)).professionals == (ANN, LEE)


def test_leave_does_not_touch_a_one_off_shift():
    extra = OneOffShift("CRT", WEDNESDAY, time(20), time(23), (ANN,), SAM)
    rota = _rota_with(one_offs=(extra,), leave=(Leave(ANN, WEDNESDAY, WEDNESDAY),))
    assert on_duty(rota, "CRT", london(WEDNESDAY, 21)).professionals == (ANN,)


def test_a_swap_exchanges_two_professionals_occurrences():
    mondays = pattern(1, "DN", MON, "08:00", "16:00", people=(ANN, BOB), lead=SAM)
    tuesdays = pattern(2, "DN", TUE, "08:00", "16:00", people=(LEE,), lead=KIM)
    monday, tuesday = date(2026, 6, 1), date(2026, 6, 2)
    swap = Swap(ANN, OccurrenceRef(1, monday), LEE, OccurrenceRef(2, tuesday))
    rota = Rota(patterns=(mondays, tuesdays), swaps=(swap,))
    assert on_duty(rota, "DN", london(monday, 9)).professionals == (LEE, BOB)  # Lee in Ann's place
    assert on_duty(rota, "DN", london(tuesday, 9)).professionals == (ANN,)
    assert on_duty(rota, "DN", london(monday, 9)).shifts[0].changes == (swap,)
    # The following week is the pattern again.
    assert on_duty(rota, "DN", london(monday + timedelta(days=7), 9)).professionals == (ANN, BOB)
    assert on_duty(rota, "DN", london(tuesday + timedelta(days=7), 9)).professionals == (LEE,)


def test_a_swap_carries_the_duty_lead_role():
    mondays = pattern(1, "DN", MON, "08:00", "16:00", people=(ANN,), lead=SAM)
    tuesdays = pattern(2, "DN", TUE, "08:00", "16:00", people=(BOB,), lead=KIM)
    monday, tuesday = date(2026, 6, 1), date(2026, 6, 2)
    rota = Rota(patterns=(mondays, tuesdays), swaps=(Swap(SAM, OccurrenceRef(1, monday), KIM,
                                                          OccurrenceRef(2, tuesday)),))
    assert on_duty(rota, "DN", london(monday, 9)).duty_leads == (KIM,)
    assert on_duty(rota, "DN", london(tuesday, 9)).duty_leads == (SAM,)


# --- standing duty lead and the recipient chain ----------------------------------------------------

CONTACTS = {pid: Contact(name, f"+4477009001{pid:02d}", pid) for pid, name in
            [(ANN, "Ann Nurse"), (BOB, "Bob Medic"), (SAM, "Sam Lead"), (PAT, "Pat Standing"), (LEE, "Lee Bank"),
             (KIM, "Kim Late")]}
SUPERVISORS = (Contact("Jo Supervisor", "+447700900201"), Contact("Max Supervisor", "+447700900202"))


def _choice_at(rota: Rota, service: str, at: datetime, supervisors=SUPERVISORS):
    """What a caller does: the rota's answer at `at`, turned into contacts, through the chain."""
    now = on_duty(rota, service, at)
    standing = rota.standing_duty_lead(service)
    return choose_recipients(service, [CONTACTS[p] for p in now.professionals],
                             [CONTACTS[p] for p in now.duty_leads],
                             CONTACTS[standing] if standing is not None else None, supervisors)


def test_the_chain_texts_the_professionals_on_duty_first():
    choice = _choice_at(DAYS, "CRT", london(WEDNESDAY, 12))
    assert choice.step == ON_DUTY and choice.recipients == (CONTACTS[ANN], CONTACTS[BOB])
    assert choice.reason == "texted the professionals on duty for CRT, Ann Nurse and Bob Medic"


def test_nobody_on_duty_texts_the_shifts_duty_lead():
    rota = _rota_with(covers=(Cover(WED_DAY, professionals=()),))
    choice = _choice_at(rota, "CRT", london(WEDNESDAY, 12))
    assert choice.step == SHIFT_DUTY_LEAD and choice.recipients == (CONTACTS[SAM],)
    assert choice.reason == "nobody on duty for CRT: texted the shift's duty lead, Sam Lead"


def test_no_shift_duty_lead_falls_back_to_the_standing_duty_lead():
    rota = Rota(patterns=every_day(10, "CRT", "08:00", "20:00", people=(ANN,), lead=None),
                leave=(Leave(ANN, WEDNESDAY, WEDNESDAY),), standing_duty_leads=(StandingDutyLead("CRT", PAT),))
    choice = _choice_at(rota, "CRT", london(WEDNESDAY, 12))
    assert choice.step == STANDING_DUTY_LEAD and choice.recipients == (CONTACTS[PAT],)
    assert choice.reason == ("nobody on duty for CRT and no duty lead on shift: texted the service's standing "
                             "duty lead, Pat Standing")
    # Outside any shift too.
    assert _choice_at(rota, "CRT", london(WEDNESDAY, 21)).step == STANDING_DUTY_LEAD


def test_with_no_duty_lead_at_all_the_referring_centres_supervisors_are_texted():
    choice = _choice_at(Rota(), "CRT", london(WEDNESDAY, 12))
    assert choice.step == SUPERVISOR and choice.recipients == SUPERVISORS
    assert choice.reason == ("nobody on duty for CRT and no duty lead: texted the referring centre's supervisors, "
                             "Jo Supervisor and Max Supervisor")


def test_a_text_never_silently_goes_to_nobody():
    choice = _choice_at(Rota(), "CRT", london(WEDNESDAY, 12), supervisors=())
    assert choice.step == NOBODY and choice.nobody
    assert "nobody was texted" in choice.reason and "phone CRT" in choice.reason


def test_each_mobile_is_texted_once():
    twice = Contact("Ann again", CONTACTS[ANN].mobile, ANN)
    choice = choose_recipients("CRT", [CONTACTS[ANN], twice, CONTACTS[BOB]], [], None, [])
    assert choice.recipients == (CONTACTS[ANN], CONTACTS[BOB])


def test_a_service_has_one_standing_duty_lead():
    with pytest.raises(RotaError, match="two standing duty leads"):
        Rota(standing_duty_leads=(StandingDutyLead("CRT", PAT), StandingDutyLead("CRT", SAM)))
    assert Rota(standing_duty_leads=(StandingDutyLead("CRT", PAT),)).standing_duty_lead("DN") is None


# --- gaps ahead --------------------------------------------------------------------------------------

CRT_CALENDAR = DIRECTORY.services["CRT"].calendar  # 08:00-20:00 every day
WEEKDAYS_9_5 = calendar_from_spec({"hours": [{"days": "Mon-Fri", "open": "09:00", "close": "17:00"}]}, {})


def test_gaps_are_open_hours_with_nobody_rostered():
    rota = Rota(patterns=every_day(10, "CRT", "08:00", "16:00"))  # the evening of every open day is uncovered
    found = gaps(rota, "CRT", CRT_CALENDAR, london(WEDNESDAY, 6), london(WEDNESDAY, 6) + 24 * HOUR)
    assert found.intervals == ((london(WEDNESDAY, 16), london(WEDNESDAY, 20)),)  # not the closed night
    assert found.hours == 4.0 and found.uncovered == 4 * HOUR


def test_a_fully_covered_service_has_no_gaps_and_an_empty_rota_is_all_gap():
    covered = gaps(DAYS, "CRT", CRT_CALENDAR, london(WEDNESDAY, 0), london(WEDNESDAY, 0) + 72 * HOUR)
    assert not covered and covered.hours == 0
    empty = gaps(Rota(), "CRT", CRT_CALENDAR, london(WEDNESDAY, 0), london(WEDNESDAY, 0) + 72 * HOUR)
    assert empty.hours == 36.0 and len(empty.intervals) == 3


def test_gaps_follow_the_calendar_not_the_clock_day():
    rota = Rota(patterns=(pattern(1, "LB", WED, "09:00", "13:00"),))
    friday = WEDNESDAY + timedelta(days=2)
    found = gaps(rota, "LB", WEEKDAYS_9_5, london(WEDNESDAY, 11), london(friday + timedelta(days=1), 0))
    assert found.intervals == ((london(WEDNESDAY, 13), london(WEDNESDAY, 17)),
                               (london(WEDNESDAY + timedelta(days=1), 9), london(WEDNESDAY + timedelta(days=1), 17)),
                               (london(friday, 9), london(friday, 17)))
    assert found.hours == 20.0


def test_opening_hours_and_shifts_read_a_skipped_wall_time_alike():
    # Open Saturday 20:00-01:30 and rostered exactly so: on 27/28 March 2027 01:30 is skipped, and both read it
    # as the first instant after the gap, 02:00 BST (docs/domain.md, "Rotas"), so no false half hour of gap.
    saturday = date(2027, 3, 27)
    calendar = calendar_from_spec({"hours": [{"days": "Sat", "open": "20:00", "close": "01:30"}]}, {})
    rota = Rota(patterns=(pattern(1, "DN", SAT, "20:00", "01:30"),))
    night = (london(saturday, 12), london(saturday + timedelta(days=2), 12))
    assert gaps(rota, "DN", calendar, *night).intervals == ()
    assert calendar.next_close(london(saturday, 21)) == utc(2027, 3, 28, 1, 0) == wall_instant(
        saturday + timedelta(days=1), time(1, 30))


def test_a_shift_with_only_a_duty_lead_or_emptied_by_leave_is_a_gap():
    lead_only = Rota(patterns=every_day(10, "CRT", "08:00", "20:00", people=()))
    assert gaps(lead_only, "CRT", CRT_CALENDAR, london(WEDNESDAY, 0), london(WEDNESDAY, 23)).hours == 12.0
    on_leave = Rota(patterns=every_day(10, "CRT", "08:00", "20:00", people=(ANN,)),
                    leave=(Leave(ANN, WEDNESDAY, WEDNESDAY),))
    assert gaps(on_leave, "CRT", CRT_CALENDAR, london(WEDNESDAY, 0), london(WEDNESDAY, 23)).hours == 12.0


def test_gaps_count_real_hours_on_the_night_the_clocks_go_back():
    night = gaps(Rota(), "CRS", AlwaysOpen(), london(AUTUMN_SATURDAY, 20), london(AUTUMN_SATURDAY, 20) + 13 * HOUR)
    assert night.hours == 13.0
    covered = gaps(NIGHTS, "OOHV", AlwaysOpen(), london(AUTUMN_SATURDAY, 20),
                   london(AUTUMN_SATURDAY + timedelta(days=1), 8))
    assert not covered


# --- hand-over -----------------------------------------------------------------------------------------

DAY_NIGHT = Rota(patterns=(*every_day(10, "CRT", "08:00", "20:00", people=(ANN,), lead=SAM, label="day"),
                           *every_day(20, "CRT", "20:00", "08:00", people=(BOB,), lead=KIM, label="night")))


def test_a_shift_change_names_the_outgoing_and_incoming_shifts_and_its_key():
    (change,) = handover_due(DAY_NIGHT, "CRT", london(WEDNESDAY, 19), london(WEDNESDAY, 20))
    assert change.at == london(WEDNESDAY, 20)
    assert [o.label for o in change.outgoing] == ["day"] and [o.label for o in change.incoming] == ["night"]
    assert change.incoming_professionals == (BOB,)
    assert change.key == "handover:CRT:2026-06-03T19:00:00Z" == handover_key("CRT", london(WEDNESDAY, 20))


def test_each_change_is_due_exactly_once_across_consecutive_runs():
    runs = [london(WEDNESDAY, 7), london(WEDNESDAY, 8), london(WEDNESDAY, 12), london(WEDNESDAY, 20),
            london(WEDNESDAY, 20, 1), london(WEDNESDAY + timedelta(days=1), 9)]
    keys = [h.key for previous, now in zip(runs, runs[1:]) for h in handover_due(DAY_NIGHT, "CRT", previous, now)]
    assert keys == [handover_key("CRT", london(WEDNESDAY, 8)), handover_key("CRT", london(WEDNESDAY, 20)),
                    handover_key("CRT", london(WEDNESDAY + timedelta(days=1), 8))]
    assert len(set(keys)) == len(keys)
    assert handover_due(DAY_NIGHT, "CRT", london(WEDNESDAY, 20), london(WEDNESDAY, 20)) == []


def test_a_late_shift_starting_mid_day_is_a_change_with_nobody_outgoing():
    (change,) = handover_due(DAY_AND_LATE, "CRT", london(WEDNESDAY, 13), london(WEDNESDAY, 15))
    assert change.at == london(WEDNESDAY, 14) and change.outgoing == ()
    assert [o.label for o in change.incoming] == ["late"]


def test_keys_differ_per_service_and_instant():
    at = london(WEDNESDAY, 20)
    assert len({handover_key("CRT", at), handover_key("DN", at), handover_key("CRT", at + SECOND)}) == 3
    assert handover_key("CRT", at) == handover_key("CRT", at.astimezone(UTC))


# --- properties ---------------------------------------------------------------------------------------

wall_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
days_around_changes = st.one_of(
    st.sampled_from([AUTUMN_SATURDAY, AUTUMN_SATURDAY + timedelta(days=1), SPRING_SATURDAY,
                     SPRING_SATURDAY + timedelta(days=1)]),
    st.dates(date(2026, 1, 1), date(2028, 12, 31)))


def _skipped(day: date, at: time) -> bool:
    local = datetime.combine(day, at, tzinfo=LONDON)
    return local.astimezone(UTC).astimezone(LONDON).replace(tzinfo=None) != local.replace(tzinfo=None)


@settings(max_examples=examples(300), deadline=None)
@given(day=days_around_changes, start=wall_times, end=wall_times)
def test_real_length_is_the_wall_length_but_on_clock_change_nights(day, start, end):
    end_day = day if end > start else day + timedelta(days=1)
    assume(not _skipped(day, start) and not _skipped(end_day, end))
    rota = Rota(one_offs=(OneOffShift("DN", day, start, end, (ANN,), SAM),))
    (shift,) = occurrences(rota, london(day, 0), london(day, 0) + 49 * HOUR)
    offset_change = shift.start.astimezone(LONDON).utcoffset() - shift.end.astimezone(LONDON).utcoffset()
    assert shift.duration - wall_length(start, end) == offset_change
    assert offset_change in (timedelta(0), HOUR, -HOUR)
    if offset_change:  # only across a night the clocks change: any year's, not only the sampled ones
        before, after = (london(d, 0).astimezone(LONDON).utcoffset() for d in (day, day + timedelta(days=2)))
        assert before != after


people = st.lists(st.sampled_from([ANN, BOB, LEE, KIM]), unique=True, max_size=3)


@st.composite
def rotas(draw):
    patterns = [pattern(i, "DN", draw(st.integers(0, 6)), f"{draw(wall_times):%H:%M}", f"{draw(wall_times):%H:%M}",
                        people=draw(people), lead=draw(st.sampled_from([None, SAM, PAT])))
                for i in range(draw(st.integers(1, 4)))]
    leave = [Leave(draw(st.sampled_from([ANN, BOB])), day, day + timedelta(days=draw(st.integers(0, 3))))
             for day in draw(st.lists(days_around_changes, max_size=2))]
    return Rota(patterns=tuple(patterns), leave=tuple(leave))


@settings(max_examples=examples(200), deadline=None)
@given(rota=rotas(), day=days_around_changes, minutes=st.integers(0, 3 * 24 * 60 - 1))
def test_every_instant_inside_an_occurrence_resolves_to_its_people(rota, day, minutes):
    at = london(day, 0) + timedelta(minutes=minutes)
    answer = on_duty(rota, "DN", at)
    containing = [o for o in occurrences(rota, at - 30 * HOUR, at + 30 * HOUR, "DN") if o.start <= at < o.end]
    assert list(answer.shifts) == containing
    for shift in containing:
        assert set(shift.professionals) <= set(answer.professionals)
        if shift.duty_lead is not None:
            assert shift.duty_lead in answer.duty_leads
    assert set(answer.professionals) == {p for o in containing for p in o.professionals}
    assert len(set(answer.professionals)) == len(answer.professionals)


@settings(max_examples=examples(150), deadline=None)
@given(rota=rotas(), day=days_around_changes, cuts=st.lists(st.integers(1, 7 * 24 * 60 - 1), max_size=5))
def test_hand_overs_are_the_same_however_the_period_is_cut_into_runs(rota, day, cuts):
    start, end = london(day, 0), london(day, 0) + timedelta(days=7)
    points = [start, *sorted({start + timedelta(minutes=m) for m in cuts}), end]
    pieces = [h.key for a, b in zip(points, points[1:]) for h in handover_due(rota, "DN", a, b)]
    whole = [h.key for h in handover_due(rota, "DN", start, end)]
    assert pieces == whole and len(set(whole)) == len(whole)
    # (start, end]: a shift starting at end itself hands over in this period. occurrences() answers for
    # [start, end), so it is asked a minute further (a week from a Saturday's midnight across the autumn change
    # ends at Friday 23:00, when a night shift starts).
    starts = sorted({o.start for o in occurrences(rota, start, end + timedelta(minutes=1), "DN")
                     if start < o.start <= end})
    assert whole == [handover_key("DN", s) for s in starts]
