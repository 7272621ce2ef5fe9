import copy
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain.calendar import LONDON
from ipoa.domain.directory import load_directory_file
from ipoa.domain.routing import (
    URGENCIES,
    Alternative,
    Decision,
    OutOfHours,
    RoutingError,
    RoutingTable,
    load_routing,
    load_routing_file,
)
from tests.helpers.properties import examples

UTC = UTC
ROOT = Path(__file__).resolve().parents[2]
ROUTING_FILE = ROOT / "workflows" / "routing.yaml"
DIRECTORY = load_directory_file(ROOT / "workflows" / "directory.yaml")
RAW = yaml.safe_load(ROUTING_FILE.read_text(encoding="utf-8"))
TABLE = load_routing_file(ROUTING_FILE, DIRECTORY)
SOURCE = "workflows/routing.yaml"

WEDNESDAY = date(2026, 6, 3)
SATURDAY = date(2026, 6, 6)
IN_AREA = "LE11 3AB"  # Charnwood
OUT_OF_AREA = "NG1 1AA"


def london(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=LONDON)


def decide(need: str, urgency: str, at: datetime | None = None, postcode: str | None = IN_AREA) -> Decision:
    return TABLE.decide(need, urgency, (at or london(WEDNESDAY, 12)).astimezone(UTC), postcode)


# --- the table as shipped --------------------------------------------------------------------------

def test_table_exposes_needs_urgencies_and_rules():
    assert list(TABLE.needs) == [
        "information_advice", "mental_health", "urgent_community_health", "community_nursing",
        "social_care_crisis", "safeguarding_concern", "social_care_assessment", "hospital_discharge",
        "long_term_condition", "housing", "wellbeing_prevention", "other",
    ]
    assert all(TABLE.needs[code] for code in TABLE.needs)
    assert URGENCIES == ("emergency", "urgent", "same_day", "routine")
    assert TABLE.urgencies == URGENCIES
    assert [r.id for r in TABLE.rules] == ["1", "2", "out_of_area"] + [str(n) for n in range(3, 19)]
    assert isinstance(TABLE, RoutingTable)


@pytest.mark.parametrize(
    "need, urgency, rule, tier, service, outcome",
    [
        ("housing", "emergency", "1", 1, None, "divert_999"),
        ("information_advice", "emergency", "1", 1, None, "divert_999"),
        ("information_advice", "routine", "2", 1, None, "resolved_at_first_contact"),
        ("mental_health", "urgent", "3", 2, "MHCR", None),
        ("mental_health", "same_day", "3", 2, "MHCR", None),
        ("mental_health", "routine", "4", 2, "ILT", None),
        ("urgent_community_health", "urgent", "5", 2, "CRT", None),
        ("urgent_community_health", "same_day", "5", 2, "CRT", None),
        ("urgent_community_health", "routine", "18", 3, None, None),
        ("community_nursing", "urgent", "7", 2, "DN", None),
        ("community_nursing", "routine", "7", 2, "DN", None),
        ("social_care_crisis", "same_day", "8", 2, "CRS", None),
        ("social_care_crisis", "routine", "18", 3, None, None),
        ("safeguarding_concern", "routine", "9", 2, "SG", None),
        ("social_care_assessment", "urgent", "11", 2, "SCA", None),
        ("social_care_assessment", "routine", "13", 2, "SCA", None),
        ("hospital_discharge", "same_day", "14", 2, "REA", None),
        ("long_term_condition", "routine", "15", 2, "ILT", None),
        ("housing", "routine", "16", 2, "LB", None),
        ("wellbeing_prevention", "routine", "17", 2, "FCPW", None),
        ("other", "urgent", "18", 3, None, None),
    ],
)
def test_rows_on_a_weekday_at_noon(need, urgency, rule, tier, service, outcome):
    decision = decide(need, urgency)
    assert (decision.rule, decision.tier, decision.service, decision.outcome) == (rule, tier, service, outcome)
    assert decision.locality == "Charnwood"
    assert not decision.out_of_area
    assert decision.next_open is None
    assert decision.reason.startswith(f"Row {rule}: ")


def test_reason_reads_as_a_sentence():
    assert decide("urgent_community_health", "urgent").reason == (
        "Row 5: urgent community health need, urgent, 08:00-19:59 -> Clinical Response Team"
    )
    assert decide("long_term_condition", "routine").reason == (
        "Row 15: long term condition need, routine -> Integrated Locality Team (Charnwood)"
    )


# --- rows 5 and 6: CRT by day, OOHV by night --------------------------------------------------------

@pytest.mark.parametrize(
    "at, rule, service",
    [
        (london(WEDNESDAY, 7, 59, 59), "6", "OOHV"),
        (london(WEDNESDAY, 8, 0), "5", "CRT"),
        (london(WEDNESDAY, 19, 59, 59), "5", "CRT"),
        (london(WEDNESDAY, 20, 0), "6", "OOHV"),
        (london(WEDNESDAY, 0, 0), "6", "OOHV"),
        (london(SATURDAY, 12), "5", "CRT"),
        (london(date(2026, 12, 25), 12), "5", "CRT"),
    ],
)
def test_clinical_response_by_day_and_home_visiting_by_night(at, rule, service):
    for urgency in ("urgent", "same_day"):
        decision = decide("urgent_community_health", urgency, at)
        assert (decision.rule, decision.service, decision.tier) == (rule, service, 2)
        assert decision.next_open is None


@pytest.mark.parametrize(
    "at_utc, service",
    [
        (datetime(2026, 3, 28, 7, 30, tzinfo=UTC), "OOHV"),  # 07:30 GMT
        (datetime(2026, 3, 29, 6, 59, 59, tzinfo=UTC), "OOHV"),  # 07:59:59 BST on the change day
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "CRT"),  # 08:00 BST
        (datetime(2026, 3, 29, 19, 0, tzinfo=UTC), "OOHV"),  # 20:00 BST
        (datetime(2026, 10, 25, 7, 30, tzinfo=UTC), "OOHV"),  # 07:30 GMT on the change day
        (datetime(2026, 10, 25, 8, 0, tzinfo=UTC), "CRT"),  # 08:00 GMT
        (datetime(2026, 10, 24, 7, 0, tzinfo=UTC), "CRT"),  # 08:00 BST
    ],
)
def test_day_night_switch_follows_the_london_clock_across_changes(at_utc, service):
    assert TABLE.decide("urgent_community_health", "urgent", at_utc, IN_AREA).service == service


# --- rows 9 to 13: safeguarding and social care assessment by the service's hours ---------------------

OPEN_CLOSED = [
    (london(WEDNESDAY, 8, 29), False),
    (london(WEDNESDAY, 8, 30), True),
    (london(WEDNESDAY, 16, 59), True),
    (london(WEDNESDAY, 17, 0), False),
    (london(SATURDAY, 12), False),
    (london(date(2026, 12, 25), 12), False),
    (london(date(2026, 12, 28), 12), False),
    (london(date(2026, 8, 31), 12), False),
]


@pytest.mark.parametrize("at, sg_open", OPEN_CLOSED)
def test_safeguarding_goes_to_sg_when_open_else_edt(at, sg_open):
    for urgency in ("urgent", "same_day", "routine"):
        decision = decide("safeguarding_concern", urgency, at)
        expected = ("9", "SG") if sg_open else ("10", "EDT")
        assert (decision.rule, decision.service) == expected
        assert decision.alert_supervisor
        assert decision.next_open is None  # EDT is open whenever SG is closed
        assert "supervisor alerted" in decision.reason


@pytest.mark.parametrize("at, sca_open", OPEN_CLOSED)
def test_urgent_social_care_assessment_goes_to_sca_when_open_else_edt(at, sca_open):
    for urgency in ("urgent", "same_day"):
        decision = decide("social_care_assessment", urgency, at)
        assert (decision.rule, decision.service) == (("11", "SCA") if sca_open else ("12", "EDT"))
        assert not decision.alert_supervisor
        assert decision.next_open is None


@pytest.mark.parametrize(
    "at, next_open",
    [
        (london(SATURDAY, 12), london(date(2026, 6, 8), 8, 30)),  # Monday
        (london(date(2026, 8, 29), 12), london(date(2026, 9, 1), 8, 30)),  # Tuesday after the bank holiday
        (london(date(2026, 8, 31), 12), london(date(2026, 9, 1), 8, 30)),  # on the bank holiday itself
        (london(date(2026, 3, 28), 12), london(date(2026, 3, 30), 8, 30)),  # across the spring change
        (london(WEDNESDAY, 17, 0), london(date(2026, 6, 4), 8, 30)),
    ],
)
def test_routine_assessment_is_queued_for_the_next_working_day(at, next_open):
    decision = decide("social_care_assessment", "routine", at)
    assert (decision.rule, decision.service, decision.tier) == ("13", "SCA", 2)
    assert decision.next_open == next_open.astimezone(UTC)
    assert decision.next_open.tzinfo is UTC
    assert "queued for the service's next working day" in decision.reason
    assert f"opens {next_open:%a %d %b %H:%M}" in decision.reason


def test_routine_assessment_while_open_has_no_next_open():
    decision = decide("social_care_assessment", "routine", london(WEDNESDAY, 8, 30))
    assert decision.service == "SCA" and decision.next_open is None


@pytest.mark.parametrize(
    "need, day, service, next_open",
    [
        ("long_term_condition", date(2026, 12, 28), "ILT", london(date(2026, 12, 29), 8, 0)),
        ("housing", date(2026, 8, 31), "LB", london(date(2026, 9, 1), 9, 0)),
        ("housing", date(2026, 12, 25), "LB", london(date(2026, 12, 29), 9, 0)),
    ],
)
def test_bank_holidays_delay_weekday_services(need, day, service, next_open):
    decision = decide(need, "routine", london(day, 12))
    assert decision.service == service
    assert decision.next_open == next_open.astimezone(UTC)


# --- locality ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("need, urgency, row",
                         [("mental_health", "routine", "4"), ("long_term_condition", "urgent", "15")])
def test_locality_team_without_a_postcode_falls_to_tier_3(need, urgency, row):
    decision = decide(need, urgency, postcode=None)
    assert (decision.tier, decision.service, decision.outcome, decision.rule) == (3, None, None, "18")
    assert decision.locality is None and not decision.out_of_area
    assert f"row {row} (" in decision.reason
    assert "there is no postcode" in decision.reason
    assert decision.reason.startswith("Row 18: ")


@pytest.mark.parametrize("need", ["mental_health", "long_term_condition"])
def test_locality_team_out_of_area_falls_to_tier_3(need):
    decision = decide(need, "routine", postcode=OUT_OF_AREA)
    assert (decision.tier, decision.service, decision.outcome, decision.rule) == (3, None, None, "out_of_area")
    assert decision.out_of_area and decision.locality is None


def test_out_of_area_row_comes_after_rows_1_and_2():
    assert decide("housing", "emergency", postcode=OUT_OF_AREA).rule == "1"
    assert decide("information_advice", "routine", postcode=OUT_OF_AREA).rule == "2"
    decision = decide("mental_health", "urgent", postcode=OUT_OF_AREA)
    assert (decision.rule, decision.tier, decision.service) == ("out_of_area", 3, None)
    assert decision.out_of_area
    assert "postcode outside all localities" in decision.reason
    assert decide("housing", "emergency", postcode=OUT_OF_AREA).out_of_area


def test_without_the_out_of_area_row_locality_rows_still_fall_to_tier_3():
    data = copy.deepcopy(RAW)
    data["rules"] = [r for r in data["rules"] if r["id"] != "out_of_area"]
    table = load_routing(data, DIRECTORY, source=SOURCE)
    decision = table.decide("long_term_condition", "routine", london(WEDNESDAY, 12), OUT_OF_AREA)
    assert (decision.tier, decision.service, decision.rule) == (3, None, "18")
    assert decision.out_of_area
    assert "outside all localities" in decision.reason
    # Rows that do not need a locality still refer.
    assert table.decide("housing", "routine", london(WEDNESDAY, 12), OUT_OF_AREA).service == "LB"


def test_services_without_locality_need_no_postcode():
    decision = decide("housing", "routine", postcode=None)
    assert decision.service == "LB" and decision.locality is None


# --- inputs and output --------------------------------------------------------------------------------

def test_to_dict_is_json_friendly():
    decision = decide("social_care_assessment", "routine", london(SATURDAY, 12))
    data = json.loads(json.dumps(decision.to_dict()))
    assert data == {
        "tier": 2,
        "service": "SCA",
        "outcome": None,
        "locality": "Charnwood",
        "rule": "13",
        "reason": decision.reason,
        "alert_supervisor": False,
        "out_of_area": False,
        "next_open": "2026-06-08T07:30:00+00:00",
    }
    assert datetime.fromisoformat(data["next_open"]) == decision.next_open
    assert decide("other", "routine").to_dict()["next_open"] is None


@pytest.mark.parametrize(
    "need, urgency, at, postcode, message",
    [
        ("gardening", "urgent", london(WEDNESDAY, 12), None, "unknown need"),
        ("housing", "soon", london(WEDNESDAY, 12), None, "unknown urgency"),
        ("housing", "urgent", datetime(2026, 6, 3, 12), None, "timezone-aware"),
        ("housing", "urgent", london(WEDNESDAY, 12), "LE11", "not a valid UK postcode"),
    ],
)
def test_bad_inputs_are_refused(need, urgency, at, postcode, message):
    with pytest.raises(ValueError, match=message):
        TABLE.decide(need, urgency, at, postcode)


def test_instants_in_any_zone_give_the_same_decision():
    at = london(WEDNESDAY, 19, 59, 59)
    other_zone = at.astimezone(timezone(timedelta(hours=-5)))
    assert decide("urgent_community_health", "urgent", at) == TABLE.decide(
        "urgent_community_health", "urgent", other_zone, IN_AREA
    )


# --- properties ----------------------------------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59), timezones=st.just(UTC)
)
POSTCODES = st.sampled_from([None, "", IN_AREA, "le1 1aa", "DE74 2SA", "LE15 6AA", OUT_OF_AREA, "CV1 1AA"])
NEEDS = st.sampled_from(list(TABLE.needs))
PROPERTY = settings(max_examples=examples(500), deadline=None, database=None)


@PROPERTY
@given(NEEDS, st.sampled_from(URGENCIES), INSTANTS, POSTCODES)
def test_decide_is_total_and_consistent(need, urgency, at, postcode):
    decision = TABLE.decide(need, urgency, at, postcode)
    match = DIRECTORY.locality_for(postcode)
    assert decision.rule in {r.id for r in TABLE.rules}
    assert decision.tier in (1, 2, 3)
    assert decision.out_of_area == match.out_of_area
    assert decision.reason
    if urgency == "emergency":
        assert (decision.tier, decision.outcome, decision.service) == (1, "divert_999", None)
    if decision.service is not None:
        assert decision.tier == 2 and decision.outcome is None
        service = DIRECTORY.services[decision.service]
        if service.needs_locality:
            assert decision.locality is not None
        if service.calendar.is_open(at):
            assert decision.next_open is None
        else:
            assert decision.next_open > at and service.calendar.is_open(decision.next_open)
    else:
        assert decision.next_open is None
    assert (decision.tier == 3) == (decision.service is None and decision.outcome is None)
    if decision.tier == 1:
        assert decision.outcome in ("divert_999", "resolved_at_first_contact")
    json.dumps(decision.to_dict())


@PROPERTY
@given(st.sampled_from(["urgent", "same_day"]), INSTANTS, POSTCODES)
def test_crt_only_by_day_and_oohv_only_by_night(urgency, at, postcode):
    decision = TABLE.decide("urgent_community_health", urgency, at, postcode)
    local = at.astimezone(LONDON).time()
    day = time(8, 0) <= local < time(20, 0)
    if decision.service == "CRT":
        assert day
    elif decision.service == "OOHV":
        assert not day
    else:
        assert decision.rule == "out_of_area"


@PROPERTY
@given(st.sampled_from(["urgent", "same_day", "routine"]), INSTANTS, POSTCODES)
def test_safeguarding_always_reaches_an_open_service(urgency, at, postcode):
    decision = TABLE.decide("safeguarding_concern", urgency, at, postcode)
    if decision.service is not None:
        assert DIRECTORY.services[decision.service].calendar.is_open(at)
        assert decision.alert_supervisor


# --- loader errors ---------------------------------------------------------------------------------------

def _rule(data: dict, rule_id: str) -> dict:
    return next(r for r in data["rules"] if r["id"] == rule_id)


def _expect_error(change, *fragments: str) -> str:
    data = copy.deepcopy(RAW)
    change(data)
    with pytest.raises(RoutingError) as info:
        load_routing(data, DIRECTORY, source=SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ")
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_service_code():
    _expect_error(lambda d: _rule(d, "5").update(service="CRTX"), "rule 5:", "unknown service code 'CRTX'")


def test_unknown_service_in_condition():
    _expect_error(
        lambda d: _rule(d, "9")["when"].update(service_open="SGX"), "rule 9:",
        "service_open: unknown service code 'SGX'",
    )


def test_unknown_need():
    _expect_error(lambda d: _rule(d, "16")["when"].update(need=["housing", "hosuing"]), "rule 16:",
                  "unknown need 'hosuing'")


def test_unknown_urgency():
    _expect_error(lambda d: _rule(d, "3")["when"].update(urgency=["urgent", "asap"]), "rule 3:",
                  "unknown urgency 'asap'")


def test_unknown_condition_key():
    _expect_error(
        lambda d: _rule(d, "7")["when"].update(urgncy=["urgent"]), "rule 7:", "unknown condition 'urgncy'", "allowed:"
    )


def test_unknown_locality_condition():
    _expect_error(lambda d: _rule(d, "out_of_area")["when"].update(locality="nearby"), "rule out_of_area:", "locality")


def test_unknown_rule_key():
    _expect_error(lambda d: _rule(d, "14").update(servce="REA"), "rule 14:", "servce: unknown key")


def test_duplicate_rule_id():
    _expect_error(lambda d: _rule(d, "12").update(id="11"), "rule 11:", "duplicate rule id")


def test_missing_final_catch_all():
    _expect_error(lambda d: d["rules"].pop(), "rule 17:", "last rule must be the catch-all")


def test_final_catch_all_must_be_tier_3():
    _expect_error(
        lambda d: d["rules"][-1].update(tier=None, service="FCPW"), "rule 18:", "last rule must be the catch-all"
    )


def test_catch_all_before_other_rules():
    _expect_error(
        lambda d: d["rules"].insert(5, {"id": "early", "description": "x", "when": {}, "tier": 3}),
        "never reached",
        "rule early before it matches everything",
    )


def test_duplicate_need():
    _expect_error(lambda d: d["needs"].append({"code": "housing", "label": "Again"}), "duplicate need 'housing'")


def test_urgencies_cannot_be_changed():
    _expect_error(lambda d: d.update(urgencies=["urgent", "routine"]), "urgencies must be exactly")


def test_tier_1_needs_an_outcome():
    _expect_error(lambda d: _rule(d, "2").pop("outcome"), "rule 2:", "tier 1 needs an outcome")


def test_unknown_outcome():
    _expect_error(lambda d: _rule(d, "1").update(outcome="hang_up"), "rule 1:", "outcome")


def test_service_rows_are_tier_2():
    _expect_error(lambda d: _rule(d, "16").update(tier=3), "rule 16:", "tier 2 referral")


def test_tier_3_takes_no_outcome():
    _expect_error(lambda d: _rule(d, "18").update(outcome="divert_999"), "rule 18:", "tier 3 is a review")


def test_rule_needs_a_result():
    _expect_error(lambda d: _rule(d, "17").pop("service"), "rule 17:", "needs a result")


@pytest.mark.parametrize(
    "window, fragment",
    [
        ({"from": "08:00", "to": 1200}, "in quotes"),
        ({"from": "8am", "to": "20:00"}, "bad time '8am'"),
        ({"from": "08:00", "to": "08:00"}, "from and to are the same"),
        ({"from": "08:00"}, "local_time"),
    ],
)
def test_bad_local_time(window, fragment):
    _expect_error(lambda d: _rule(d, "5")["when"].update(local_time=window), "rule 5:", fragment)


def test_contradictory_service_conditions():
    _expect_error(lambda d: _rule(d, "9")["when"].update(service_closed="SG"), "rule 9:", "both open and closed")


def test_rule_without_id_is_named_by_position():
    _expect_error(lambda d: d["rules"][0].pop("id"), "rule #1:", "id")


@pytest.mark.parametrize("data", [None, [], "rules"])
def test_not_a_mapping(data):
    with pytest.raises(RoutingError, match=f"^{SOURCE}: expected a mapping"):
        load_routing(data, DIRECTORY, source=SOURCE)


def test_missing_file_names_the_path():
    with pytest.raises(RoutingError, match="no-such-routing.yaml: cannot read"):
        load_routing_file(ROOT / "workflows" / "no-such-routing.yaml", DIRECTORY)


def test_single_values_and_numeric_ids_are_accepted():
    data = copy.deepcopy(RAW)
    _rule(data, "16").update(id=16, when={"need": "housing", "urgency": ["urgent", "same_day", "routine"]})
    table = load_routing(data, DIRECTORY, source=SOURCE)
    assert table.decide("housing", "routine", london(WEDNESDAY, 12)).rule == "16"


# --- out-of-hours alternatives (workflows/routing.yaml, out_of_hours) ------------------------------------

THURSDAY = date(2026, 12, 3)


def test_row_15_offers_oohv_while_ilt_is_closed_at_night_for_urgent_and_same_day():
    for urgency in ("urgent", "same_day"):
        decision = decide("long_term_condition", urgency, london(THURSDAY, 22))
        # The recommendation itself is unchanged: ILT, closed, opening at 08:00.
        assert (decision.tier, decision.service, decision.rule) == (2, "ILT", "15")
        assert decision.next_open == london(date(2026, 12, 4), 8).astimezone(UTC)
        assert decision.out_of_hours == Alternative(service="OOHV", open_now=True)
        data = json.loads(json.dumps(decision.to_dict()))
        assert data["out_of_hours"] == {"service": "OOHV", "open_now": True}
        assert "OOHV" not in decision.reason


def test_a_routine_call_waits_for_ilt_without_an_alternative():
    decision = decide("long_term_condition", "routine", london(THURSDAY, 22))
    assert decision.service == "ILT" and decision.next_open is not None
    assert decision.out_of_hours is None
    assert "out_of_hours" not in decision.to_dict()


@pytest.mark.parametrize("at", [
    london(THURSDAY, 12),  # ILT open: nothing to offer instead
    london(THURSDAY, 18, 30),  # ILT closed, OOHV not yet open
    london(date(2026, 12, 5), 12),  # Saturday midday: both closed
])
def test_no_alternative_while_ilt_is_open_or_when_oohv_is_closed_too(at):
    decision = decide("long_term_condition", "urgent", at)
    assert decision.service == "ILT"
    assert decision.out_of_hours is None
    assert "out_of_hours" not in decision.to_dict()


def test_rows_without_the_key_offer_nothing_even_when_closed():
    decision = decide("social_care_assessment", "routine", london(SATURDAY, 12))
    assert decision.next_open is not None and decision.out_of_hours is None


def test_an_alternative_without_urgency_applies_to_every_level_the_rule_takes():
    data = copy.deepcopy(RAW)
    _rule(data, "15")["out_of_hours"] = {"service": "OOHV"}
    table = load_routing(data, DIRECTORY, source=SOURCE)
    decision = table.decide("long_term_condition", "routine", london(THURSDAY, 22).astimezone(UTC), IN_AREA)
    assert decision.out_of_hours == Alternative(service="OOHV", open_now=True)


def test_single_urgency_is_accepted_and_the_rule_keeps_its_alternative():
    data = copy.deepcopy(RAW)
    _rule(data, "15")["out_of_hours"] = {"service": "OOHV", "urgency": "urgent"}
    table = load_routing(data, DIRECTORY, source=SOURCE)
    assert next(r for r in table.rules if r.id == "15").out_of_hours == OutOfHours("OOHV", ("urgent",))
    at = london(THURSDAY, 22).astimezone(UTC)
    assert table.decide("long_term_condition", "urgent", at, IN_AREA).out_of_hours is not None
    assert table.decide("long_term_condition", "same_day", at, IN_AREA).out_of_hours is None


def test_an_alternative_that_needs_a_locality_is_not_offered_without_one():
    data = copy.deepcopy(RAW)
    _rule(data, "16")["out_of_hours"] = {"service": "ILT"}  # housing (LB): ILT needs the locality
    table = load_routing(data, DIRECTORY, source=SOURCE)
    saturday_noon = london(SATURDAY, 12).astimezone(UTC)
    tuesday_evening = london(date(2026, 6, 2), 17, 30).astimezone(UTC)  # LB closed, ILT open
    assert table.decide("housing", "routine", saturday_noon, IN_AREA).out_of_hours is None  # ILT closed too
    assert table.decide("housing", "routine", tuesday_evening, IN_AREA).out_of_hours == Alternative("ILT", True)
    assert table.decide("housing", "routine", tuesday_evening, None).out_of_hours is None


@pytest.mark.parametrize(
    "out_of_hours, fragments",
    [
        ({"service": "OOHVX"}, ("out_of_hours: unknown service code 'OOHVX'",)),
        ({"service": "ILT"}, ("out_of_hours: the alternative must be another service than ILT",)),
        ({"service": "OOHV", "urgency": ["soon"]}, ("out_of_hours: unknown urgency 'soon'",)),
        ({"service": "OOHV", "urgency": ["emergency"]}, ("urgency 'emergency' never reaches this rule",)),
        ({"service": "OOHV", "urgency": []}, ("out_of_hours:", "urgency")),
        ({"service": "OOHV", "when": "night"}, ("out_of_hours:", "when: unknown key")),
        ({}, ("out_of_hours:", "service")),
        ("OOHV", ("out_of_hours",)),
    ],
)
def test_bad_out_of_hours_is_refused_on_load(out_of_hours, fragments):
    _expect_error(lambda d: _rule(d, "15").update(out_of_hours=out_of_hours), "rule 15:", *fragments)


@pytest.mark.parametrize("rule_id", ["1", "2", "18"])
def test_out_of_hours_is_for_service_rules_only(rule_id):
    _expect_error(lambda d: _rule(d, rule_id).update(out_of_hours={"service": "OOHV"}),
                  f"rule {rule_id}:", "out_of_hours is for a tier 2 rule")


@PROPERTY
@given(st.one_of(st.just("long_term_condition"), NEEDS), st.sampled_from(URGENCIES), INSTANTS, POSTCODES)
def test_an_offered_alternative_is_open_differs_and_only_stands_in_for_a_closed_service(need, urgency, at, postcode):
    decision = TABLE.decide(need, urgency, at, postcode)
    rule = next(r for r in TABLE.rules if r.id == decision.rule)
    alternative = decision.out_of_hours
    if alternative is None:
        # Nothing is withheld: the service is open, the rule has none for this urgency, or it is closed too.
        if decision.next_open is not None and rule.out_of_hours and rule.out_of_hours.applies_to(urgency):
            assert not DIRECTORY.services[rule.out_of_hours.service].calendar.is_open(at)
        return
    assert decision.tier == 2 and decision.next_open is not None
    assert not DIRECTORY.services[decision.service].calendar.is_open(at)
    assert alternative.service != decision.service and alternative.open_now
    assert DIRECTORY.services[alternative.service].calendar.is_open(at)
    assert rule.out_of_hours is not None and alternative.service == rule.out_of_hours.service
    assert rule.out_of_hours.applies_to(urgency)
