"""Reports: per-period measures computed from a known day of calls, referrals, clocks and texts, the
page with its charts, the CSV export, the board view's verdicts, input checks and who may see them."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest

from ipoa.domain.reporting.board import board_row
from ipoa.domain.reporting.figures import percentile
from ipoa.domain.reporting.period import Period, Scope
from ipoa.domain.sms.delivery import SmsMessage
from ipoa.domain.sms.recipients import Recipient
from ipoa.service import calls as call_service
from ipoa.service import report_export
from ipoa.service import reports as report_service
from ipoa.service import timers as timer_service
from tests.conftest import PASSWORD, call_payload
from tests.helpers.clocks import timer_id
from tests.helpers.web import actor_for, load, service_fires, signed_in, tables, text

NOV = 11


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """An instant on a November 2026 day (GMT: London time is UTC)."""
    return datetime(2026, NOV, day, hh, mm, tzinfo=UTC)


# -- seeding, through the service layer ----------------------------------------------------------

def log(svc, clock, when, centre="CNH", **overrides) -> str:
    clock.set(when)
    payload = {"need": "urgent_community_health", "urgency": "urgent", **overrides}
    return call_service.log_call(svc, actor_for(centre), call_payload(centre=centre, **payload),
                                 allow_duplicate=True).ref


def call_event(svc, clock, when, ref, trigger, **payload) -> None:
    clock.set(when)
    call = load(svc, ref)
    call_service.fire_call_trigger(svc, actor_for(call.centre), ref,
                                   {"trigger": trigger, "expected_version": call.version, **payload})


def refer(svc, clock, when, ref, service) -> str:
    call_event(svc, clock, when, ref, "refer", data={"service": service})
    return load(svc, ref).referrals[-1].id


def referral_event(svc, clock, when, ref, rid, trigger, reason=None) -> None:
    clock.set(when)
    call = load(svc, ref)
    body = {"trigger": trigger, "expected_version": call.referral(rid).version}
    if reason is not None:
        body["reason"] = reason
    service_fires(svc, ref, rid, body)  # accept, decline, start, complete: the receiving service's


def fire_timer(svc, clock, when, ref, kind, rid=None) -> None:
    tid = timer_id(svc, ref, kind, rid)
    clock.set(when)
    assert timer_service.fire(svc, tid) == "breached"


def text_message(svc, ref, rid, created, status) -> None:
    m = SmsMessage(call_ref=ref, referral_id=rid, recipient=Recipient("on_duty", "+447700900001"),
                   template="referral_sent", body=f"IPOA {ref}: new referral", created_at=created)
    m.status = status
    with svc.uow() as uow:
        uow.session.add(m)
        uow.commit()


@pytest.fixture
def scene(svc, clock):
    """Two days of calls at CNH and ASC (times are London = UTC in November):

    23 Nov  A  CNH 10:00 logged, 10:05 triage, 10:10 referred CRT (RA): accepted 10:20, started 11:20
            B  CNH 10:30 logged and in triage, triage clock breached 10:46, 10:50 referred CRT (RB):
               acceptance breached 11:21, accepted 11:30, response breached 13:31, completed 14:00
            C  CNH 12:00 information and advice, 12:02 resolved at first contact
            D  CNH 12:30 logged, 12:35 referred CRT (RD), declined 12:45 "No capacity", cancelled 12:50
            E  CNH 13:00 logged, 13:05 transferred to ASC, never triaged (ASC's clock ran out 13:20)
            F  ASC 13:10 logged, 13:15 referred CRS (RF), declined 13:20 "  no   CAPACITY "
    24 Nov  H  CNH 09:00 information and advice, 09:03 resolved
            J  CNH 10:00 logged, 10:06 referred CRT (RJ): accepted 10:10, started 10:30
    Texts: on A/RA (23rd) delivered x2, failed, pending, sent; on F/RF (23rd) delivered, undelivered;
    on J/RJ (24th) failed. The report is run on 25 Nov.
    """
    ref = {}
    ref["A"] = log(svc, clock, at(23, 10))
    call_event(svc, clock, at(23, 10, 5), ref["A"], "start_triage")
    ra = refer(svc, clock, at(23, 10, 10), ref["A"], "CRT")
    referral_event(svc, clock, at(23, 10, 20), ref["A"], ra, "accept")

    ref["B"] = log(svc, clock, at(23, 10, 30))
    call_event(svc, clock, at(23, 10, 30), ref["B"], "start_triage")
    fire_timer(svc, clock, at(23, 10, 46), ref["B"], "triage")
    rb = refer(svc, clock, at(23, 10, 50), ref["B"], "CRT")
    referral_event(svc, clock, at(23, 11, 20), ref["A"], ra, "start")
    fire_timer(svc, clock, at(23, 11, 21), ref["B"], "acceptance", rb)
    referral_event(svc, clock, at(23, 11, 30), ref["B"], rb, "accept")

    ref["C"] = log(svc, clock, at(23, 12), need="information_advice")
    call_event(svc, clock, at(23, 12), ref["C"], "start_triage")
    call_event(svc, clock, at(23, 12, 2), ref["C"], "resolve")

    ref["D"] = log(svc, clock, at(23, 12, 30))
    call_event(svc, clock, at(23, 12, 30), ref["D"], "start_triage")
    rd = refer(svc, clock, at(23, 12, 35), ref["D"], "CRT")
    referral_event(svc, clock, at(23, 12, 45), ref["D"], rd, "decline", reason="No capacity")
    call_event(svc, clock, at(23, 12, 50), ref["D"], "cancel", reason="Went to A&E")

    ref["E"] = log(svc, clock, at(23, 13))
    call_event(svc, clock, at(23, 13, 5), ref["E"], "transfer", data={"centre": "ASC"},
               reason="Social care need")

    ref["F"] = log(svc, clock, at(23, 13, 10), centre="ASC", need="social_care_crisis")
    call_event(svc, clock, at(23, 13, 10), ref["F"], "start_triage")
    rf = refer(svc, clock, at(23, 13, 15), ref["F"], "CRS")
    referral_event(svc, clock, at(23, 13, 20), ref["F"], rf, "decline", reason="  no   CAPACITY ")

    fire_timer(svc, clock, at(23, 13, 31), ref["B"], "response", rb)
    referral_event(svc, clock, at(23, 14), ref["B"], rb, "complete")

    ref["H"] = log(svc, clock, at(24, 9), need="information_advice")
    call_event(svc, clock, at(24, 9), ref["H"], "start_triage")
    call_event(svc, clock, at(24, 9, 3), ref["H"], "resolve")

    ref["J"] = log(svc, clock, at(24, 10))
    call_event(svc, clock, at(24, 10), ref["J"], "start_triage")
    rj = refer(svc, clock, at(24, 10, 6), ref["J"], "CRT")
    referral_event(svc, clock, at(24, 10, 10), ref["J"], rj, "accept")
    referral_event(svc, clock, at(24, 10, 30), ref["J"], rj, "start")

    for minute, status in enumerate(("delivered", "delivered", "failed", "pending", "sent")):
        text_message(svc, ref["A"], ra, at(23, 10, 10 + minute), status)
    text_message(svc, ref["F"], rf, at(23, 13, 15), "delivered")
    text_message(svc, ref["F"], rf, at(23, 13, 16), "undelivered")
    text_message(svc, ref["J"], rj, at(24, 10, 6), "failed")

    clock.set(at(25, 10))
    return ref


TWO_DAYS = Period(date(2026, NOV, 23), date(2026, NOV, 24))


def minutes(v):
    return None if v is None else v / 60


# -- the measures ---------------------------------------------------------------------------------

def test_measures_for_every_centre_and_service(svc, scene):
    r = report_service.build_report(svc, TWO_DAYS, Scope())
    assert r.calls_logged == 8
    assert (r.resolved.hits, r.resolved.total) == (2, 8) and r.resolved.pct == 25.0
    assert (r.referred.hits, r.referred.total) == (5, 8) and r.referred.pct == 62.5
    assert r.transfers == 1 and r.transfers_in is None
    # Logged -> first routing decision: C 2, H 3, D 5, F 5, J 6, A 10, B 20 minutes (E undecided).
    assert [minutes(v) for v in r.time_to_triage.values] == [2, 3, 5, 5, 6, 10, 20]
    assert minutes(r.time_to_triage.median) == 5 and minutes(r.time_to_triage.p90) == 20
    # B decided late (its clock breached), E's clock at ASC ran out undecided: 6 of 8 within.
    assert (r.triage_in_sla.hits, r.triage_in_sla.total) == (6, 8)
    assert r.referrals_sent == 5
    # Sent -> accepted: RJ 4, RA 10, RB 40 minutes.
    assert [minutes(v) for v in r.time_to_acceptance.values] == [4, 10, 40]
    assert minutes(r.time_to_acceptance.median) == 10 and minutes(r.time_to_acceptance.p90) == 40
    # RB breached its acceptance clock; RD and RF were declined before theirs ran out (not judged).
    assert (r.accepted_in_sla.hits, r.accepted_in_sla.total) == (2, 3)
    assert r.declined == 2 and r.declined_by_service == [("CRS", 1), ("CRT", 1)]
    assert (r.responded_in_target.hits, r.responded_in_target.total) == (2, 3)
    assert (r.sms_recorded, r.sms_sent, r.sms_delivered, r.sms_failed) == (8, 7, 3, 3)
    d23, d24 = r.days
    assert (d23.day, d23.calls_logged, d23.resolved, d23.referred, d23.transfers, d23.referrals_sent,
            d23.accepted_in_sla, d23.acceptance_judged, d23.declined, d23.sms_sent, d23.sms_delivered,
            d23.sms_failed) == (date(2026, NOV, 23), 6, 1, 4, 1, 4, 1, 2, 2, 6, 3, 2)
    assert (d24.calls_logged, d24.resolved, d24.referred, d24.referrals_sent, d24.accepted_in_sla,
            d24.acceptance_judged, d24.sms_sent, d24.sms_failed) == (2, 1, 1, 1, 1, 1, 1, 1)
    assert r.acceptance_bands()[:3] == [("under 15 min", 2), ("15-30 min", 0), ("30-60 min", 1)]


def test_measures_for_one_centre(svc, scene):
    cnh = report_service.build_report(svc, TWO_DAYS, Scope(centre="CNH"))
    assert cnh.calls_logged == 7 and cnh.resolved.hits == 2 and cnh.referred.hits == 4
    assert (cnh.transfers_out, cnh.transfers_in, cnh.transfers) == (1, 0, 1)
    assert (cnh.triage_in_sla.hits, cnh.triage_in_sla.total) == (5, 7)
    assert cnh.referrals_sent == 4 and cnh.declined_by_service == [("CRT", 1)]
    assert (cnh.sms_recorded, cnh.sms_sent, cnh.sms_delivered, cnh.sms_failed) == (6, 5, 2, 2)
    asc = report_service.build_report(svc, TWO_DAYS, Scope(centre="ASC"))
    assert asc.calls_logged == 1 and (asc.transfers_out, asc.transfers_in) == (0, 1)
    assert (asc.triage_in_sla.hits, asc.triage_in_sla.total) == (1, 1)  # E counts against CNH, which logged it
    assert asc.referrals_sent == 1 and asc.declined_by_service == [("CRS", 1)]
    assert (asc.sms_sent, asc.sms_delivered, asc.sms_failed) == (2, 1, 1)


def test_measures_for_one_service_leave_out_the_call_measures(svc, scene):
    crt = report_service.build_report(svc, TWO_DAYS, Scope(service="CRT"))
    assert crt.calls_logged is None and crt.resolved is None and crt.time_to_triage is None
    assert crt.referrals_sent == 4 and crt.declined == 1
    assert (crt.accepted_in_sla.hits, crt.accepted_in_sla.total) == (2, 3)
    assert (crt.sms_sent, crt.sms_delivered, crt.sms_failed) == (5, 2, 2)
    both = report_service.build_report(svc, TWO_DAYS, Scope(centre="ASC", service="CRS"))
    assert both.referrals_sent == 1 and both.declined == 1 and both.time_to_acceptance.count == 0


def test_a_one_day_period_leaves_out_the_next_day(svc, scene):
    r = report_service.build_report(svc, Period(date(2026, NOV, 23), date(2026, NOV, 23)), Scope())
    assert r.calls_logged == 6 and r.referrals_sent == 4 and len(r.days) == 1
    assert r.period.previous() == Period(date(2026, NOV, 22), date(2026, NOV, 22))


def test_an_overdue_unaccepted_referral_counts_as_outside_sla_before_its_timer_fires(svc, clock):
    ref = log(svc, clock, at(23, 10))
    call_event(svc, clock, at(23, 10), ref, "start_triage")
    refer(svc, clock, at(23, 10, 1), ref, "CRT")  # acceptance due 10:31
    clock.set(at(23, 10, 20))
    day = Period(date(2026, NOV, 23), date(2026, NOV, 23))
    assert report_service.build_report(svc, day, Scope()).accepted_in_sla.total == 0  # still in time
    clock.set(at(23, 10, 40))
    r = report_service.build_report(svc, day, Scope())
    assert (r.accepted_in_sla.hits, r.accepted_in_sla.total) == (0, 1)


def test_london_days_across_the_clock_change(svc, clock):
    """In summer a London day starts at 23:00 UTC the evening before."""
    log(svc, clock, datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 00:30 BST on 1 July
    clock.set(datetime(2026, 7, 2, 12, tzinfo=UTC))
    june = report_service.build_report(svc, Period(date(2026, 6, 1), date(2026, 6, 30)), Scope())
    july = report_service.build_report(svc, Period(date(2026, 7, 1), date(2026, 7, 1)), Scope())
    assert (june.calls_logged, july.calls_logged) == (0, 1)


def test_percentile_is_nearest_rank():
    assert percentile([], 90) is None
    assert percentile([5], 90) == 5
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 12)), 90) == 10


# -- the board's verdicts -------------------------------------------------------------------------

@pytest.mark.parametrize("current,previous,rag,trend,verdict", [
    (97.0, 96.5, "green", "no change", "On track to achieve target"),
    (97.0, 90.0, "green", "improving", "On track to achieve target"),
    (95.5, 99.0, "green", "deteriorating", "Achieving target but performance deteriorating"),
    (92.0, 85.0, "amber", "improving", "Performance improving but below target"),
    (80.0, 80.5, "red", "no change", "No improvement in performance"),
    (80.0, 90.0, "red", "deteriorating", "Performance deteriorating"),
    (80.0, None, "red", "no data", "Below target; no previous period to compare"),
    (None, 90.0, "none", "no data", "No data for this period"),
])
def test_board_row_verdicts(current, previous, rag, trend, verdict):
    row = board_row("Accepted", 95.0, current, previous, higher_is_better=True, unit="pct")
    assert (row.rag, row.trend, row.verdict) == (rag, trend, verdict)
    assert row.rag_text.split(":")[0].lower() in (rag, "grey")  # the rating in words, not colour alone


def test_board_row_for_a_time_lower_is_better():
    row = board_row("p90", 30.0, 20.0, 40.0, higher_is_better=False, unit="time")
    assert (row.rag, row.trend, row.verdict, row.target_text) == (
        "green", "improving", "On track to achieve target", "≤ 30 min")
    row = board_row("p90", 30.0, 50.0, 40.0, higher_is_better=False, unit="time")
    assert (row.rag, row.trend, row.verdict) == ("red", "deteriorating", "Performance deteriorating")
    assert board_row("p90", 30.0, 40.0, None, higher_is_better=False, unit="time").rag == "amber"


def test_board_compares_with_the_previous_period(svc, scene):
    day24 = Period(date(2026, NOV, 24), date(2026, NOV, 24))
    rows = {r.metric: r for r in report_service.board_view(svc, day24, Scope())[2]}
    triage = rows["Calls triaged within SLA"]
    assert (triage.current_text, triage.previous_text, triage.rag, triage.trend, triage.verdict) == (
        "100.0%", "66.6%", "green", "improving", "On track to achieve target")
    p90 = rows["Time to acceptance, 90th percentile"]
    assert (p90.current_text, p90.previous_text, p90.verdict) == ("4 min", "40 min", "On track to achieve target")
    texts = rows["Texts delivered"]
    assert (texts.current_text, texts.previous_text, texts.rag, texts.verdict) == (
        "0.0%", "60.0%", "red", "Performance deteriorating")


# -- the pages ------------------------------------------------------------------------------------

QUERY = "from=2026-11-23&to=2026-11-24"


def test_report_page_shows_the_measures_the_charts_and_the_days(client, users, svc, scene):
    signed_in(client, "supervisor")
    resp = client.get(f"/reports/?{QUERY}")
    assert resp.status_code == 200
    page = text(resp)
    measures, _phone, reasons, _by_basis, days = tables(page)
    rows = {row[0]: row[1:] for row in measures[1:]}
    assert rows["Calls logged"] == ["8", ""]
    assert rows["Resolved at first contact (tier 1) %"] == ["25.0", "2 of 8"]
    assert rows["Referred %"] == ["62.5", "5 of 8"]
    assert rows["Time to triage median (min)"][0] == "5.0"
    assert rows["Time to acceptance 90th percentile (min)"][0] == "40.0"
    assert rows["Accepted within SLA %"] == ["66.7", "2 of 3"]
    assert rows["Responded within target %"] == ["66.7", "2 of 3"]
    assert rows["Texts sent"] == ["7", "8 recorded"] and rows["Texts failed"][0] == "3"
    assert reasons[1:] == [["CRS – Integrated health and social care Crisis Response", "1"],
                           ["CRT – Clinical Response Team", "1"]]
    assert [row[0] for row in days[1:]] == ["Mon 23 Nov 2026", "Tue 24 Nov 2026"]
    svgs = re.findall(r"<svg\b.*?</svg>", page, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert "Calls logged per day" in svgs[0] and "% of referrals accepted within SLA" in svgs[1]
    assert "Target 95%" in svgs[1]
    # The form keeps the choices; the other views carry the same period.
    assert boxes(page, "from") == ("23", "11", "2026") and boxes(page, "to") == ("24", "11", "2026")
    assert f'href="/reports/board?{QUERY}"' in page and f'href="/reports/export.csv?{QUERY}"' in page


def boxes(page: str, name: str) -> tuple[str, ...]:
    """What a date input's day, month and year boxes hold."""
    return tuple(re.search(rf'id="{name}-{part}" name="{name}-{part}" type="text"[^>]*? value="([^"]*)"', page)[1]
                 for part in ("day", "month", "year"))


def test_report_page_defaults_to_the_last_30_days_with_today(client, users, svc, clock):
    signed_in(client, "admin")
    page = text(client.get("/reports/"))  # the test clock: Monday 23 November 2026
    assert boxes(page, "from") == ("25", "10", "2026") and boxes(page, "to") == ("23", "11", "2026")
    assert "25 Oct 2026 to 23 Nov 2026" in page
    assert 'type="date"' not in page  # never the browser's picker, whose order follows its locale


def test_the_form_s_day_month_and_year_boxes_make_the_period(client, users, svc, scene):
    signed_in(client, "supervisor")
    typed = "from-day=5&from-month=11&from-year=2026&to-day=24&to-month=11&to-year=2026&centre=CNH&service="
    page = text(client.get(f"/reports/?{typed}"))
    assert "5 Nov 2026 to 24 Nov 2026 · centre CNH" in page
    assert boxes(page, "from") == ("5", "11", "2026") and boxes(page, "to") == ("24", "11", "2026")
    # The other views and the CSV carry the period as YYYY-MM-DD, which every view reads.
    query = "from=2026-11-05&to=2026-11-24&centre=CNH"
    assert f'href="/reports/board?{query}"' in page and f'href="/reports/export.csv?{query}"' in page
    resp = client.get("/reports/export.csv?from=2026-11-05&to=2026-11-24&centre=CNH")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="ipoa-report-2026-11-05-to-2026-11-24-CNH.csv"'
    # The CSV answers the form's boxes as well, and leading zeros change nothing.
    resp = client.get("/reports/export.csv?from-day=05&from-month=11&from-year=2026&to-day=24&to-month=11&to-year=2026")
    assert resp.status_code == 200 and "2026-11-05-to-2026-11-24" in resp.headers["Content-Disposition"]


def test_a_bad_date_keeps_what_was_typed_and_marks_the_box(client, users, svc):
    signed_in(client, "supervisor")
    resp = client.get("/reports/board?from-day=5&from-month=13&from-year=2026&to-day=30&to-month=11&to-year=26")
    assert resp.status_code == 400
    page = text(resp)
    assert "<title>Error: Board report" in page
    summary = page[page.index('id="error-summary"'):page.index("<h1")]
    assert '<a href="#from-month">Enter the \'from\' date as a real date, for example 1 11 2026</a>' in summary
    assert '<a href="#to-year">Enter the \'to\' date with a year of 4 numbers, for example 30 11 2026</a>' in summary
    assert boxes(page, "from") == ("5", "13", "2026") and boxes(page, "to") == ("30", "11", "26")
    marked = re.findall(r'id="((?:from|to)-\w+)"[^>]*aria-invalid="true"', page)
    assert marked == ["from-month", "to-year"]
    assert "Download CSV" not in page
    # Switching view keeps what was typed, errors and all.
    assert 'href="/reports/?from-day=5&from-month=13&from-year=2026&to-day=30' in page


def test_report_for_a_service_says_call_measures_do_not_apply(client, users, svc, scene):
    signed_in(client, "supervisor")
    page = text(client.get(f"/reports/?{QUERY}&service=CRT"))
    rows = {row[0]: row[1:] for row in tables(page)[0][1:]}
    assert rows["Calls logged"] == ["–", "not applicable to one service"]
    assert rows["Referrals sent"][0] == "4"
    assert len(re.findall(r"<svg\b", page)) == 2  # no calls-per-day chart


@pytest.mark.browser
def test_a_date_typed_day_month_year_is_read_so_in_a_us_english_browser(live_server, page, users, svc):
    """5 / 11 / 2026 is 5 November, not 11 May, though the browser's own date order is month first."""
    us = page.context.browser.new_context(locale="en-US", viewport={"width": 1280, "height": 720})
    try:
        tab = us.new_page()
        tab.goto(f"{live_server}/login")
        tab.locator("[name=username]").fill("supervisor")
        tab.locator("[name=password]").fill(PASSWORD)
        with tab.expect_navigation():
            tab.locator("[name=password]").press("Enter")
        assert tab.evaluate("navigator.language") == "en-US"
        tab.goto(f"{live_server}/reports/")
        for name, typed in (("from", ("5", "11", "2026")), ("to", ("23", "11", "2026"))):
            for part, value in zip(("day", "month", "year"), typed, strict=True):
                tab.locator(f"#{name}-{part}").fill(value)
        with tab.expect_navigation():
            tab.get_by_role("button", name="Show report").click()
        assert tab.locator("#measures-title").inner_text().startswith("5 Nov 2026 to 23 Nov 2026")
        assert [tab.locator(f"#from-{part}").input_value() for part in ("day", "month", "year")] == ["5", "11", "2026"]
        board = tab.get_by_role("link", name="Board view").get_attribute("href")
        assert board == "/reports/board?from=2026-11-05&to=2026-11-23"
    finally:
        us.close()


def parts(day: str, month: str, year: str, name: str = "from") -> str:
    return f"{name}-day={day}&{name}-month={month}&{name}-year={year}"


@pytest.mark.parametrize("query,message", [
    ("from=2026-13-01&to=2026-11-30", "Enter the 'from' date as a real date, for example 1 11 2026"),
    ("from=2026-11-30&to=2026-11-01", "The 'to' date must be the same as or after the 'from' date"),
    ("from=2026-11-01", "Enter the 'to' date as well, for example 30 11 2026"),
    ("from=2024-01-01&to=2026-11-01", "A report covers at most 366 days: enter a 'to' date nearer the 'from' date"),
    ("from=2027-01-01&to=2027-01-31", "The 'from' date must be today or earlier"),
    ("from=1999-12-31&to=2026-01-01", "Enter a 'from' date between 1 January 2000 and 31 December 2099"),
    (parts("31", "2", "2026") + "&" + parts("1", "3", "2026", "to"),
     "Enter the 'from' date as a real date, for example 1 11 2026"),
    (parts("1", "", "2026") + "&" + parts("1", "3", "2026", "to"), "The 'from' date must include a month"),
    (parts("1", "3", "2026") + "&" + parts("", "", "", "to"), "Enter the 'to' date as well, for example 30 11 2026"),
    (parts("1", "3", "2026") + "&" + parts("1", "4", "２０２６", "to"),
     "Enter the 'to' date as a real date, for example 30 11 2026"),
    ("centre=XYZ", "Select a centre from the list"),
    ("service=<b>", "Select a service from the list"),
])
def test_bad_inputs_are_400_with_a_message(client, users, svc, query, message):
    signed_in(client, "supervisor")
    for url in ("/reports/", "/reports/board"):
        resp = client.get(f"{url}?{query}")
        assert resp.status_code == 400, url
        page = resp.get_data(as_text=True)
        assert "<B>" not in page  # escaped
        assert message in text(resp), url
        assert 'aria-invalid="true"' in page and 'role="alert"' in page
        assert "<title>Error: " in page and text(resp).count(message) == 2  # in the summary and at the field
    resp = client.get(f"/reports/export.csv?{query}")
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)


def test_csv_export(client, users, svc, scene):
    signed_in(client, "supervisor")
    resp = client.get(f"/reports/export.csv?{QUERY}&centre=CNH")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == \
        'attachment; filename="ipoa-report-2026-11-23-to-2026-11-24-CNH.csv"'
    body = resp.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1:4] == [["from", "2026-11-23"], ["to", "2026-11-24"], ["scope", "centre CNH"]]
    measures = {row[0]: row[1:] for row in rows[rows.index(["measure", "value", "detail"]) + 1:] if row}
    assert measures["Calls logged"] == ["7", ""]
    assert measures["Transfers between centres"] == ["1", "1 out, 0 in"]
    assert measures["Triaged within SLA %"] == ["71.4", "5 of 7"]
    assert measures["Time to acceptance median (min)"] == ["10.0", "3 accepted"]
    assert measures["Declined: CRT"] == ["1", "Clinical Response Team"]
    assert "No capacity" not in body  # never the free-text reason
    days = rows[rows.index(list(report_export.DAY_COLUMNS)) + 1:]
    assert days == [["2026-11-23", "5", "1", "3", "1", "3", "1", "2", "1", "4", "2", "1"],
                    ["2026-11-24", "2", "1", "1", "0", "1", "1", "1", "0", "1", "0", "1"]]
    # No patient identifiers, and no call references either.
    for needle in ("Edith", "Testperson", "9990000026", "LE11", "07911", "Jo Carer", "Fell", *scene.values()):
        assert needle not in body


def test_csv_never_starts_a_cell_with_a_formula(client, users, svc, clock):
    ref = log(svc, clock, at(23, 10))
    call_event(svc, clock, at(23, 10), ref, "start_triage")
    rid = refer(svc, clock, at(23, 10, 1), ref, "CRT")
    referral_event(svc, clock, at(23, 10, 2), ref, rid, "decline", reason="=HYPERLINK(\"http://x\")")
    clock.set(at(25, 10))
    signed_in(client, "supervisor")
    body = client.get("/reports/export.csv?from=2026-11-23&to=2026-11-23").get_data(as_text=True)
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "HYPERLINK" not in body  # a decline's free-text reason is never in the CSV
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))]


def test_board_page(client, users, svc, scene):
    signed_in(client, "supervisor")
    resp = client.get("/reports/board?from=2026-11-24&to=2026-11-24")
    assert resp.status_code == 200
    page = text(resp)
    header, *rows = tables(page)[0]
    assert header == ["Metric", "Target", "Current", "Previous", "Trend", "RAG", "Verdict"]
    by_metric = {row[0]: dict(zip(header, row)) for row in rows}
    triage = by_metric["Calls triaged within SLA"]
    assert (triage["Target"], triage["Current"], triage["Previous"], triage["RAG"], triage["Verdict"]) == (
        "≥ 95.0%", "100.0%", "66.6%", "Green: target met", "On track to achieve target")
    assert triage["Trend"] == "▲ Improving"
    texts = by_metric["Texts delivered"]
    assert (texts["RAG"], texts["Verdict"]) == ("Red: below target", "Performance deteriorating")
    assert "23 Nov 2026" in page  # the period compared with


@pytest.mark.parametrize("username", ["handler", "professional"])
def test_only_supervisors_and_admins_see_reports(client, users, svc, username):
    signed_in(client, username)
    for url in ("/reports/", "/reports/board", "/reports/export.csv", f"/reports/export.csv?{QUERY}"):
        assert client.get(url).status_code == 403, url
    assert 'href="/reports/"' not in text(client.get("/no-access"))


def test_reports_need_sign_in(client, users, svc):
    for url in ("/reports/", "/reports/board", "/reports/export.csv"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url


def test_reports_count_declines_by_service_and_never_show_the_free_text_reason(client, users, svc, clock):
    """A decline's reason is free text that can name the person (a professional's DECLINE <ref> <reason> by
    text, or the page's reason): reports carry counts and no patient identifier
    (docs/information-governance.md, section 3), so they count declines by service; the reason stays on the
    call's page for those with access."""
    reason = "Philippa Unseenworth already on our caseload, NHS 999 000 0018"
    ref = log(svc, clock, at(23, 10))
    call_event(svc, clock, at(23, 10), ref, "start_triage")
    referral_event(svc, clock, at(23, 10, 2), ref, refer(svc, clock, at(23, 10, 1), ref, "CRT"), "decline",
                   reason=reason)
    call_event(svc, clock, at(23, 10, 4), ref, "refer", data={"service": "CRS"}, reason="closer to home")
    referral_event(svc, clock, at(23, 10, 5), ref, load(svc, ref).referrals[-1].id, "decline", reason="no capacity")
    referral_event(svc, clock, at(23, 10, 8), ref, refer(svc, clock, at(23, 10, 7), ref, "CRT"), "decline",
                   reason="Out of area")
    clock.set(at(25, 10))
    day = "from=2026-11-23&to=2026-11-23"
    for username in ("admin", "supervisor"):
        token = signed_in(client, username)
        for scope in ("", "&centre=CNH", "&service=CRT"):
            page = text(client.get(f"/reports/?{day}{scope}"))
            body = client.get(f"/reports/export.csv?{day}{scope}").get_data(as_text=True)
            for needle in ("Philippa", "Unseenworth", "999 000 0018", "caseload", "no capacity", "Out of area"):
                assert needle not in page and needle not in body, (username, scope, needle)
        if username == "admin":
            client.post("/logout", data={"csrf_token": token})
    report = report_service.build_report(svc, Period(date(2026, NOV, 23), date(2026, NOV, 23)), Scope())
    assert report.declined == 3 and report.declined_by_service == [("CRT", 2), ("CRS", 1)]
    page = text(client.get(f"/reports/?{day}"))
    declined = next(t for t in tables(page) if t and t[0] == ["Service", "Referrals declined"])
    assert declined[1:] == [["CRT – Clinical Response Team", "2"],
                            ["CRS – Integrated health and social care Crisis Response", "1"]]
    rows = list(csv.reader(io.StringIO(client.get(f"/reports/export.csv?{day}").get_data(as_text=True))))
    measures = {row[0]: row[1:] for row in rows[rows.index(["measure", "value", "detail"]) + 1:] if row}
    assert measures["Declined"] == ["3", ""]
    assert measures["Declined: CRT"] == ["2", "Clinical Response Team"]
    assert measures["Declined: CRS"] == ["1", "Integrated health and social care Crisis Response"]
    # The reason is still on the call's page, for the centre's staff.
    assert reason in text(client.get(f"/calls/{ref}"))
