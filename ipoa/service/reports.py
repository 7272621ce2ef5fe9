"""Per-period reports for supervisors and boards (DOMAIN.md, "What supervisors and boards look at").

A report covers a period of whole Europe/London days (from/to inclusive) and a scope: every centre and
service, one centre, one service, or a centre's referrals to one service.

Measures follow cohorts, and each cohort is followed through to now:
  * call measures: the calls *logged* in the period (a centre's calls are those it logged, i.e. the
    call's origin centre), and what became of them;
  * referral measures: the referrals *sent* in the period (a centre's referrals are those of the calls
    it logged; a service's are those sent to it);
  * texts: the messages *recorded* in the period (a centre's: about the calls it logged; a service's:
    about referrals to it).
So a referral sent on the last evening of the month and accepted the next morning counts in that month,
and a period's figures can still move while its last calls and referrals run their course.

Times come from the audit trail (who did what when) and the SLA timers table; percentiles are worked out
here, in Python, over the period's durations (a period's worth of rows). The SQL is plain SELECTs with
range filters and joins, the same on SQLite and PostgreSQL.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import and_, select

from ..adapters.orm import audit_events, calls, referrals, sms_messages, timers
from ..domain.calendar import LONDON
from ..domain.engine import CALL_WORKFLOW
from ..domain.sharing import BASES
from ..domain.validation import EARLIEST_DAY, LATEST_DAY, day_in_range

# A report may cover at most this many days: a year and a day (a leap year's whole year fits).
MAX_DAYS = 366
# Texts handed to the gateway (anything past our own pending/submitting), and how they ended.
SMS_NOT_SENT = frozenset({"pending", "submitting"})
SMS_DELIVERED = frozenset({"delivered"})
SMS_FAILED = frozenset({"failed", "undelivered"})
# Referral states that are the first visit or contact (the response clock stops on reaching one).
RESPONSE_STATES = frozenset({"in_progress", "completed"})
ACCEPTED_STATE = "accepted"
# Bands of the time-to-acceptance chart: (upper bound in seconds or None for "and over", label).
ACCEPTANCE_BANDS: tuple[tuple[int | None, str], ...] = (
    (15 * 60, "under 15 min"), (30 * 60, "15-30 min"), (60 * 60, "30-60 min"), (2 * 3600, "1-2 h"),
    (4 * 3600, "2-4 h"), (24 * 3600, "4-24 h"), (None, "24 h and over"),
)


class ReportInputError(ValueError):
    """Bad report parameters: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


# -- period and scope -----------------------------------------------------------------------------

def london_midnight(day: date) -> datetime:
    """The UTC instant a Europe/London date begins (clock changes happen at 01:00/02:00, never midnight)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(timezone.utc)


@dataclass(frozen=True)
class Period:
    first: date  # inclusive, Europe/London dates
    last: date

    @property
    def start(self) -> datetime:
        return london_midnight(self.first)

    @property
    def end(self) -> datetime:  # exclusive
        return london_midnight(self.last + timedelta(days=1))

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.length)]

    def previous(self) -> "Period":
        """The period of equal length just before this one."""
        return Period(self.first - timedelta(days=self.length), self.first - timedelta(days=1))

    @property
    def label(self) -> str:
        def fmt(d: date) -> str:
            return f"{d.day} {d:%b %Y}"

        return fmt(self.first) if self.first == self.last else f"{fmt(self.first)} to {fmt(self.last)}"


DEFAULT_DAYS = 30


def default_period(now: datetime) -> Period:
    """The last 30 days up to and including today (Europe/London): what is happening now, the first
    question a supervisor asks; a board's monthly report chooses its month."""
    today = now.astimezone(LONDON).date()
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


@dataclass(frozen=True)
class Scope:
    centre: str | None = None  # the centre that logged the calls
    service: str | None = None  # the service referred to

    @property
    def calls_apply(self) -> bool:
        """Call measures make no sense for one service: they are shown as not applicable."""
        return self.service is None

    @property
    def label(self) -> str:
        if self.centre and self.service:
            return f"centre {self.centre}, referrals to {self.service}"
        if self.centre:
            return f"centre {self.centre}"
        if self.service:
            return f"service {self.service}"
        return "all centres and services"


def parse_params(args: dict[str, Any], *, now: datetime, centres: Iterable[str],
                 services: Iterable[str]) -> tuple[Period, Scope]:
    """Validate the report form's GET parameters (from, to: YYYY-MM-DD; centre, service: codes or blank).
    Raises ReportInputError with a message per field."""
    errors: dict[str, str] = {}
    default = default_period(now)
    raw_from = (args.get("from") or "").strip()
    raw_to = (args.get("to") or "").strip()
    first, last = default.first, default.last
    if raw_from or raw_to:
        first = last = None
        for name, raw in (("from", raw_from), ("to", raw_to)):
            if not raw:
                errors[name] = f"Enter the '{name}' date as well (YYYY-MM-DD)."
                continue
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                errors[name] = f"'{raw[:40]}' is not a date: use YYYY-MM-DD, e.g. 2026-10-31."
                continue
            if not day_in_range(value):  # far-off days overflowed the previous period's arithmetic
                errors[name] = f"Give a date between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}."
                continue
            if name == "from":
                first = value
            else:
                last = value
        if first is not None and last is not None:
            if first > last:
                errors["to"] = "The 'to' date must be on or after the 'from' date."
            elif (last - first).days + 1 > MAX_DAYS:
                errors["to"] = f"A report covers at most {MAX_DAYS} days."
            elif first > now.astimezone(LONDON).date():
                errors["from"] = "The period starts in the future: there is nothing to report yet."
    centre = (args.get("centre") or "").strip().upper() or None
    service = (args.get("service") or "").strip().upper() or None
    if centre is not None and centre not in set(centres):
        errors["centre"] = f"Unknown centre '{centre[:16]}'."
    if service is not None and service not in set(services):
        errors["service"] = f"Unknown service '{service[:16]}'."
    if errors:
        raise ReportInputError(errors)
    return Period(first, last), Scope(centre, service)


# -- the figures ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def pct(self) -> float | None:
        return None if self.total == 0 else 100.0 * self.hits / self.total


@dataclass(frozen=True)
class Durations:
    """Durations in seconds, sorted."""
    values: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def p90(self) -> float | None:
        return percentile(self.values, 90)


def percentile(sorted_values: tuple[float, ...] | list[float], pct: float) -> float | None:
    """Nearest-rank percentile: the smallest value that at least pct% of the values do not exceed."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class DayRow:
    day: date
    calls_logged: int = 0
    resolved: int = 0
    referred: int = 0
    transfers: int = 0
    referrals_sent: int = 0
    accepted_in_sla: int = 0
    acceptance_judged: int = 0  # referrals whose acceptance is accepted or breached
    declined: int = 0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_failed: int = 0

    @property
    def accepted_in_sla_pct(self) -> float | None:
        return Rate(self.accepted_in_sla, self.acceptance_judged).pct


@dataclass
class Report:
    period: Period
    scope: Scope
    generated_at: datetime
    calls_logged: int | None = None
    resolved: Rate | None = None  # tier 1: resolved at first contact
    diverted_999: int | None = None
    referred: Rate | None = None  # calls referred at least once
    transfers: int | None = None  # centre: in + out
    transfers_out: int | None = None
    transfers_in: int | None = None
    time_to_triage: Durations | None = None
    triage_in_sla: Rate | None = None
    referrals_sent: int = 0
    time_to_acceptance: Durations = field(default_factory=lambda: Durations(()))
    accepted_in_sla: Rate = Rate(0, 0)
    declined: int = 0
    declined_reasons: list[tuple[str, int]] = field(default_factory=list)
    responded_in_target: Rate = Rate(0, 0)
    # Referrals sent, by the basis the person's details were shared on (domain/sharing.py): every basis,
    # zeros included, in BASES order; None (sent before the basis was recorded) only when there are any.
    shared_by_basis: list[tuple[str | None, int]] = field(default_factory=list)
    sms_recorded: int = 0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_failed: int = 0
    days: list[DayRow] = field(default_factory=list)

    @property
    def sms_delivered_rate(self) -> Rate:
        """Delivered out of the texts whose fate is known (delivered or failed)."""
        return Rate(self.sms_delivered, self.sms_delivered + self.sms_failed)

    def acceptance_bands(self) -> list[tuple[str, int]]:
        counts = [0] * len(ACCEPTANCE_BANDS)
        for v in self.time_to_acceptance.values:
            for i, (upper, _) in enumerate(ACCEPTANCE_BANDS):
                if upper is None or v < upper:
                    counts[i] += 1
                    break
        return [(label, n) for (_, label), n in zip(ACCEPTANCE_BANDS, counts)]

    def weeks(self) -> list[tuple[date, Rate]]:
        """% accepted within SLA by week (weeks start on the period's first day; the last may be short)."""
        out = []
        for i in range(0, len(self.days), 7):
            chunk = self.days[i:i + 7]
            out.append((chunk[0].day, Rate(sum(d.accepted_in_sla for d in chunk),
                                           sum(d.acceptance_judged for d in chunk))))
        return out


def _local_day(at: datetime) -> date:
    return at.astimezone(LONDON).date()


def _call_triggers(svc) -> tuple[set[str], set[str], set[str], set[str], set[str]]:
    """(routing decisions, resolved at first contact, divert to 999, refer, transfer) triggers, from
    every deployed version of the call workflow."""
    defs = [d for d in svc.engine().definitions() if d.name == CALL_WORKFLOW]
    ts = [t for d in defs for t in d.transitions]
    routing = {t.trigger for t in ts if t.route}
    resolved = {t.trigger for t in ts if t.route == "resolved_at_first_contact"}
    divert = {t.trigger for t in ts if t.route == "divert_999"}
    refer = {t.trigger for t in ts if t.route == "refer"}
    transfer = {t.trigger for t in ts if "move_centre" in t.effects}
    return routing, resolved, divert, refer, transfer


def build_report(svc, period: Period, scope: Scope) -> Report:
    now = svc.clock.now()
    report = Report(period=period, scope=scope, generated_at=now)
    days = {d: DayRow(d) for d in period.days()}
    start, end = period.start, period.end
    with svc.uow() as uow:
        s = uow.session
        if scope.calls_apply:
            _call_measures(svc, s, report, days, start, end, now)
        _referral_measures(s, report, days, start, end, now)
        _sms_measures(s, report, days, start, end)
    report.days = list(days.values())
    return report


def _call_measures(svc, s, report: Report, days: dict[date, DayRow], start, end, now) -> None:
    scope = report.scope
    routing, resolved_t, divert_t, refer_t, transfer_t = _call_triggers(svc)
    in_period = and_(calls.c.logged_at >= start, calls.c.logged_at < end)
    mine = in_period if scope.centre is None else and_(in_period, calls.c.origin_centre == scope.centre)
    cohort = {r.ref: r for r in s.execute(
        select(calls.c.ref, calls.c.origin_centre, calls.c.logged_at, calls.c.state).where(mine))}
    report.calls_logged = len(cohort)
    for c in cohort.values():
        days[_local_day(c.logged_at)].calls_logged += 1

    # Every routing decision of the cohort's calls: when the first was made, and where the calls went.
    events = s.execute(
        select(audit_events.c.call_ref, audit_events.c.trigger, audit_events.c.at)
        .join(calls, calls.c.ref == audit_events.c.call_ref)
        .where(mine, audit_events.c.entity == "call", audit_events.c.trigger.in_(sorted(routing)))
        .order_by(audit_events.c.at, audit_events.c.seq)).all()
    first_decision: dict[str, datetime] = {}
    resolved, diverted, referred = set(), set(), set()
    for e in events:
        first_decision.setdefault(e.call_ref, e.at)
        if e.trigger in resolved_t:
            resolved.add(e.call_ref)
        elif e.trigger in divert_t:
            diverted.add(e.call_ref)
        elif e.trigger in refer_t:
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
    clock_rows = s.execute(
        select(timers.c.call_ref, timers.c.due_at, timers.c.created_at, timers.c.outcome,
               timers.c.stopped_at)
        .join(calls, calls.c.ref == timers.c.call_ref)
        .where(mine, timers.c.kind == "triage", timers.c.referral_id.is_(None))
        .order_by(timers.c.created_at, timers.c.id)).all()
    clocks: dict[str, list] = {}
    for t in clock_rows:
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

    # Transfers of every call logged in the period (whichever centre logged it: a centre's transfers
    # in come from others), each from the centre holding the call to the one named.
    rows = s.execute(
        select(audit_events.c.call_ref, audit_events.c.data, calls.c.origin_centre, calls.c.logged_at)
        .join(calls, calls.c.ref == audit_events.c.call_ref)
        .where(in_period, audit_events.c.entity == "call", audit_events.c.trigger.in_(sorted(transfer_t)))
        .order_by(audit_events.c.at, audit_events.c.seq)).all()
    holder: dict[str, str] = {}
    out_n = in_n = 0
    for r in rows:
        src = holder.get(r.call_ref, r.origin_centre)
        dst = (r.data or {}).get("centre") or src
        holder[r.call_ref] = dst
        counted = scope.centre is None or scope.centre in (src, dst)
        out_n += int(scope.centre is not None and src == scope.centre)
        in_n += int(scope.centre is not None and dst == scope.centre)
        if counted:
            days[_local_day(r.logged_at)].transfers += 1
    if scope.centre is None:
        report.transfers = len(rows)
    else:
        report.transfers_out, report.transfers_in = out_n, in_n
        report.transfers = out_n + in_n


def _referral_measures(s, report: Report, days: dict[date, DayRow], start, end, now) -> None:
    scope = report.scope
    cond = [referrals.c.sent_at >= start, referrals.c.sent_at < end]
    if scope.service is not None:
        cond.append(referrals.c.service == scope.service)
    if scope.centre is not None:
        cond.append(calls.c.origin_centre == scope.centre)
    base = and_(*cond)
    cohort = {r.id: r for r in s.execute(
        select(referrals.c.id, referrals.c.service, referrals.c.state, referrals.c.sent_at,
               referrals.c.outcome_reason, referrals.c.sharing_basis)
        .join(calls, calls.c.id == referrals.c.call_id).where(base)
        .order_by(referrals.c.sent_at, referrals.c.id))}
    report.referrals_sent = len(cohort)
    for r in cohort.values():
        days[_local_day(r.sent_at)].referrals_sent += 1
    report.shared_by_basis = _by_basis(r.sharing_basis for r in cohort.values())

    # State changes of the cohort's referrals (through the call: audit events are indexed by call ref).
    accepted_at: dict[str, datetime] = {}
    responded_at: dict[str, datetime] = {}
    declined: set[str] = set()
    for e in s.execute(
            select(audit_events.c.entity_id, audit_events.c.to_state, audit_events.c.at)
            .select_from(referrals)
            .join(calls, calls.c.id == referrals.c.call_id)
            .join(audit_events, and_(audit_events.c.call_ref == calls.c.ref,
                                     audit_events.c.entity_id == referrals.c.id))
            .where(base, audit_events.c.entity == "referral")
            .order_by(audit_events.c.at, audit_events.c.seq)):
        if e.to_state == ACCEPTED_STATE:
            accepted_at.setdefault(e.entity_id, e.at)
        elif e.to_state in RESPONSE_STATES:
            responded_at.setdefault(e.entity_id, e.at)
        elif e.to_state == "declined":
            declined.add(e.entity_id)
    report.time_to_acceptance = Durations(tuple(sorted(
        (at - cohort[rid].sent_at).total_seconds() for rid, at in accepted_at.items())))

    clocks: dict[tuple[str, str], list] = {}
    for t in s.execute(
            select(timers.c.referral_id, timers.c.kind, timers.c.due_at, timers.c.outcome,
                   timers.c.stopped_at)
            .select_from(referrals)
            .join(calls, calls.c.id == referrals.c.call_id)
            .join(timers, and_(timers.c.call_ref == calls.c.ref, timers.c.referral_id == referrals.c.id))
            .where(base, timers.c.kind.in_(("acceptance", "response")))
            .order_by(timers.c.created_at, timers.c.id)):
        clocks.setdefault((t.referral_id, t.kind), []).append(t)

    def judged(rid: str, kind: str, done_at: datetime | None) -> bool | None:
        """True: done within the clock; False: breached (or overdue now); None: not judged (the clock
        stopped another way, e.g. declined or withdrawn in time, or is still running in time)."""
        ts = clocks.get((rid, kind))
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

    reasons: dict[str, list] = {}
    for rid in (rid for rid in cohort if rid in declined):  # in the order sent: the first wording shown
        r = cohort[rid]
        days[_local_day(r.sent_at)].declined += 1
        text = " ".join((r.outcome_reason or "").split()) or "(no reason given)"
        entry = reasons.setdefault(text.casefold(), [text, 0])
        entry[1] += 1
    report.declined = len(declined)
    report.declined_reasons = sorted(((t, n) for t, n in reasons.values()), key=lambda x: (-x[1], x[0]))


def _by_basis(bases: Iterable[str | None]) -> list[tuple[str | None, int]]:
    counts: dict[str | None, int] = {basis: 0 for basis in BASES}
    for basis in bases:
        counts[basis] = counts.get(basis, 0) + 1
    if not counts.get(None):
        counts.pop(None, None)
    return list(counts.items())


def basis_label(basis: str | None) -> str:
    return "Not recorded (sent before the basis was recorded)" if basis is None else BASES.get(basis, basis)


def _sms_measures(s, report: Report, days: dict[date, DayRow], start, end) -> None:
    scope = report.scope
    q = select(sms_messages.c.status, sms_messages.c.created_at).where(
        sms_messages.c.created_at >= start, sms_messages.c.created_at < end)
    if scope.centre is not None:
        q = q.join(calls, calls.c.ref == sms_messages.c.call_ref).where(calls.c.origin_centre == scope.centre)
    if scope.service is not None:
        q = q.join(referrals, referrals.c.id == sms_messages.c.referral_id).where(
            referrals.c.service == scope.service)
    for m in s.execute(q):
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


# -- the board view -------------------------------------------------------------------------------
# Example targets: an administrator would set these for the deployment (they are policy, not code).
# Each is the share of cases meeting the DOMAIN.md SLA clock, or a time limit.
TARGET_TRIAGE_IN_SLA = 95.0  # % of calls triaged (first routing decision) within the triage clock
TARGET_ACCEPTED_IN_SLA = 95.0  # % of referrals accepted within the acceptance clock
TARGET_RESPONDED_IN_TARGET = 90.0  # % of accepted referrals with a first visit/contact within the service's target
TARGET_ACCEPTANCE_P90_MINUTES = 30.0  # 90% of referrals accepted within 30 min (the urgent acceptance clock)
TARGET_SMS_DELIVERED = 98.0  # % of texts delivered (of those delivered or failed)
# Amber: short of the target by no more than this (percentage points; for times, this share of the target).
AMBER_MARGIN_POINTS = 5.0
AMBER_MARGIN_TIME = 0.5
# Trend: a change smaller than this is "no change" (percentage points; for times, this share of the value).
TREND_POINTS = 1.0
TREND_TIME = 0.05


@dataclass(frozen=True)
class BoardRow:
    metric: str
    target_text: str
    current: float | None
    current_text: str
    previous: float | None
    previous_text: str
    trend: str  # improving | deteriorating | no change | no data
    trend_text: str
    rag: str  # red | amber | green | none
    rag_text: str
    verdict: str


def _pct_text(v: float | None) -> str:
    return "no data" if v is None else f"{v:.1f}%"


def minutes_text(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    minutes = seconds / 60.0
    if minutes < 60:
        return f"{minutes:.0f} min" if minutes >= 10 or minutes == int(minutes) else f"{minutes:.1f} min"
    hours, mins = divmod(int(round(minutes)), 60)
    return f"{hours} h {mins:02d} min"


def board_row(metric: str, target: float, current: float | None, previous: float | None, *,
              higher_is_better: bool, unit: str) -> BoardRow:
    is_time = unit == "time"
    fmt = (lambda v: minutes_text(None if v is None else v * 60)) if is_time else _pct_text
    target_text = (f"≤ {fmt(target)}" if not higher_is_better else f"≥ {fmt(target)}")
    sign = 1 if higher_is_better else -1
    if current is None:
        rag, met = "none", None
    else:
        met = sign * (current - target) >= 0
        margin = target * AMBER_MARGIN_TIME if is_time else AMBER_MARGIN_POINTS
        rag = "green" if met else ("amber" if sign * (target - current) <= margin else "red")
    if current is None or previous is None:
        trend = "no data"
    else:
        threshold = abs(previous) * TREND_TIME if is_time else TREND_POINTS
        delta = sign * (current - previous)
        trend = "no change" if abs(current - previous) < threshold or delta == 0 else (
            "improving" if delta > 0 else "deteriorating")
    if current is None:
        verdict = "No data for this period"
    elif met:
        verdict = ("Achieving target but performance deteriorating" if trend == "deteriorating"
                   else "On track to achieve target")
    elif trend == "improving":
        verdict = "Performance improving but below target"
    elif trend == "deteriorating":
        verdict = "Performance deteriorating"
    elif trend == "no change":
        verdict = "No improvement in performance"
    else:
        verdict = "Below target; no previous period to compare"
    trend_text = {"improving": "▲ Improving", "deteriorating": "▼ Deteriorating",
                  "no change": "► No change", "no data": "– No comparison"}[trend]
    if is_time and trend in ("improving", "deteriorating"):
        trend_text = ("▼ " if current < previous else "▲ ") + trend.capitalize()
    rag_text = {"green": "Green: target met", "amber": "Amber: just below target",
                "red": "Red: below target", "none": "Grey: no data"}[rag]
    return BoardRow(metric=metric, target_text=target_text, current=current, current_text=fmt(current),
                    previous=previous, previous_text=fmt(previous), trend=trend, trend_text=trend_text,
                    rag=rag, rag_text=rag_text, verdict=verdict)


def board(current: Report, previous: Report) -> list[BoardRow]:
    rows = []
    if current.scope.calls_apply:
        rows.append(board_row("Calls triaged within SLA", TARGET_TRIAGE_IN_SLA, current.triage_in_sla.pct,
                              previous.triage_in_sla.pct, higher_is_better=True, unit="pct"))

    def p90_minutes(r: Report) -> float | None:
        v = r.time_to_acceptance.p90
        return None if v is None else v / 60.0

    rows += [
        board_row("Referrals accepted within SLA", TARGET_ACCEPTED_IN_SLA, current.accepted_in_sla.pct,
                  previous.accepted_in_sla.pct, higher_is_better=True, unit="pct"),
        board_row("Time to acceptance, 90th percentile", TARGET_ACCEPTANCE_P90_MINUTES,
                  p90_minutes(current), p90_minutes(previous), higher_is_better=False, unit="time"),
        board_row("Responded within target", TARGET_RESPONDED_IN_TARGET, current.responded_in_target.pct,
                  previous.responded_in_target.pct, higher_is_better=True, unit="pct"),
        board_row("Texts delivered", TARGET_SMS_DELIVERED, current.sms_delivered_rate.pct,
                  previous.sms_delivered_rate.pct, higher_is_better=True, unit="pct"),
    ]
    return rows


# -- CSV ------------------------------------------------------------------------------------------

def measure_rows(r: Report) -> list[tuple[str, str, str]]:
    """(measure, value, detail) for the summary table and the CSV; values as plain numbers or blank."""
    def num(v) -> str:
        return "" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))

    def mins(v: float | None) -> str:
        return "" if v is None else f"{v / 60:.1f}"

    na = "not applicable to one service"
    rows: list[tuple[str, str, str]] = []
    if r.scope.calls_apply:
        rows += [
            ("Calls logged", num(r.calls_logged), ""),
            ("Resolved at first contact (tier 1) %", num(r.resolved.pct), f"{r.resolved.hits} of {r.resolved.total}"),
            ("Diverted to 999", num(r.diverted_999), ""),
            ("Referred %", num(r.referred.pct), f"{r.referred.hits} of {r.referred.total}"),
            ("Transfers between centres", num(r.transfers),
             "" if r.transfers_out is None else f"{r.transfers_out} out, {r.transfers_in} in"),
            ("Time to triage median (min)", mins(r.time_to_triage.median), f"{r.time_to_triage.count} calls"),
            ("Time to triage 90th percentile (min)", mins(r.time_to_triage.p90), f"{r.time_to_triage.count} calls"),
            ("Triaged within SLA %", num(r.triage_in_sla.pct), f"{r.triage_in_sla.hits} of {r.triage_in_sla.total}"),
        ]
    else:
        rows += [(name, "", na) for name in ("Calls logged", "Resolved at first contact (tier 1) %", "Referred %",
                                              "Transfers between centres", "Time to triage")]
    accepted = f"{r.time_to_acceptance.count} accepted"
    rows += [
        ("Referrals sent", num(r.referrals_sent), ""),
        ("Time to acceptance median (min)", mins(r.time_to_acceptance.median), accepted),
        ("Time to acceptance 90th percentile (min)", mins(r.time_to_acceptance.p90), accepted),
        ("Accepted within SLA %", num(r.accepted_in_sla.pct), f"{r.accepted_in_sla.hits} of {r.accepted_in_sla.total}"),
        ("Declined", num(r.declined), ""),
    ]
    rows += [(f"Declined: {reason}", str(n), "") for reason, n in r.declined_reasons]
    rows += [(f"Shared: {basis_label(basis)}", str(n), basis or "") for basis, n in r.shared_by_basis]
    rows += [
        ("Responded within target %", num(r.responded_in_target.pct),
         f"{r.responded_in_target.hits} of {r.responded_in_target.total}"),
        ("Texts sent", num(r.sms_sent), f"{r.sms_recorded} recorded"),
        ("Texts delivered", num(r.sms_delivered), ""),
        ("Texts failed", num(r.sms_failed), ""),
    ]
    return rows


DAY_COLUMNS = ("date", "calls_logged", "resolved_first_contact", "referred", "transfers", "referrals_sent",
               "accepted_within_sla", "acceptance_judged", "declined", "sms_sent", "sms_delivered", "sms_failed")


def day_values(d: DayRow) -> list[str]:
    return [d.day.isoformat(), str(d.calls_logged), str(d.resolved), str(d.referred), str(d.transfers),
            str(d.referrals_sent), str(d.accepted_in_sla), str(d.acceptance_judged), str(d.declined),
            str(d.sms_sent), str(d.sms_delivered), str(d.sms_failed)]


__all__ = ["Period", "Scope", "Rate", "Durations", "DayRow", "Report", "BoardRow", "ReportInputError",
           "parse_params", "default_period", "build_report", "board", "board_row", "measure_rows",
           "day_values", "DAY_COLUMNS", "percentile", "minutes_text", "MAX_DAYS", "basis_label"]
