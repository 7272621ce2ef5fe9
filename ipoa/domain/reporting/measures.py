"""Working a report's figures out from its period's rows.

Measures follow cohorts, and each cohort is followed through to now:
  * call measures: the calls *logged* in the period (a centre's calls are those it logged, i.e. the
    call's origin centre), and what became of them;
  * referral measures: the referrals *sent* in the period (a centre's referrals are those of the calls
    it logged; a service's are those sent to it);
  * texts: the messages *recorded* in the period (a centre's: about the calls it logged; a service's:
    about referrals to it).
So a referral sent on the last evening of the month and accepted the next morning counts in that month,
and a period's figures can still move while its last calls and referrals run their course.

Times come from the audit trail (who did what when) and the SLA timers table, read by
ipoa/adapters/report_queries.py (plain SELECTs with range filters and joins, the same on SQLite and
PostgreSQL); percentiles are worked out here, in Python, over the period's durations (a period's worth of
rows). The rows are passed as the query returns them: the Protocols below say which columns each needs.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from ..calendar import LONDON
from ..sharing import BASES
from .figures import DayRow, Durations, Rate, Report
from .workflow_terms import CallTriggers, ReferralTerms

__all__ = ["SMS_DELIVERED", "SMS_FAILED", "SMS_NOT_SENT", "by_basis", "call_measures",
           "referral_measures", "sms_measures"]

# Texts handed to the gateway (anything past our own pending/submitting), and how they ended.
SMS_NOT_SENT = frozenset({"pending", "submitting"})
SMS_DELIVERED = frozenset({"delivered"})
SMS_FAILED = frozenset({"failed", "undelivered"})


# -- the rows ---------------------------------------------------------------------------------------

class LoggedCall(Protocol):
    ref: str
    logged_at: datetime


class CallDecision(Protocol):  # an audit event of a routing trigger
    call_ref: str
    trigger: str
    at: datetime


class TriageClock(Protocol):
    call_ref: str
    due_at: datetime
    created_at: datetime
    outcome: str | None
    stopped_at: datetime | None


class Transfer(Protocol):  # an audit event of a trigger moving a call to another centre
    call_ref: str
    data: Mapping[str, Any] | None
    origin_centre: str
    logged_at: datetime


class SentReferral(Protocol):  # never its outcome reason: free text, not for reports
    id: str
    service: str
    workflow: str
    workflow_version: int
    sent_at: datetime
    sharing_basis: str | None


class ReferralChange(Protocol):  # an audit event of a referral
    entity_id: str
    to_state: str | None
    at: datetime


class ReferralClock(Protocol):
    referral_id: str
    kind: str
    due_at: datetime
    outcome: str | None
    stopped_at: datetime | None


class Text(Protocol):
    status: str
    created_at: datetime


def _local_day(at: datetime) -> date:
    return at.astimezone(LONDON).date()


# -- calls ------------------------------------------------------------------------------------------

def call_measures(report: Report, days: dict[date, DayRow], *, logged: Iterable[LoggedCall],
                  decisions: Iterable[CallDecision], triage_clocks: Iterable[TriageClock],
                  transfers: Iterable[Transfer], triggers: CallTriggers, now: datetime) -> None:
    """`logged`: the calls logged in the period (in scope); `decisions`: their routing decisions and
    `triage_clocks` their triage clocks, both oldest first; `transfers`: the transfers of every call
    logged in the period (whichever centre logged it: a centre's transfers in come from others), oldest
    first."""
    scope = report.scope
    cohort = {r.ref: r for r in logged}
    report.calls_logged = len(cohort)
    for c in cohort.values():
        days[_local_day(c.logged_at)].calls_logged += 1

    # Every routing decision of the cohort's calls: when the first was made, and where the calls went.
    first_decision: dict[str, datetime] = {}
    resolved, diverted, referred = set(), set(), set()
    for e in decisions:
        first_decision.setdefault(e.call_ref, e.at)
        if e.trigger in triggers.resolved:
            resolved.add(e.call_ref)
        elif e.trigger in triggers.divert:
            diverted.add(e.call_ref)
        elif e.trigger in triggers.refer:
            referred.add(e.call_ref)
    report.resolved = Rate(len(resolved), len(cohort))
    report.diverted_999 = len(diverted)
    report.referred = Rate(len(referred), len(cohort))
    for ref in resolved:
        days[_local_day(cohort[ref].logged_at)].resolved += 1
    for ref in referred:
        days[_local_day(cohort[ref].logged_at)].referred += 1
    report.time_to_triage = Durations(tuple(sorted(
        (at - cohort[ref].logged_at).total_seconds() for ref, at in first_decision.items())))

    # Triage within SLA: judged on the triage clock running when the first decision was made (a
    # transfer or a callback starts it afresh); a call not yet decided counts once its clock ran out.
    clocks: dict[str, list[TriageClock]] = {}
    for t in triage_clocks:
        clocks.setdefault(t.call_ref, []).append(t)
    hits = total = 0
    for ref, ts in clocks.items():
        decided = first_decision.get(ref)
        if decided is not None:
            before = [t for t in ts if t.created_at <= decided]
            if not before:
                continue
            total += 1
            hits += int(decided <= before[-1].due_at and not any(t.outcome == "breached" for t in before))
        elif any(t.outcome == "breached" or (t.stopped_at is None and t.due_at <= now) for t in ts):
            total += 1  # ran out undecided (still waiting, or cancelled after the breach)
    report.triage_in_sla = Rate(hits, total)

    # Transfers, each from the centre holding the call to the one named.
    holder: dict[str, str] = {}
    moves = out_n = in_n = 0
    for r in transfers:
        moves += 1
        src = holder.get(r.call_ref, r.origin_centre)
        dst = (r.data or {}).get("centre") or src
        holder[r.call_ref] = dst
        counted = scope.centre is None or scope.centre in (src, dst)
        out_n += int(scope.centre is not None and src == scope.centre)
        in_n += int(scope.centre is not None and dst == scope.centre)
        if counted:
            days[_local_day(r.logged_at)].transfers += 1
    if scope.centre is None:
        report.transfers = moves
    else:
        report.transfers_out, report.transfers_in = out_n, in_n
        report.transfers = out_n + in_n


# -- referrals --------------------------------------------------------------------------------------

def referral_measures(report: Report, days: dict[date, DayRow], *, sent: Iterable[SentReferral],
                      changes: Iterable[ReferralChange], clocks: Iterable[ReferralClock],
                      terms: ReferralTerms, now: datetime) -> None:
    """`sent`: the referrals sent in the period (in scope), in the order sent; `changes`: their state
    changes, oldest first; `clocks`: their acceptance and response clocks, oldest first; `terms`: which
    states mean accepted, responded and declined, in each referral's own workflow version."""
    cohort = {r.id: r for r in sent}
    report.referrals_sent = len(cohort)
    for r in cohort.values():
        days[_local_day(r.sent_at)].referrals_sent += 1
    report.shared_by_basis = by_basis(r.sharing_basis for r in cohort.values())

    accepted_at: dict[str, datetime] = {}
    responded_at: dict[str, datetime] = {}
    declined: set[str] = set()
    states = {rid: terms.of(r.workflow, r.workflow_version) for rid, r in cohort.items()}
    for e in changes:
        meaning = states[e.entity_id]
        if e.to_state in meaning.accepted:
            accepted_at.setdefault(e.entity_id, e.at)
        elif e.to_state in meaning.response:
            responded_at.setdefault(e.entity_id, e.at)
        elif e.to_state in meaning.declined:
            declined.add(e.entity_id)
    report.time_to_acceptance = Durations(tuple(sorted(
        (at - cohort[rid].sent_at).total_seconds() for rid, at in accepted_at.items())))

    by_clock: dict[tuple[str, str], list[ReferralClock]] = {}
    for t in clocks:
        by_clock.setdefault((t.referral_id, t.kind), []).append(t)

    def judged(rid: str, kind: str, done_at: datetime | None) -> bool | None:
        """True: done within the clock; False: breached (or overdue now); None: not judged (the clock
        stopped another way, e.g. declined or withdrawn in time, or is still running in time)."""
        ts = by_clock.get((rid, kind))
        if not ts:
            return None
        t = ts[0]
        if t.outcome == "breached":
            return False
        if done_at is not None:
            return done_at <= t.due_at
        if t.stopped_at is None and t.due_at <= now:
            return False
        return None

    acc_hits = acc_total = resp_hits = resp_total = 0
    for rid, r in cohort.items():
        day = days[_local_day(r.sent_at)]
        verdict = judged(rid, "acceptance", accepted_at.get(rid))
        if verdict is not None:
            acc_total += 1
            acc_hits += int(verdict)
            day.acceptance_judged += 1
            day.accepted_in_sla += int(verdict)
        if rid in accepted_at:
            verdict = judged(rid, "response", responded_at.get(rid))
            if verdict is not None:
                resp_total += 1
                resp_hits += int(verdict)
    report.accepted_in_sla = Rate(acc_hits, acc_total)
    report.responded_in_target = Rate(resp_hits, resp_total)

    # Declines are counted by the service that declined, never by their reason: the reason is free text
    # (a professional's DECLINE <ref> <reason>, or the page's) that can name the person, and reports carry
    # no patient identifier (docs/information-governance.md, section 3). The product has no coded decline
    # category; the reason is read on the call's own page.
    by_service: dict[str, int] = {}
    for rid in (rid for rid in cohort if rid in declined):
        r = cohort[rid]
        days[_local_day(r.sent_at)].declined += 1
        by_service[r.service] = by_service.get(r.service, 0) + 1
    report.declined = len(declined)
    report.declined_by_service = sorted(by_service.items(), key=lambda x: (-x[1], x[0]))


def by_basis(bases: Iterable[str | None]) -> list[tuple[str | None, int]]:
    """Referrals by the basis they were shared on: every basis, zeros included, in BASES order; None
    (sent before the basis was recorded) only when there are any."""
    counts: dict[str | None, int] = dict.fromkeys(BASES, 0)
    for basis in bases:
        counts[basis] = counts.get(basis, 0) + 1
    if not counts.get(None):
        counts.pop(None, None)
    return list(counts.items())


# -- texts ------------------------------------------------------------------------------------------

def sms_measures(report: Report, days: dict[date, DayRow], texts: Iterable[Text]) -> None:
    """`texts`: the messages recorded in the period (in scope)."""
    for m in texts:
        report.sms_recorded += 1
        day = days[_local_day(m.created_at)]
        if m.status in SMS_NOT_SENT:
            continue
        report.sms_sent += 1
        day.sms_sent += 1
        if m.status in SMS_DELIVERED:
            report.sms_delivered += 1
            day.sms_delivered += 1
        elif m.status in SMS_FAILED:
            report.sms_failed += 1
            day.sms_failed += 1
