"""Every time staff read in words says " BST" or " GMT" when its wall time happens twice (01:00-01:59 on the last
Sunday of October) and nothing more otherwise: the one rule is domain/date_parts.london_clock (docs/domain.md,
"Time"); here the words built around it, each at a fixed instant. On 25 October 2026 the clocks go back at
02:00 BST: 00:30 UTC is 01:30 BST, 01:30 UTC is 01:30 GMT."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from ipoa.domain.calendar import WeeklyCalendar, Window
from ipoa.domain.directory import load_directory_file
from ipoa.domain.guards import out_of_hours_reason
from ipoa.domain.routing import load_routing_file
from ipoa.service import dashboard, rota_warnings, shift_handover
from ipoa.service.call_status import Change
from ipoa.service.timers import RunningClock
from ipoa.web.live_pages import describe_change
from ipoa.web.referral_view import local_deadline
from ipoa.web.views import local_time

ROOT = Path(__file__).resolve().parents[2]
BST_0130 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
GMT_0130 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 10, 24, 11, 0, tzinfo=UTC)  # 12:00 BST, the day before


def test_the_pages_time_filter_says_which_reading_wherever_the_time_is():
    assert local_time(BST_0130) == "Sun 25 Oct 2026 01:30 BST"
    assert local_time(GMT_0130.isoformat(), "%d %b %H:%M:%S") == "25 Oct 01:30:00 GMT"
    assert local_time(GMT_0130, "%H:%M") == "01:30 GMT"
    assert local_time(GMT_0130, "%a") == "Sun"  # a date alone: nothing added
    assert local_time(GMT_0130 + timedelta(minutes=30), "%H:%M") == "02:00"
    assert local_time(datetime(2026, 12, 3, 14, 30, tzinfo=UTC)) == "Thu 03 Dec 2026 14:30"
    assert local_time(None) == ""


def test_the_call_page_clock_due_time_says_which_reading():
    clock = RunningClock("callback", "K7M4-QX9Z", None, GMT_0130, "promised", False)
    assert clock.as_json(SATURDAY_NOON)["due_local"] == "Sun 25 Oct 01:30 GMT"
    assert replace(clock, due_at=BST_0130).as_json(SATURDAY_NOON)["due_local"] == "Sun 25 Oct 01:30 BST"
    assert replace(clock, due_at=SATURDAY_NOON).as_json(SATURDAY_NOON)["due_local"] == "Sat 24 Oct 12:00"


def test_the_call_page_change_notice_says_which_reading():
    change = Change("call", None, "sla_breach", "triage", "triage", "system:sla", GMT_0130)
    assert describe_change(change) == "the call's SLA clock ran out at 01:30 GMT"
    assert describe_change(replace(change, at=BST_0130)) == "the call's SLA clock ran out at 01:30 BST"
    assert describe_change(replace(change, at=SATURDAY_NOON)) == "the call's SLA clock ran out at 12:00"


def test_a_hand_over_re_send_says_which_reading():
    nurse = SimpleNamespace(name="Night Nurse")
    assert shift_handover.resent_words(GMT_0130, "on_duty", [nurse]) == (
        "re-sent at the 01:30 GMT hand-over to Night Nurse (on duty)")
    assert shift_handover.resent_words(datetime(2026, 10, 24, 19, 0, tzinfo=UTC), "on_duty", [nurse]) == (
        "re-sent at the 20:00 hand-over to Night Nurse (on duty)")


def test_the_referral_page_deadline_says_which_reading():
    assert local_deadline(BST_0130, GMT_0130) == "01:30 BST today"
    assert local_deadline(GMT_0130, SATURDAY_NOON) == "01:30 GMT tomorrow"
    assert local_deadline(GMT_0130, datetime(2026, 10, 20, 12, 0, tzinfo=UTC)) == "01:30 GMT on Sun 25 Oct"
    assert local_deadline(GMT_0130 + timedelta(hours=1), SATURDAY_NOON) == "02:30 tomorrow"


def test_the_dashboards_rota_gaps_and_next_shift_say_which_reading():
    window = (SATURDAY_NOON, SATURDAY_NOON + timedelta(hours=24))
    # Nobody from the first 01:30 (BST) to the second (GMT): an hour of real time between two "01:30"s.
    assert dashboard.gap_words(BST_0130, GMT_0130, *window) == "01:30 BST–01:30 GMT tomorrow (1 hour)"
    # A night gap from the evening before, ending in the repeated hour.
    assert dashboard.gap_words(datetime(2026, 10, 24, 19, 0, tzinfo=UTC), GMT_0130, *window) == (
        "20:00–01:30 GMT tonight (6 hours 30 minutes)")
    assert dashboard.gap_words(GMT_0130, window[1], *window) == (
        "from 01:30 GMT tomorrow for the rest of the next 24 hours (9 hours 30 minutes)")
    assert dashboard.gap_words(window[0], BST_0130, *window) == (
        "from now until 01:30 BST tomorrow (13 hours 30 minutes)")
    # Outside the repeated hour, as ever.
    assert dashboard.gap_words(datetime(2026, 10, 24, 19, 0, tzinfo=UTC), datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
                               *window) == "20:00–08:00 tonight (13 hours)"
    assert dashboard._at_words(GMT_0130, date(2026, 10, 24)) == "01:30 GMT tomorrow"
    assert dashboard._at_words(BST_0130, date(2026, 10, 25)) == "01:30 BST today"


def test_a_rota_changes_gap_warning_says_which_reading():
    assert rota_warnings.gap_words(BST_0130, GMT_0130) == "Sun 25 Oct 01:30 BST to Sun 25 Oct 01:30 GMT, 1 hour"


def test_out_of_hours_reasons_say_which_reading():
    rec = SimpleNamespace(service="SCA", next_open=GMT_0130, out_of_hours=SimpleNamespace(service="EDT"))
    assert out_of_hours_reason(rec) == ("SCA closed now (opens Sun 25 Oct 01:30 GMT): the routing table's "
                                        "out-of-hours alternative, EDT")


def test_the_routing_reason_says_which_reading_of_an_opening_in_the_repeated_hour(monkeypatch):
    directory = load_directory_file(ROOT / "workflows" / "directory.yaml")
    table = load_routing_file(ROOT / "workflows" / "routing.yaml", directory)
    # Social care assessment opening on Sundays at 01:30: the first 01:30, BST (calendar.wall_instant).
    sunday_night = WeeklyCalendar([Window(frozenset({6}), time(1, 30), time(5, 0))])
    monkeypatch.setitem(directory.services, "SCA", replace(directory.services["SCA"], calendar=sunday_night))
    decision = table.decide("social_care_assessment", "routine", SATURDAY_NOON, "LE11 3AB")
    assert decision.service == "SCA" and decision.next_open == BST_0130
    assert "closed now, opens Sun 25 Oct 01:30 BST" in decision.reason


@pytest.mark.parametrize("at", [datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
                                datetime(2026, 10, 24, 23, 59, tzinfo=UTC)])
def test_times_either_side_of_the_repeated_hour_and_after_the_spring_gap_add_nothing(at):
    assert not local_time(at).endswith(("BST", "GMT"))
    assert not local_deadline(at, at).split(" today")[0].endswith(("BST", "GMT"))
    words = rota_warnings.gap_words(at, at + timedelta(hours=3))  # its end, too, happens once
    assert "BST" not in words and "GMT" not in words


def test_the_access_report_says_which_reading():
    from ipoa.cli_governance import _local  # `flask --app ipoa access report REF`: its When column

    assert _local(GMT_0130) == "2026-10-25 01:30:00 GMT"
    assert _local(BST_0130) == "2026-10-25 01:30:00 BST"
    assert _local(SATURDAY_NOON) == "2026-10-24 12:00:00"
