import copy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.calendar import (
    LONDON,
    AlwaysOpen,
    BankHolidays,
    add_open_time,
    calendar_from_spec,
    is_working_day,
    next_working_day,
    open_intervals,
    working_day_close,
)
from ipoa.domain.catalogue import load_catalogue
from ipoa.domain.sla import (
    Clock,
    NextDay,
    OpenHours,
    SameWorkingDay,
    SlaPolicyError,
    WorkingDays,
    describe_remaining,
    load_sla_policy,
    parse_rule,
)
from ipoa.domain.urgency import URGENCIES  # pinned by tests/unit/test_routing.py
from tests.helpers.properties import examples

UTC = UTC
ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "workflows")
POLICY = CATALOGUE.sla
DIRECTORY = CATALOGUE.directory
SERVICES = DIRECTORY.services
CENTRES = DIRECTORY.centres
SLA_FILE = ROOT / "workflows" / "sla.yaml"
SOURCE = "workflows/sla.yaml"
RAW = yaml.safe_load(SLA_FILE.read_text(encoding="utf-8"))

SPRING_CHANGE = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 01:00 GMT -> 02:00 BST
AUTUMN_CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 BST -> 01:00 GMT
SECOND = timedelta(seconds=1)


def london(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=LONDON)


def as_utc(day: date, hh: int, mm: int = 0) -> datetime:
    return london(day, hh, mm).astimezone(UTC)


WED = date(2026, 6, 3)  # an ordinary BST Wednesday
WED_GMT = date(2026, 1, 14)  # an ordinary GMT Wednesday
FRI = date(2026, 6, 5)
SAT = date(2026, 6, 6)
MON = date(2026, 6, 8)


# --- the shipped policy ---------------------------------------------------------------------------


def test_catalogue_loads_the_policy():
    assert POLICY is not None
    assert set(POLICY.response) == set(SERVICES)


@pytest.mark.parametrize(
    "urgency, minutes", [("emergency", 5), ("urgent", 15), ("same_day", 60)]
)
def test_triage_elapsed_defaults(urgency, minutes):
    logged = as_utc(SAT, 3, 7)  # a closed centre makes no difference to an elapsed clock
    clock = POLICY.triage_due(urgency, logged, CENTRES["ASC"].calendar)
    assert clock == Clock("triage", logged + timedelta(minutes=minutes), clock.rule)
    assert clock.due_at.tzinfo is UTC
    assert clock.rule.startswith(f"{urgency}: ")


def test_triage_rule_text():
    assert POLICY.triage_due("urgent", as_utc(WED, 10), AlwaysOpen()).rule == "urgent: 15 min"
    assert POLICY.triage_due("routine", as_utc(WED, 10), AlwaysOpen()).rule == (
        "routine: 4 h of open time (centre calendar)"
    )


def test_triage_routine_is_four_hours_of_the_centres_open_time():
    asc = CENTRES["ASC"].calendar  # Mon-Fri 08:30-17:00, closed on bank holidays
    assert POLICY.triage_due("routine", as_utc(WED, 10), asc).due_at == as_utc(WED, 14)
    # 1 h on Friday, then 3 h from Monday's opening.
    assert POLICY.triage_due("routine", as_utc(FRI, 16), asc).due_at == as_utc(MON, 11, 30)
    # Logged at the weekend: counted from Monday's opening.
    assert POLICY.triage_due("routine", as_utc(SAT, 12), asc).due_at == as_utc(MON, 12, 30)
    # 24/7 centre: 4 real hours.
    assert POLICY.triage_due("routine", as_utc(SAT, 12), CENTRES["CNH"].calendar).due_at == as_utc(SAT, 16)


@pytest.mark.parametrize(
    "urgency, delta", [("emergency", timedelta(minutes=30)), ("urgent", timedelta(minutes=30)),
                       ("same_day", timedelta(hours=2))]
)
def test_acceptance_elapsed_defaults(urgency, delta):
    sent = as_utc(WED, 16, 45)
    clock = POLICY.acceptance_due(urgency, sent, SERVICES["SCA"].calendar)
    assert clock.kind == "acceptance"
    assert clock.due_at == sent + delta


def test_acceptance_routine_is_one_working_day_on_the_service_calendar():
    sca = SERVICES["SCA"].calendar
    clock = POLICY.acceptance_due("routine", as_utc(WED, 10), sca)
    assert clock.due_at == as_utc(WED + timedelta(days=1), 17)
    assert clock.rule == "routine: 1 working day (service calendar)"
    # Sent on Friday during hours: Monday's close. After Friday's close: Tuesday's close.
    assert POLICY.acceptance_due("routine", as_utc(FRI, 16), sca).due_at == as_utc(MON, 17)
    assert POLICY.acceptance_due("routine", as_utc(FRI, 18), sca).due_at == as_utc(MON + timedelta(days=1), 17)
    assert POLICY.acceptance_due("routine", as_utc(SAT, 9), sca).due_at == as_utc(MON + timedelta(days=1), 17)


ACCEPTED = as_utc(WED, 10)  # Wednesday 3 June 2026 10:00 BST
THU, NEXT_WED = WED + timedelta(days=1), WED + timedelta(days=7)
RESPONSE_DEFAULTS = [
    ("CRT", URGENCIES, ACCEPTED + timedelta(hours=2), "2 h"),
    ("OOHV", URGENCIES, ACCEPTED + timedelta(hours=2), "2 h"),
    ("CRS", URGENCIES, ACCEPTED + timedelta(hours=2), "2 h"),
    ("DN", ("emergency", "urgent", "same_day"), ACCEPTED + timedelta(hours=4), "4 h"),
    ("DN", ("routine",), ACCEPTED + timedelta(hours=48), "48 h"),
    ("ILT", URGENCIES, as_utc(FRI, 18), "2 working days (ILT calendar)"),
    ("SCA", ("emergency", "urgent", "same_day"), as_utc(WED, 17), "same working day (SCA calendar)"),
    ("SCA", ("routine",), ACCEPTED + timedelta(days=28), "28 days"),
    ("EDT", URGENCIES, ACCEPTED + timedelta(hours=2), "2 h"),
    ("SG", URGENCIES, as_utc(WED, 17), "same working day (SG calendar)"),
    ("REA", URGENCIES, as_utc(THU, 20), "next day (REA calendar)"),
    ("MHCR", URGENCIES, ACCEPTED + timedelta(hours=4), "4 h"),
    ("LB", URGENCIES, as_utc(NEXT_WED, 17), "5 working days (LB calendar)"),
    ("FCPW", URGENCIES, as_utc(NEXT_WED, 17), "5 working days (FCPW calendar)"),
]


@pytest.mark.parametrize(
    "service, urgency, due, text",
    [(s, u, due, text) for s, us, due, text in RESPONSE_DEFAULTS for u in us],
    ids=[f"{s}-{u}" for s, us, _, _ in RESPONSE_DEFAULTS for u in us],
)
def test_response_defaults(service, urgency, due, text):
    clock = POLICY.response_due(service, urgency, ACCEPTED, SERVICES[service].calendar)
    assert clock == Clock("response", due, f"{urgency}: {text}")


def test_every_service_has_a_response_default_under_test():
    assert {row[0] for row in RESPONSE_DEFAULTS} == set(SERVICES)


def test_callback_due_at_the_promised_time_and_escalates_fifteen_minutes_later():
    promised = london(WED, 14, 30)  # any zone in, UTC out
    assert POLICY.callback_due(promised).due_at == promised.astimezone(UTC)
    assert POLICY.callback_due(promised).kind == "callback"
    assert POLICY.callback_escalates_at(promised) == as_utc(WED, 14, 45)
    assert POLICY.callback_escalates_at(promised).tzinfo is UTC


def test_naive_datetimes_and_unknown_codes_are_refused():
    naive = datetime(2026, 6, 3, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        POLICY.triage_due("urgent", naive, AlwaysOpen())
    with pytest.raises(ValueError, match="naive"):
        POLICY.response_due("SG", "urgent", naive, SERVICES["SG"].calendar)
    with pytest.raises(ValueError, match="naive"):
        POLICY.callback_escalates_at(naive)
    with pytest.raises(ValueError, match="naive"):
        describe_remaining(naive, ACCEPTED)
    with pytest.raises(ValueError, match="unknown urgency 'soon'"):
        POLICY.acceptance_due("soon", ACCEPTED, AlwaysOpen())
    with pytest.raises(ValueError, match="no response target for service 'XYZ'"):
        POLICY.response_due("XYZ", "urgent", ACCEPTED, AlwaysOpen())


# --- working-time arithmetic ----------------------------------------------------------------------


def test_bank_holidays_used_here_are_englands():
    bh = BankHolidays()
    for day in (date(2026, 12, 25), date(2026, 12, 28), date(2027, 3, 26), date(2027, 3, 29)):
        assert bh.is_holiday(day)
    assert not bh.is_holiday(date(2026, 12, 24))


def test_working_days_skip_christmas_and_boxing_day_2026():
    ilt = SERVICES["ILT"].calendar  # Mon-Fri 08:00-18:00, closed on bank holidays
    eve = date(2026, 12, 24)  # Thursday; Fri 25 and Mon 28 (Boxing Day substitute) are bank holidays
    assert not is_working_day(ilt, date(2026, 12, 25))
    assert not is_working_day(ilt, date(2026, 12, 28))
    assert next_working_day(ilt, eve) == date(2026, 12, 29)
    assert WorkingDays(2).due(as_utc(eve, 10), ilt) == as_utc(date(2026, 12, 30), 18)
    assert SameWorkingDay().due(as_utc(eve, 18, 30), ilt) == as_utc(date(2026, 12, 29), 18)


def test_a_calendar_open_on_bank_holidays_counts_them():
    fcpw = SERVICES["FCPW"].calendar  # Mon-Fri 08:30-17:00, bank holidays not excluded
    assert is_working_day(fcpw, date(2026, 12, 25))
    assert WorkingDays(1).due(as_utc(date(2026, 12, 24), 10), fcpw) == as_utc(date(2026, 12, 25), 17)


def test_easter_2027_and_the_spring_clock_change():
    ilt = SERVICES["ILT"].calendar
    thursday = date(2027, 3, 25)  # GMT; Good Friday 26th, clocks change Sunday 28th, Easter Monday 29th
    due = WorkingDays(2).due(as_utc(thursday, 10), ilt)
    assert due == as_utc(date(2027, 3, 31), 18) == datetime(2027, 3, 31, 17, 0, tzinfo=UTC)  # 18:00 BST
    # Open-time counting across the long weekend: 8 h on Thursday, 2 h from Tuesday's opening (BST).
    assert add_open_time(ilt, as_utc(thursday, 10), timedelta(hours=10)) == datetime(2027, 3, 30, 9, 0, tzinfo=UTC)


def test_day_scale_rule_ending_after_the_spring_change_ends_at_the_local_close():
    rea = SERVICES["REA"].calendar  # 08:00-20:00 every day
    saturday = date(2027, 3, 27)
    due = NextDay().due(as_utc(saturday, 10), rea)
    assert due == datetime(2027, 3, 28, 19, 0, tzinfo=UTC)  # 20:00 BST on the Sunday
    assert due.astimezone(LONDON).time() == time(20, 0)


def test_day_scale_rule_ending_after_the_autumn_change_ends_at_the_local_close():
    lb = SERVICES["LB"].calendar  # Mon-Fri 09:00-17:00
    friday = date(2026, 10, 23)  # BST; clocks go back on Sunday 25th
    due = WorkingDays(1).due(as_utc(friday, 10), lb)
    assert due == datetime(2026, 10, 26, 17, 0, tzinfo=UTC)  # 17:00 GMT on Monday
    assert POLICY.acceptance_due("routine", as_utc(friday, 10), SERVICES["SG"].calendar).due_at == (
        datetime(2026, 10, 26, 17, 0, tzinfo=UTC)
    )


@pytest.mark.parametrize("change", [SPRING_CHANGE, AUTUMN_CHANGE], ids=["spring", "autumn"])
def test_open_hours_on_a_24_7_centre_across_a_clock_change_are_real_hours(change):
    logged = change - timedelta(hours=1, minutes=30)
    due = POLICY.triage_due("routine", logged, CENTRES["CNH"].calendar).due_at
    assert due - logged == timedelta(hours=4)
    # The wall clock shows 3 or 5 hours.
    wall = due.astimezone(LONDON).replace(tzinfo=None) - logged.astimezone(LONDON).replace(tzinfo=None)
    assert wall == timedelta(hours=5 if change == SPRING_CHANGE else 3)


@pytest.mark.parametrize("change", [SPRING_CHANGE, AUTUMN_CHANGE], ids=["spring", "autumn"])
def test_elapsed_rules_across_a_clock_change_are_real_time(change):
    accepted = change - timedelta(hours=1)
    assert POLICY.response_due("DN", "routine", accepted, AlwaysOpen()).due_at == accepted + timedelta(hours=48)


def test_24_7_close_of_day_is_local_midnight():
    always = AlwaysOpen()
    assert working_day_close(always, WED) == as_utc(THU, 0)
    assert working_day_close(always, WED_GMT) == datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
    # The autumn change day is 25 hours long; its close is still local midnight.
    assert working_day_close(always, date(2026, 10, 25)) == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)
    assert SameWorkingDay().due(as_utc(WED, 23, 59), always) == as_utc(THU, 0)
    assert NextDay().due(as_utc(WED, 0, 0), always) == as_utc(date(2026, 6, 5), 0)
    assert WorkingDays(2).due(as_utc(WED, 10), always) == as_utc(date(2026, 6, 6), 0)


def test_starts_exactly_at_opening_and_at_closing():
    sg = SERVICES["SG"].calendar  # 08:30-17:00
    assert SameWorkingDay().due(as_utc(WED, 8, 30), sg) == as_utc(WED, 17)
    assert SameWorkingDay().due(as_utc(WED, 8, 29), sg) == as_utc(WED, 17)  # before opening: today
    assert SameWorkingDay().due(as_utc(WED, 16, 59), sg) == as_utc(WED, 17)
    assert SameWorkingDay().due(as_utc(WED, 17), sg) == as_utc(THU, 17)  # at closing: closed
    assert WorkingDays(1).due(as_utc(WED, 8, 30), sg) == as_utc(THU, 17)
    assert WorkingDays(1).due(as_utc(WED, 17), sg) == as_utc(date(2026, 6, 5), 17)
    asc = CENTRES["ASC"].calendar
    assert OpenHours(4).due(as_utc(WED, 8, 30), asc) == as_utc(WED, 12, 30)
    assert OpenHours(4).due(as_utc(WED, 17), asc) == as_utc(THU, 12, 30)
    # Exactly the open time left today: due at the close, not the next opening.
    assert OpenHours(4).due(as_utc(WED, 13), asc) == as_utc(WED, 17)


def test_same_working_day_cut_off_rolls_to_the_next_working_day():
    sg = SERVICES["SG"].calendar
    rule = parse_rule({"same_working_day": {"cut_off": "16:00"}})
    assert rule == SameWorkingDay(time(16, 0))
    assert rule.due(as_utc(WED, 15, 59), sg) == as_utc(WED, 17)
    assert rule.due(as_utc(WED, 16), sg) == as_utc(THU, 17)
    assert rule.due(as_utc(FRI, 16, 30), sg) == as_utc(MON, 17)
    assert rule.due(as_utc(SAT, 16, 30), sg) == as_utc(MON, 17)  # counted from Monday's opening
    assert rule.describe("SG calendar") == "same working day, cut-off 16:00 (SG calendar)"


def test_calendars_running_past_midnight_and_complements():
    oohv = SERVICES["OOHV"].calendar  # 20:00-08:00
    assert working_day_close(oohv, WED) == as_utc(THU, 0)
    assert list(open_intervals(oohv, as_utc(WED, 0), as_utc(THU, 0))) == [
        (as_utc(WED, 0), as_utc(WED, 8)),
        (as_utc(WED, 20), as_utc(THU, 0)),
    ]
    assert add_open_time(oohv, as_utc(WED, 7), timedelta(hours=3)) == as_utc(WED, 22)
    edt = SERVICES["EDT"].calendar  # whenever ASC is closed
    assert list(open_intervals(edt, as_utc(WED, 0), as_utc(THU, 0))) == [
        (as_utc(WED, 0), as_utc(WED, 8, 30)),
        (as_utc(WED, 17), as_utc(THU, 0)),
    ]
    assert add_open_time(edt, as_utc(WED, 8), timedelta(hours=1)) == as_utc(WED, 17, 30)
    assert working_day_close(edt, SAT) == as_utc(date(2026, 6, 7), 0)


def test_open_intervals_clip_and_merge():
    every_day = calendar_from_spec({"hours": [{"days": "every day", "open": "00:00", "close": "24:00"}]}, {})
    start = as_utc(WED, 10)
    assert list(open_intervals(every_day, start, start + timedelta(days=3))) == [(start, start + timedelta(days=3))]
    assert list(open_intervals(SERVICES["LB"].calendar, as_utc(SAT, 0), as_utc(MON, 0))) == []


def test_describe_remaining():
    due = as_utc(WED, 12)
    assert describe_remaining(due, due) == "due now"
    assert describe_remaining(due, due - timedelta(minutes=12)) == "due in 12 min"
    assert describe_remaining(due, due - timedelta(minutes=12, seconds=30)) == "due in 12 min"
    assert describe_remaining(due, due - timedelta(seconds=20)) == "due in under 1 min"
    assert describe_remaining(due, due + timedelta(seconds=20)) == "overdue by under 1 min"
    assert describe_remaining(due, due + timedelta(hours=1, minutes=5)) == "overdue by 1 h 5 min"
    assert describe_remaining(due, due + timedelta(hours=2)) == "overdue by 2 h"
    assert describe_remaining(due, due - timedelta(days=1, hours=3, minutes=7)) == "due in 1 day 3 h"
    assert describe_remaining(due, due - timedelta(days=28)) == "due in 28 days"
    # Zones do not matter.
    assert describe_remaining(due.astimezone(LONDON), due - timedelta(minutes=5)) == "due in 5 min"


# --- properties -----------------------------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
CALENDARS = {
    "CNH (24/7)": CENTRES["CNH"].calendar,
    "ASC (Mon-Fri, bank holidays)": CENTRES["ASC"].calendar,
    "EDT (complement)": SERVICES["EDT"].calendar,
    "OOHV (past midnight)": SERVICES["OOHV"].calendar,
    "REA (every day)": SERVICES["REA"].calendar,
    "FCPW (Mon-Fri, open on bank holidays)": SERVICES["FCPW"].calendar,
}
RULES = [
    parse_rule({"elapsed": "2h"}),
    parse_rule({"elapsed": "28d"}),
    OpenHours(4),
    OpenHours(0.25),
    WorkingDays(1),
    WorkingDays(5),
    SameWorkingDay(),
    SameWorkingDay(time(16, 0)),
    NextDay(),
]
CALENDAR_RULES = [r for r in RULES if r.kind != "elapsed"]


@settings(max_examples=examples(150), deadline=None)
@given(
    calendar=st.sampled_from(sorted(CALENDARS)),
    rule=st.sampled_from(RULES),
    start=INSTANTS,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=9)),
)
def test_due_is_never_before_the_start_and_is_monotone(calendar, rule, start, later):
    cal = CALENDARS[calendar]
    due = rule.due(start, cal)
    assert due.tzinfo is UTC
    assert due > start
    assert rule.due(start + later, cal) >= due


@settings(max_examples=examples(150), deadline=None)
@given(calendar=st.sampled_from(sorted(CALENDARS)), rule=st.sampled_from(CALENDAR_RULES), start=INSTANTS)
def test_calendar_rules_fall_due_just_after_open_time(calendar, rule, start):
    cal = CALENDARS[calendar]
    due = rule.due(start, cal)
    assert cal.is_open(due - SECOND)


@settings(max_examples=examples(150), deadline=None)
@given(
    calendar=st.sampled_from(sorted(CALENDARS)),
    start=INSTANTS,
    minutes=st.integers(min_value=1, max_value=60 * 60),
)
def test_open_time_added_is_exactly_the_open_time_between(calendar, start, minutes):
    cal = CALENDARS[calendar]
    duration = timedelta(minutes=minutes)
    due = add_open_time(cal, start, duration)
    counted = sum((b - a for a, b in open_intervals(cal, start, due)), timedelta(0))
    assert counted == duration


@settings(max_examples=examples(100), deadline=None)
@given(start=INSTANTS, minutes=st.integers(min_value=1, max_value=24 * 60))
def test_open_time_on_a_24_7_calendar_is_real_time(start, minutes):
    assert add_open_time(AlwaysOpen(), start, timedelta(minutes=minutes)) == start + timedelta(minutes=minutes)


@settings(max_examples=examples(100), deadline=None)
@given(start=INSTANTS)
def test_day_scale_rules_end_at_the_local_close(start):
    lb = SERVICES["LB"].calendar  # closes 17:00 local, GMT or BST
    for rule in (WorkingDays(1), WorkingDays(5), SameWorkingDay(), NextDay()):
        local = rule.due(start, lb).astimezone(LONDON)
        assert local.time() == time(17, 0)
        assert local.weekday() < 5 and not BankHolidays().is_holiday(local.date())


# --- validation -----------------------------------------------------------------------------------


def load(data):
    return load_sla_policy(data, DIRECTORY, source=SOURCE)


def edited(edit):
    data = copy.deepcopy(RAW)
    edit(data)
    return data


def test_the_shipped_file_loads_with_the_same_source_name():
    assert set(load(RAW).response) == set(SERVICES)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["triage"].update(urgent={"elapsed": "15 minutes"}), "triage.urgent: bad duration '15 minutes'"),
        (lambda d: d["triage"].update(urgent={"elapsed": 15}), "triage.urgent: bad duration 15"),
        (lambda d: d["triage"].update(urgent={"elapsed": "0m"}), "triage.urgent: bad duration '0m': must be more"),
        (lambda d: d["callback"].update(overdue_after="soon"), "callback.overdue_after: bad duration 'soon'"),
        (lambda d: d["acceptance"].update(routine={"workdays": 1}), "acceptance.routine: unknown rule kind 'workdays'"),
        (lambda d: d["response"].update(SG="same_day"), "response.SG: unknown rule kind 'same_day'"),
        (lambda d: d["response"].update(SG={"elapsed": "2h", "working_days": 1}), "response.SG: a rule is one kind"),
        (lambda d: d["response"].update(LB={"working_days": 0}), "response.LB: working_days must be a whole number"),
        (lambda d: d["response"].update(LB={"working_days": 1.5}), "response.LB: working_days must be a whole number"),
        (lambda d: d["triage"].update(routine={"open_hours": "4h"}), "triage.routine: open_hours must be a positive"),
        (lambda d: d["response"]["SCA"].update(urgent={"same_working_day": {"cut_off": "25:00"}}),
         "response.SCA.urgent: same_working_day cut_off: bad time '25:00'"),
        (lambda d: d["response"].update(REA={"next_day": 1}), "response.REA: next_day takes no value"),
        (lambda d: d["response"].update(ZZZ={"elapsed": "2h"}), "response: unknown service code 'ZZZ'"),
        (lambda d: d["response"].pop("MHCR"), "response: no response target for service 'MHCR'"),
        (lambda d: d["triage"].pop("emergency"), "triage: no rule for urgency 'emergency'"),
        (lambda d: d["response"]["DN"].pop("same_day"), "response.DN: no rule for urgency 'same_day'"),
        (lambda d: d["acceptance"].update(soon={"elapsed": "1h"}), "acceptance: unknown urgency 'soon'"),
        (lambda d: d.pop("callback"), "callback: Field required"),
        (lambda d: d.update(breach={}), "breach: unknown key"),
    ],
    ids=[
        "bad-duration", "duration-without-unit", "zero-duration", "bad-callback", "unknown-kind",
        "unknown-bare-kind", "two-kinds", "zero-working-days", "fractional-working-days", "open-hours-text",
        "bad-cut-off", "next-day-value", "unknown-service", "missing-service", "missing-urgency",
        "missing-service-urgency", "unknown-urgency", "missing-section", "unknown-section",
    ],
)
def test_invalid_policies_name_the_file_and_the_problem(edit, message):
    with pytest.raises(SlaPolicyError) as info:
        load(edited(edit))
    assert str(info.value).startswith(f"{SOURCE}: ")
    assert message in str(info.value)


def test_not_a_mapping():
    with pytest.raises(SlaPolicyError, match=f"^{SOURCE}: expected a mapping"):
        load(["triage"])


def test_rule_forms():
    assert parse_rule("same_working_day") == SameWorkingDay()
    assert parse_rule({"same_working_day": None}) == SameWorkingDay()
    assert parse_rule("next_day") == NextDay()
    assert parse_rule({"open_hours": 1.5}) == OpenHours(1.5)
    elapsed = parse_rule({"elapsed": "1h30m"})
    assert elapsed.duration == timedelta(hours=1, minutes=30)
    assert elapsed.describe("x") == "1 h 30 min"
    assert parse_rule({"elapsed": "28d"}).describe("x") == "28 days"
    with pytest.raises(ValueError, match="needs a value"):
        parse_rule("working_days")
