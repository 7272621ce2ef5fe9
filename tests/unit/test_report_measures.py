"""The reports' measures as pure functions of a period's rows (no database: the rows are what
ipoa/adapters/report_queries.py returns), and the workflow states they count by read from the deployed
definitions, per version, so a renamed state is still counted."""
from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as Row

from ipoa.domain.catalogue import load_catalogue, parse_workflow
from ipoa.domain.reporting.figures import DayRow, Report
from ipoa.domain.reporting.measures import referral_measures, sms_measures
from ipoa.domain.reporting.period import Period, Scope
from ipoa.domain.reporting.workflow_terms import ReferralStates, call_triggers, referral_terms

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "workflows")
(REFERRAL_V1,) = [d for d in CATALOGUE.workflows if d.name == "referral"]
# In version 2 "accepted" is the first visit: a name may mean something else in another version.
RENAMED = {"accepted": "taken_on", "in_progress": "accepted", "completed": "done", "declined": "turned_down"}
DAY = date(2026, 11, 24)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def renamed_referral_v2():
    """Version 2 of the referral workflow with its states renamed; tags and roles kept."""
    raw = copy.deepcopy(REFERRAL_V1.raw)
    raw["version"] = 2

    def new(name: str) -> str:
        return RENAMED.get(name, name)

    raw["final"] = [new(s) for s in raw["final"]]
    for state in raw["states"]:
        state["name"] = new(state["name"])
    for t in raw["transitions"]:
        t["source"] = [new(s) for s in t["source"]]
        t["dest"] = new(t["dest"])
    return parse_workflow(raw, "referral v2 (renamed)")


def test_the_shipped_definitions_give_the_states_the_reports_counted_by():
    terms = referral_terms(CATALOGUE.workflows)
    assert terms.of("referral", 1) == ReferralStates(
        accepted=frozenset({"accepted"}), response=frozenset({"in_progress", "completed"}),
        declined=frozenset({"declined"}))
    triggers = call_triggers(CATALOGUE.workflows)
    assert triggers.refer and triggers.refer <= triggers.routing and triggers.transfer


def test_each_referral_is_read_with_its_own_versions_states():
    v2 = renamed_referral_v2()
    terms = referral_terms([*CATALOGUE.workflows, v2])
    assert terms.of("referral", 2).accepted == {"taken_on"}
    assert terms.of("referral", 2).declined == {"turned_down"}
    # A version this process has not loaded: the union over the deployed versions.
    assert terms.of("referral", 3).response == {"in_progress", "completed", "accepted", "done"}

    sent = [Row(id="r1", service="CRT", workflow="referral", workflow_version=1, sent_at=T0,
                outcome_reason=None, sharing_basis="consent_given"),
            Row(id="r2", service="CRT", workflow="referral", workflow_version=2, sent_at=T0,
                outcome_reason=None, sharing_basis="consent_given"),
            Row(id="r3", service="CRT", workflow="referral", workflow_version=2, sent_at=T0,
                outcome_reason="No capacity", sharing_basis="consent_given")]
    changes = [Row(entity_id="r1", to_state="accepted", at=T0 + timedelta(minutes=10)),
               Row(entity_id="r2", to_state="taken_on", at=T0 + timedelta(minutes=20)),
               Row(entity_id="r2", to_state="accepted", at=T0 + timedelta(minutes=50)),
               Row(entity_id="r3", to_state="turned_down", at=T0 + timedelta(minutes=5))]
    clocks = [Row(referral_id=rid, kind="acceptance", due_at=T0 + timedelta(minutes=30), outcome="stopped",
                  stopped_at=T0 + timedelta(minutes=5)) for rid in ("r1", "r2", "r3")]
    clocks.append(Row(referral_id="r2", kind="response", due_at=T0 + timedelta(hours=2), outcome="stopped",
                      stopped_at=T0 + timedelta(minutes=50)))
    report = Report(period=Period(DAY, DAY), scope=Scope(), generated_at=T0 + timedelta(days=1))
    days = {DAY: DayRow(DAY)}
    referral_measures(report, days, sent=sent, changes=changes, clocks=clocks, terms=terms,
                      now=T0 + timedelta(days=1))
    assert report.time_to_acceptance.values == (600.0, 1200.0)
    assert (report.accepted_in_sla.hits, report.accepted_in_sla.total) == (2, 2)  # r3 declined in time: not judged
    assert (report.responded_in_target.hits, report.responded_in_target.total) == (1, 1)
    assert (report.declined, report.declined_by_service) == (1, [("CRT", 1)])
    assert "No capacity" not in repr(report)  # free text that can name the person: never in a report
    assert (days[DAY].referrals_sent, days[DAY].declined) == (3, 1)


def test_texts_count_once_handed_to_the_gateway():
    report = Report(period=Period(DAY, DAY), scope=Scope(), generated_at=T0)
    days = {DAY: DayRow(DAY)}
    sms_measures(report, days, [Row(status=s, created_at=T0) for s in
                                ("pending", "submitting", "queued", "sent", "delivered", "undelivered", "failed")])
    assert (report.sms_recorded, report.sms_sent, report.sms_delivered, report.sms_failed) == (7, 5, 1, 2)
    assert report.sms_delivered_rate.pct == 100 / 3
    assert (days[DAY].sms_sent, days[DAY].sms_delivered, days[DAY].sms_failed) == (5, 1, 2)
