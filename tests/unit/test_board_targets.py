"""The board view's targets: workflows/board.yaml, checked with the rest of workflows/ (a bad file is
refused with a message naming the file and the target), and the board's rows built from them."""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from ipoa.domain.catalogue import load_catalogue
from ipoa.domain.reporting.board import BoardTargetError, BoardTargets, board, load_board_targets
from ipoa.domain.reporting.figures import Durations, Rate, Report
from ipoa.domain.reporting.period import Period, Scope
from ipoa.domain.telephony.measures import PhoneMeasures, TelephonyTargets

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
SOURCE = "workflows/board.yaml"
SHIPPED = yaml.safe_load((WORKFLOWS / "board.yaml").read_text(encoding="utf-8"))


def with_targets(**changes) -> dict:
    targets = {**SHIPPED["targets"], **changes}
    return {"targets": {k: v for k, v in targets.items() if v is not None}}


def test_the_shipped_targets_load_with_the_catalogue():
    assert load_catalogue(WORKFLOWS).board == BoardTargets(
        triage_in_sla=95.0, accepted_in_sla=95.0, acceptance_p90_minutes=30.0, responded_in_target=90.0,
        sms_delivered=98.0, telephony=TelephonyTargets(answered_within_60s=95.0, abandoned=3.0,
                                                       average_speed_to_answer_seconds=20.0,
                                                       abandoned_called_back=95.0))


def test_the_phone_targets_are_optional_and_default_to_the_domain_figures():
    """docs/domain.md, "Telephony measures": 95% within 60 s, at most 3% abandoned, 20 s average speed to
    answer; it sets no figure for the callbacks, so none is assumed."""
    without = {k: v for k, v in SHIPPED["targets"].items() if not k.startswith(("calls_", "average_", "abandoned_"))}
    assert load_board_targets({"targets": without}).telephony == TelephonyTargets(95.0, 3.0, 20.0, None)
    assert load_board_targets(with_targets(calls_abandoned=5, average_speed_to_answer_seconds=30)).telephony == (
        TelephonyTargets(95.0, 5.0, 30.0, 95.0))


def test_a_time_target_takes_the_sla_files_durations():
    assert load_board_targets(with_targets(acceptance_p90="1h30m")).acceptance_p90_minutes == 90.0
    assert load_board_targets(with_targets(accepted_in_sla=92.5)).accepted_in_sla == 92.5


@pytest.mark.parametrize("data, problem", [
    (with_targets(accepted_in_sla=101), "targets.accepted_in_sla: 101 is not a percentage above 0 and at most 100"),
    (with_targets(sms_delivered=0), "targets.sms_delivered: 0 is not a percentage"),
    (with_targets(triage_in_sla="95%"), "targets.triage_in_sla: '95%' is not a percentage"),
    (with_targets(responded_in_target=True), "targets.responded_in_target: True is not a percentage"),
    (with_targets(acceptance_p90=30), "targets.acceptance_p90: bad duration 30"),
    (with_targets(acceptance_p90="0m"), "targets.acceptance_p90: bad duration '0m': must be more than zero"),
    (with_targets(triage_in_sla=None), "targets.triage_in_sla: missing"),
    (with_targets(acepted_in_sla=95), "targets.acepted_in_sla: unknown target"),
    (with_targets(calls_abandoned=0), "targets.calls_abandoned: 0 is not a number above 0 and at most 100"),
    (with_targets(calls_answered_within_60s="95%"), "targets.calls_answered_within_60s: '95%' is not a number"),
    (with_targets(average_speed_to_answer_seconds=3601),
     "targets.average_speed_to_answer_seconds: 3601 is not a number above 0 and at most 3600"),
    ({"targets": [95, 95]}, "targets: expected a mapping"),
    ({"target": SHIPPED["targets"]}, "target: unknown section"),
    ({}, "targets: missing"),
    (None, "expected a mapping with one section, targets"),
])
def test_a_bad_target_is_refused_naming_the_file_and_the_field(data, problem):
    with pytest.raises(BoardTargetError) as info:
        load_board_targets(data, source=SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: ")
    assert problem in str(info.value)


def test_the_catalogue_refuses_a_folder_whose_board_file_is_bad_or_missing(tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, folder)
    path = folder / "board.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("sms_delivered: 98", "sms_delivered: 198"),
                    encoding="utf-8")
    with pytest.raises(BoardTargetError, match=rf"^{path}: targets.sms_delivered: 198 is not a percentage"):
        load_catalogue(folder)
    path.unlink()
    with pytest.raises(BoardTargetError, match=rf"^{path}: missing"):
        load_catalogue(folder)


_WHOLE_SCOPE = Scope()  # every centre and service


def _report(*, accepted: Rate, p90_seconds: float | None, scope: Scope = _WHOLE_SCOPE) -> Report:
    day = date(2026, 11, 24)
    values = () if p90_seconds is None else (p90_seconds,)
    return Report(period=Period(day, day), scope=scope, generated_at=datetime(2026, 11, 25, tzinfo=UTC),
                  triage_in_sla=Rate(9, 10), accepted_in_sla=accepted, time_to_acceptance=Durations(values))


def test_the_board_rates_each_measure_against_the_deployments_targets():
    current = _report(accepted=Rate(93, 100), p90_seconds=50 * 60)
    previous = _report(accepted=Rate(90, 100), p90_seconds=None)
    shipped = {r.metric: r for r in board(current, previous, load_board_targets(SHIPPED))}
    assert (shipped["Referrals accepted within SLA"].target_text, shipped["Referrals accepted within SLA"].rag) == (
        "≥ 95.0%", "amber")
    assert (shipped["Time to acceptance, 90th percentile"].target_text,
            shipped["Time to acceptance, 90th percentile"].rag) == ("≤ 30 min", "red")
    lenient = {r.metric: r for r in board(current, previous, load_board_targets(
        with_targets(accepted_in_sla=90, acceptance_p90="1h")))}
    assert (lenient["Referrals accepted within SLA"].target_text, lenient["Referrals accepted within SLA"].rag) == (
        "≥ 90.0%", "green")
    assert (lenient["Time to acceptance, 90th percentile"].target_text,
            lenient["Time to acceptance, 90th percentile"].rag) == ("≤ 1 h 00 min", "green")
    # One service: no call measures, so no triage row.
    one_service = _report(accepted=Rate(1, 1), p90_seconds=60, scope=Scope(service="CRT"))
    assert "Calls triaged within SLA" not in {r.metric for r in board(one_service, one_service,
                                                                          load_board_targets(SHIPPED))}


def _phone(**counts) -> PhoneMeasures:
    return PhoneMeasures(centre=None, **counts)


def test_the_board_rates_the_phone_lines_against_their_targets_with_the_previous_period():
    current = _report(accepted=Rate(1, 1), p90_seconds=60)
    previous = _report(accepted=Rate(1, 1), p90_seconds=60)
    current.phone = _phone(offered=100, answered=90, answered_within=88, abandoned=4, answer_wait_total=90 * 25.0,
                           to_call_back=4, called_back_in_time=4)
    previous.phone = _phone(offered=100, answered=95, answered_within=90, abandoned=2, answer_wait_total=95 * 30.0,
                            to_call_back=2, called_back_in_time=1)
    rows = {r.metric: r for r in board(current, previous, load_board_targets(SHIPPED))}
    within = rows["Phone calls answered within 60 s"]
    assert (within.current_text, within.target_text, within.rag, within.trend) == (
        "97.7%", "≥ 95.0%", "green", "improving")  # 88 of 90 (97.78%, shown rounded down) against 90 of 95
    abandoned = rows["Phone calls abandoned"]
    assert (abandoned.current_text, abandoned.target_text, abandoned.rag, abandoned.trend) == (
        "4.0%", "≤ 3.0%", "amber", "deteriorating")
    asa = rows["Average speed to answer"]
    assert (asa.current_text, asa.previous_text, asa.target_text, asa.rag, asa.trend) == (
        "25 s", "30 s", "≤ 20 s", "amber", "improving")
    back = rows["Abandoned calls called back in time"]
    assert (back.current_text, back.previous_text, back.rag) == ("100.0%", "50.0%", "green")
    untargeted = {r.metric: r for r in board(current, previous, load_board_targets(
        {"targets": {k: v for k, v in SHIPPED["targets"].items() if k != "abandoned_called_back"}}))}
    back = untargeted["Abandoned calls called back in time"]
    assert (back.target_text, back.rag, back.rag_text, back.verdict) == (
        "No target set", "none", "Grey: no target set", "Performance improving")


def test_a_report_without_phone_measures_has_no_phone_rows():
    plain = _report(accepted=Rate(1, 1), p90_seconds=60)
    assert not any(r.metric.startswith("Phone") for r in board(plain, plain, load_board_targets(SHIPPED)))
