"""The supervisor's live dashboard: figures per centre and per service, the calls behind each figure, and
the exceptions panel (texts not delivered, failed texts, referrals texted to nobody and why, the rota's gaps,
failed background jobs, a broken or unverified audit trail).

Every query reads open records only (`closed_at IS NULL` and an open state: the engine sets closed_at as a
record enters a final state) and groups in SQL, so the cost follows the open workload, not the history.
Figures are read in one transaction per panel; nothing here writes, except requeueing a failed job and
marking a text followed up."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from ..adapters.dashboard_queries import DrillStates
from ..adapters.rq_queue import WORKER_QUEUES
from ..domain import access as policy
from ..domain import meaning
from ..domain.calendar import LONDON
from ..domain.date_parts import london_clock
from ..domain.engine import CALL_WORKFLOW, REFERRAL_WORKFLOW
from ..domain.model import AuditEvent
from ..domain.rota.recipients import NOBODY
from ..domain.sla import Elapsed, SlaPolicyError
from ..domain.sms.delivery import FINAL_STATUSES
from ..domain.validation import text_problem
from ..log_redaction import redact
from ..users import CAPABILITIES
from . import access, audit, phone_measures, rotas, workflow_meaning
from .audit import TrailStatus
from .errors import Forbidden, NotFound
from .inputs import InvalidInput
from .work_queues import _state_sets

if TYPE_CHECKING:
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from ..bootstrap import Services
    from ..domain.sla import Rule
    from ..domain.workflow import StateDef
    from .calls import Actor

log = logging.getLogger(__name__)

# -- thresholds ----------------------------------------------------------------------------------
# RAG, shown as words as well as colour. Red: anything in breach now (an SLA already missed). Amber: a
# clock more than AMBER_SHARE used up: the longest-waiting call of an urgency waiting for triage (the
# triage clock's states), or referral awaiting acceptance, has waited longer than that share of the
# urgency's rule in workflows/sla.yaml. Only rules of elapsed time count: routine clocks count opening
# hours and working days, so elapsed time says little about them; they turn red by breaching.
AMBER_SHARE = 0.5


def amber_thresholds(rules: Mapping[str, Rule]) -> dict[str, timedelta]:
    """Per urgency, the wait past which a clock of these SLA rules shows amber."""
    return {urgency: rule.duration * AMBER_SHARE for urgency, rule in rules.items() if isinstance(rule, Elapsed)}
# A handler counts as signed in if they made a request while signed in within this long (users.last_seen_at
# is written at most once a minute, so this is accurate to the minute).
SIGNED_IN_WITHIN = timedelta(minutes=15)
# Exceptions: an alert not delivered this long after it was created is shown for a phone follow-up
# (docs/domain.md, "SMS to professionals": "an alert not delivered within 10 minutes is shown to the
# supervisor"). Texts older than the window have had their follow-up or no longer matter; they stay on the
# call's own page.
UNDELIVERED_AFTER = timedelta(minutes=10)
EXCEPTIONS_WINDOW = timedelta(hours=24)
EXCEPTIONS_LIMIT = 50  # rows listed per exceptions table; the caption gives the full count
DRILL_LIMIT = 200  # rows on a drill-down list (each has its action forms); the caption says when cut

NOT_DELIVERED_YET = tuple(sorted({"pending", "submitting", "accepted", "queued", "sending", "sent"}))
PERMANENTLY_FAILED = ("failed", "undelivered")
assert not set(NOT_DELIVERED_YET) & FINAL_STATUSES


def _utc(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands back text, and no zone."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _seconds(now: datetime, since: datetime | None) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds()))


def _short(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"


@dataclass(frozen=True)
class Rag:
    level: str  # red | amber | green
    text: str  # "Red: 3 breached": the words carry the meaning, the colour only repeats it


def _rag(breached: int, late: list[tuple[str, int, timedelta]], what: str) -> Rag:
    """late: (urgency, oldest wait in seconds, amber threshold) past their threshold."""
    if breached:
        return Rag("red", f"Red: {breached} breached")
    if late:
        urgency, wait, threshold = max(late, key=lambda x: x[1] / x[2].total_seconds())
        return Rag("amber", f"Amber: {urgency.replace('_', ' ')} {what} {_short(timedelta(seconds=wait))} "
                            f"(over {_short(threshold)})")
    return Rag("green", "Green: on track")


@dataclass
class Figures:
    code: str
    name: str
    open_now: bool
    counts: dict[str, int] = field(default_factory=dict)  # open records per state
    total: int = 0
    waiting: int = 0
    breached: int = 0
    awaiting_acceptance: int = 0  # referrals in a state tagged so (for a centre: of its calls)
    accepted: int = 0  # referrals in the state tagged `accepted`
    oldest_wait_seconds: int | None = None
    staff: int = 0  # centres: handlers signed in; services: professionals on duty (not opted out)
    rag: Rag | None = None
    # Services: who the rota has on duty now (names only), and "20:00 today: Bob Night" for the next shift
    # change within a week (service/rotas.outlook), else None.
    on_duty: tuple[str, ...] = ()
    next_on_duty: str | None = None
    _oldest_by_urgency: dict[str, datetime] = field(default_factory=dict, repr=False)

    def _note_wait(self, now: datetime, oldest: datetime | None) -> None:
        age = _seconds(now, oldest)
        if age is not None and (self.oldest_wait_seconds is None or age > self.oldest_wait_seconds):
            self.oldest_wait_seconds = age

    def _note_urgent(self, urgency: str, oldest: datetime | None) -> None:
        if oldest is not None and (urgency not in self._oldest_by_urgency
                                   or oldest < self._oldest_by_urgency[urgency]):
            self._oldest_by_urgency[urgency] = oldest

    def _late(self, now: datetime, thresholds: dict[str, timedelta]) -> list[tuple[str, int, timedelta]]:
        out: list[tuple[str, int, timedelta]] = []
        for urgency, oldest in self._oldest_by_urgency.items():
            threshold = thresholds.get(urgency)
            wait = _seconds(now, oldest)
            if threshold is not None and wait is not None and wait > threshold.total_seconds():
                out.append((urgency, wait, threshold))
        return out


@dataclass
class Dashboard:
    generated_at: datetime
    centres: list[Figures]
    services: list[Figures]
    call_states: list[StateDef]  # the latest call workflow's open states (label, name), for the columns
    referral_states: list[StateDef]
    # The phone lines' measures today, per centre (service/phone_measures.py; docs/domain.md).
    phone: list[phone_measures.CentreLine] = field(default_factory=list)


def figures(svc: Services) -> Dashboard:
    """Live figures per centre and per service, in five grouped queries over open records."""
    now = svc.clock.now()
    call_open, call_waiting = _state_sets(svc, CALL_WORKFLOW)
    ref_open, ref_waiting = _state_sets(svc, REFERRAL_WORKFLOW)
    # Awaiting acceptance and accepted are tags: each referral is read by its own version's
    # (workflow_meaning.py), the rows being grouped by version too.
    awaiting = workflow_meaning.tagged_by_version(svc, REFERRAL_WORKFLOW, meaning.AWAITING_ACCEPTANCE)
    accepted = workflow_meaning.tagged_by_version(svc, REFERRAL_WORKFLOW, meaning.ACCEPTED)
    sla = svc.catalogue.sla
    if sla is None:  # load_catalogue always sets it; a catalogue made by hand may not
        raise SlaPolicyError("the catalogue has no SLA policy (workflows/sla.yaml): the dashboard needs it")
    # Waiting for triage, in any deployed version: the call rows are not grouped by version.
    triage_states = {state for states in workflow_meaning.tagged_by_version(
        svc, CALL_WORKFLOW, meaning.AWAITING_TRIAGE).values() for state in states}
    engine = svc.engine()
    centres = {c.code: Figures(c.code, c.name, c.calendar.is_open(now)) for c in svc.directory.centres.values()}
    services = {s.code: Figures(s.code, s.name, s.calendar.is_open(now))
                for s in svc.directory.services.values()}
    with svc.uow() as uow:
        call_rows, ref_rows, handler_rows = uow.dashboard.figures(call_open, ref_open, now - SIGNED_IN_WITHIN)
        duty_rows = rotas.on_duty_people(svc, uow, now).items()  # from the rota at this instant
        phone = phone_measures.today_by_centre(svc, uow, now)
    ahead = rotas.outlook(svc, now)  # worked out at most once a minute

    for centre, state, urgency, n, breached, oldest in call_rows:
        f = centres.get(centre)
        if f is None:  # a centre since removed from the directory: still counted, never hidden
            f = centres[centre] = Figures(centre, centre, False)
        oldest = _utc(oldest)
        f.counts[state] = f.counts.get(state, 0) + n
        f.total += n
        f.breached += breached
        if state in call_waiting:
            f.waiting += n
            f._note_wait(now, oldest)
        if state in triage_states:
            f._note_urgent(urgency, oldest)
    for service, centre, state, urgency, version, n, breached, oldest in ref_rows:
        f = services.get(service)
        if f is None:
            f = services[service] = Figures(service, service, False)
        oldest = _utc(oldest)
        f.counts[state] = f.counts.get(state, 0) + n
        f.total += n
        f.breached += breached
        if state in ref_waiting:
            f.waiting += n
            f._note_wait(now, oldest)
        is_awaiting = state in awaiting.get(version, ())
        is_accepted = state in accepted.get(version, ())
        if is_awaiting:
            f.awaiting_acceptance += n
            f._note_urgent(urgency, oldest)
        elif is_accepted:
            f.accepted += n
        c = centres.get(centre)
        if c is not None:  # the referring centre's view of its referrals
            c.breached += breached
            if is_awaiting:
                c.awaiting_acceptance += n
            elif is_accepted:
                c.accepted += n
    for centre, n in handler_rows:
        if centre in centres:
            centres[centre].staff = n
    for service, people in duty_rows:
        if service in services:
            services[service].staff = sum(1 for _, textable in people if textable)
            services[service].on_duty = tuple(name for name, _ in people)
    today = ahead.minute.astimezone(LONDON).date()
    for service, seen in ahead.services.items():
        if service in services and seen.next_at is not None:
            services[service].next_on_duty = (f"{_at_words(seen.next_at, today)}: "
                                              f"{', '.join(seen.next_names) or 'nobody rostered'}")
    for f in centres.values():
        f.rag = _rag(f.breached, f._late(now, amber_thresholds(sla.triage)), "call waiting")
    for f in services.values():
        f.rag = _rag(f.breached, f._late(now, amber_thresholds(sla.acceptance)), "referral unaccepted")
    return Dashboard(
        generated_at=now, centres=list(centres.values()), services=list(services.values()),
        call_states=[st for st in engine.latest(CALL_WORKFLOW).states.values() if not st.final],
        referral_states=[st for st in engine.latest(REFERRAL_WORKFLOW).states.values() if not st.final],
        phone=phone)


# -- rota words: UK time, 24-hour, the day said when it is not today ------------------------------------

def _day_words(day: date, today: date) -> str:
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"{day:%A} {day.day} {day:%B}"  # "Wednesday 9 December": no doubt which Wednesday


def _at_words(at: datetime, today: date) -> str:
    """"20:00 today", "08:00 tomorrow", "09:00 Saturday 5 December"; "01:30 GMT today" in the hour that happens
    twice (date_parts.london_clock)."""
    local = at.astimezone(LONDON)
    return f"{london_clock(at, '%H:%M')} {_day_words(local.date(), today)}"


def _hours_words(td: timedelta) -> str:
    """"12 hours", "1 hour 30 minutes", "45 minutes" (real time: a clock change counts as it happens)."""
    hours, minutes = divmod(int(td.total_seconds()) // 60, 60)
    parts = ([f"{hours} hour{'' if hours == 1 else 's'}"] if hours else []) + (
        [f"{minutes} minute{'' if minutes == 1 else 's'}"] if minutes or not hours else [])
    return " ".join(parts)


def gap_words(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> str:
    """One uncovered interval in words: "20:00–08:00 tonight (12 hours)", "from now until 08:00 tomorrow
    (3 hours)", "for the whole of the next 24 hours (24 hours)"."""
    today = window_start.astimezone(LONDON).date()
    s, e = start.astimezone(LONDON), end.astimezone(LONDON)
    last_day = e.date() - timedelta(days=1) if e.hour == 0 and e.minute == 0 else e.date()  # midnight ends a day
    ends = "midnight" if last_day != e.date() else london_clock(end, "%H:%M")
    if start <= window_start and end >= window_end:
        span = "for the whole of the next 24 hours"
    elif start <= window_start:
        span = f"from now until {ends} {_day_words(last_day, today)}"
    elif end >= window_end:
        span = f"from {_at_words(start, today)} for the rest of the next 24 hours"
    elif s.date() == last_day:
        span = f"{london_clock(start, '%H:%M')}–{ends} {_day_words(last_day, today)}"
    elif last_day == s.date() + timedelta(days=1) and s.hour >= 17 and e.hour < 12:
        night = {today: "tonight", today + timedelta(days=1): "tomorrow night"}.get(s.date(), f"{s:%A} night")
        span = f"{london_clock(start, '%H:%M')}–{ends} {night}"
    else:
        span = f"{_at_words(start, today)}–{ends} {_day_words(last_day, today)}"
    return f"{span} ({_hours_words(end - start)})"


# -- drill-down: the records behind a figure ---------------------------------------------------------

# Measures every figure links to. Besides these, any open state name of the workflow concerned.
CENTRE_MEASURES = {"open": "open calls", "waiting": "calls waiting", "breached": "breached now",
                   "awaiting_acceptance": "referrals awaiting acceptance", "accepted": "referrals accepted"}
SERVICE_MEASURES = {"open": "open referrals", "waiting": "referrals awaiting acceptance",
                    "awaiting_acceptance": "referrals awaiting acceptance", "accepted": "referrals accepted",
                    "breached": "breached now"}


class UnknownMeasure(ValueError):
    pass


@dataclass(frozen=True)
class DrillRow:
    ref: str
    call_version: int
    call_state: str
    centre: str
    urgency: str
    need: str
    queued_at: datetime
    call_breach: str | None
    may_transfer: bool  # the call's version may move it to another centre from its state (`move_centre`)
    referral_id: str | None = None
    service: str | None = None
    referral_state: str | None = None
    referral_version: int | None = None
    sent_at: datetime | None = None
    referral_breach: str | None = None
    reroutable: bool = False  # the referral's state is tagged so in its version: a supervisor may re-route it
    escalatable: bool = False  # likewise, escalate it

    @property
    def since(self) -> datetime:
        if not self.referral_id:
            return self.queued_at
        if self.sent_at is None:  # a referral's row always has its sent_at (dashboard_queries.py)
            raise ValueError(f"referral {self.referral_id} has no sent_at")
        return self.sent_at


@dataclass(frozen=True)
class Drill:
    title: str
    rows: list[DrillRow]
    truncated: bool
    referral_rows: bool  # the list is of referrals (each with its call), not of calls

    @property
    def noun(self) -> str:
        return "referral" if self.referral_rows else ("record" if any(r.referral_id for r in self.rows) else "call")


def describe_measure(svc: Services, *, centre: str | None, service: str | None, measure: str) -> str:
    if centre is not None:
        if measure in CENTRE_MEASURES:
            return CENTRE_MEASURES[measure]
        state = svc.engine().latest(CALL_WORKFLOW).states.get(measure)
        return f"calls {state.label.lower() if state else measure}"
    if measure in SERVICE_MEASURES:
        return SERVICE_MEASURES[measure]
    state = svc.engine().latest(REFERRAL_WORKFLOW).states.get(measure)
    return f"referrals {state.label.lower() if state else measure}"


def _transfer_states(svc: Services) -> dict[tuple[str, int], set[str]]:
    """Per call version, the states a call may be reassigned from: those a `move_centre` transition leaves."""
    return {(d.name, d.version): {st for st in d.states if d.trigger_for(st, effect="move_centre")}
            for d in svc.engine().definitions() if d.name == CALL_WORKFLOW}


def _referral_actions(svc: Services) -> dict[int, tuple[frozenset[str], frozenset[str]]]:
    """Per referral version, its (reroutable, escalatable) states."""
    return {d.version: (d.states_tagged(meaning.REROUTABLE), d.states_tagged(meaning.ESCALATABLE))
            for d in workflow_meaning.deployed(svc, REFERRAL_WORKFLOW)}


def calls_behind(svc: Services, *, centre: str | None = None, service: str | None = None, measure: str) -> Drill:
    """The open calls (or referrals, with their calls) behind one figure of the dashboard, longest
    waiting first. Exactly one of centre and service."""
    if (centre is None) == (service is None):
        raise UnknownMeasure("give a centre or a service")
    call_open, call_waiting = _state_sets(svc, CALL_WORKFLOW)
    ref_open, ref_waiting = _state_sets(svc, REFERRAL_WORKFLOW)
    transfer = _transfer_states(svc)
    actions = _referral_actions(svc)
    # Over many referrals, each is read by its own version's tags (adapters/state_filters.py).
    states = DrillStates(
        call_open, call_waiting, ref_open, ref_waiting,
        workflow_meaning.tagged_by_version(svc, REFERRAL_WORKFLOW, meaning.AWAITING_ACCEPTANCE),
        workflow_meaning.tagged_by_version(svc, REFERRAL_WORKFLOW, meaning.ACCEPTED))
    with svc.uow() as uow:
        found = uow.dashboard.behind(centre=centre, service=service, measure=measure, states=states,
                                     limit=DRILL_LIMIT + 1)
    if found is None:
        raise UnknownMeasure(measure)
    rows = [_row(r, transfer, actions) for r in found.calls or []]
    rows += [_row(r, transfer, actions, referral=True) for r in found.referrals or []]
    rows.sort(key=lambda x: x.since)
    truncated = len(rows) > DRILL_LIMIT
    return Drill(title=describe_measure(svc, centre=centre, service=service, measure=measure),
                 rows=rows[:DRILL_LIMIT], truncated=truncated,
                 referral_rows=found.referrals is not None and found.calls is None)


def _row(r: Any, transfer: dict[tuple[str, int], set[str]], actions: dict[int, tuple[frozenset[str], frozenset[str]]],
         referral: bool = False) -> DrillRow:
    base = dict(ref=r.ref, call_version=r.version, call_state=r.state, centre=r.centre, urgency=r.urgency,
                need=r.need, queued_at=r.queued_at, call_breach=r.breach,
                may_transfer=r.state in transfer.get((r.workflow, r.workflow_version), set()))
    if referral:
        reroute, escalate = actions.get(r.referral_workflow_version, (frozenset(), frozenset()))
        base.update(referral_id=r.id, service=r.service, referral_state=r.referral_state,
                    referral_version=r.referral_version, sent_at=r.sent_at, referral_breach=r.referral_breach,
                    reroutable=r.referral_state in reroute, escalatable=r.referral_state in escalate)
    return DrillRow(**base)


# -- exceptions ------------------------------------------------------------------------------------

# Who a text was for, by its recipient's kind (domain/sms/recipients.py), in words.
RECIPIENT_KINDS = {"on_duty": "On-duty professional", "duty_lead": "Duty lead", "referrer": "Referring professional",
                   "supervisor": "Supervisor"}
# What a text was about, by its template (workflows' SMS templates, service/sms.py): the call's reference
# says which call; nothing about the patient.
TEXT_ABOUT = {"referral_sent": "New referral to {service}",
              "referral_accepted": "Update to the referrer: referral to {service} accepted",
              "referral_declined": "Update to the referrer: referral to {service} declined",
              "referral_completed": "Update to the referrer: referral to {service} completed",
              "escalation": "Escalation: a referral to {service} is overdue or was escalated",
              "escalation_call": "Escalation: a call's clock ran out",
              "escalation_digest": "Escalations held back, in one text",
              # To a duty lead, about a colleague's OFF / ON (service/availability.py): not about a call.
              "availability_off": "To the duty lead: a professional texted OFF (unavailable)",
              "availability_off_alone": "To the duty lead: a professional texted OFF, nobody else on duty",
              "availability_on": "To the duty lead: a professional texted ON (back)"}
FOLLOW_UP_NOTE_MAX = 2000  # as the other notes and reasons (domain/access.py NOTE_MAX, escalation reasons)


@dataclass(frozen=True)
class TextRecipient:
    """Who a text was for, for the supervisor to ring: the person's name when the number is a professional's
    or a user's, and what they are (their service, or their role and centre)."""

    kind: str  # "On-duty professional", "Duty lead", ...
    name: str | None  # None: the number is nobody's on record (a caller's, a duty lead's phone)
    detail: str | None  # "District nursing (DN)"; "supervisor, CNH"


@dataclass(frozen=True)
class SmsException:
    id: str
    call_ref: str
    # The full number, for the supervisor to ring (a tel: link); never logged. None: the text is about a
    # call the viewer may not see, or its recipient is part of its record (a referrer's name and mobile:
    # on_call_page).
    to: str | None
    recipient_kind: str
    template: str
    status: str
    error_code: int | None
    error_message: str | None
    created_at: datetime
    age_seconds: int
    recipient: TextRecipient | None = None
    about: str = ""  # "New referral to District nursing (DN)": what the text was about, no patient details
    centre: str | None = None  # the call's centre (None: not about a call, or no such call)
    may_follow_up: bool = True  # the viewer may act on the text's call (service/access.py)
    # The recipient is the call's referrer, whose name and number are the call's record data: shown on the
    # call's page, where each view is logged (docs/information-governance.md, section 7), not on the panel.
    on_call_page: bool = False


@dataclass(frozen=True)
class UntextedReferral:
    """A referral whose texts reached nobody: its call, the service, when, and why in words."""

    call_ref: str
    service: str
    about: str  # "Community (district) nursing (DN)"
    created_at: datetime
    reason: str


@dataclass(frozen=True)
class RotaGap:
    """A service open by its calendar in the next 24 hours with nobody rostered for some of it."""

    service: str
    about: str  # "Crisis response team (CRT)"
    words: str  # "nobody rostered 20:00–08:00 tonight (12 hours)"
    starts_at: datetime  # the first uncovered instant, for the order


@dataclass(frozen=True)
class FailedJob:
    id: str
    func_name: str
    failed_at: datetime | None
    error: str  # the exception's last line only


@dataclass
class Exceptions:
    undelivered: list[SmsException]
    undelivered_total: int
    failed: list[SmsException]
    failed_total: int
    jobs: list[FailedJob]
    jobs_total: int
    jobs_error: str | None  # Redis not reachable: said so, the rest of the panel still shows
    # The audit trail's verification (service/audit.py): the latest run found a break, or none has
    # succeeded for 48 hours.
    trail: TrailStatus | None = None
    # Referrals of the last 24 hours whose texts reached nobody: nobody on duty, no duty lead and no
    # supervisor with a mobile (service/rotas.referral_recipients); someone must phone the service.
    untexted: list[UntextedReferral] = field(default_factory=list)
    untexted_total: int = 0
    # Services open by their calendar in the next 24 hours with nobody rostered for some of that time
    # (docs/domain.md, "Rotas"), soonest first. Not counted in `empty`: the gaps are ahead, not a failure
    # to follow up, and the panel lists them apart from its "No exceptions" line.
    rota_gaps: list[RotaGap] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.undelivered_total or self.failed_total or self.jobs_total or self.jobs_error
                    or self.untexted_total or (self.trail is not None and self.trail.problem))


def _service_words(svc: Services, code: str | None) -> str | None:
    if not code:
        return None
    service = svc.directory.services.get(code)
    return f"{service.name} ({code})" if service is not None else code


def _recipient(svc: Services, r: Any, pros: dict[Any, Any], people: dict[str, Any]) -> TextRecipient:
    """The text's recipient in words: the professional it was sent to (by id, else by the number), a user
    whose mobile it is, a service's duty lead (directory.yaml), or the referring professional (the caller)."""
    kind = RECIPIENT_KINDS.get(r.recipient_kind, r.recipient_kind.replace("_", " ").capitalize())
    pro = pros.get(r.professional_id) or pros.get(r.to)
    if pro is not None:
        return TextRecipient(kind, pro.name, _service_words(svc, pro.service))
    person = people.get(r.to)
    if person is not None:
        return TextRecipient(kind, person.display_name,
                             ", ".join(part for part in (person.role, person.centre) if part))
    if r.recipient_kind == "duty_lead":
        led = next((code for code, service in svc.directory.services.items() if service.duty_lead == r.to),
                   r.service)
        return TextRecipient(kind, None, _service_words(svc, led))
    if r.recipient_kind == "referrer":
        return TextRecipient(kind, r.caller_name or None, None)
    return TextRecipient(kind, None, _service_words(svc, r.service))


def _about(svc: Services, r: Any) -> str:
    about: str = TEXT_ABOUT.get(r.template, r.template.replace("_", " ").capitalize())
    return about.replace("{service}", _service_words(svc, r.service) or "a service")


# What a viewer may do with a text's call: (see who it was for, follow it up).
Reach = dict[str, tuple[bool, bool]]


def _reach(uow: Any, viewer: Actor | None, now: datetime, *found: tuple[list[Any], int]) -> Reach:
    """Per call on the panel, what the access policy lets the viewer do: see who its texts were for (a
    referrer's name and number are the call's record data: `view`) and follow them up (a note on the
    call's record: `act`). The panel lists every centre's texts by reference and code
    (docs/information-governance.md, section 3); the rest is for those with a relationship. The facts come
    with the rows (no call loaded per row); the referral services are left out, as own_service is a
    professional's relationship and the panel a supervisor's, so they could only refuse less. No viewer,
    or no call with that reference: neither."""
    out: Reach = {}
    for r in (r for listed, _ in found for r in listed):
        if not r.call_ref or r.call_ref in out:
            continue
        if viewer is None or r.centre is None:
            out[r.call_ref] = (False, False)
            continue
        record = policy.RecordFacts(centre=r.centre, centres=tuple((r.centre_path or r.centre).split()))
        out[r.call_ref] = (access.permitted_on(uow, viewer, r.call_ref, record, "view", now),
                           access.permitted_on(uow, viewer, r.call_ref, record, "act", now))
    return out


def _sms_rows(svc: Services, now: datetime, found: tuple[list[Any], int],
              who: tuple[dict[Any, Any], dict[str, Any]], reach: Reach) -> tuple[list[SmsException], int]:
    rows, total = found
    pros, people = who
    out = []
    for r in rows:
        # A text about no call (a duty lead's, about a colleague's OFF) is staff to staff: any supervisor.
        seen, may_act = reach.get(r.call_ref, (False, False)) if r.call_ref else (True, True)
        on_call_page = seen and r.recipient_kind == "referrer" and bool(r.call_ref)
        shown = seen and not on_call_page
        recipient = (_recipient(svc, r, pros, people) if shown else
                     TextRecipient(RECIPIENT_KINDS.get(r.recipient_kind, r.recipient_kind.replace("_", " ")
                                                       .capitalize()), None, None))
        # Twilio's error message can quote the number it refused ("Invalid 'To' Phone Number: +44..."): the
        # number is shown (above) only to those who may see it, so never in the message.
        out.append(SmsException(id=r.id, call_ref=r.call_ref, to=r.to if shown else None,
                                recipient_kind=r.recipient_kind, template=r.template, status=r.status,
                                error_code=r.error_code,
                                error_message=redact(r.error_message) if r.error_message else r.error_message,
                                created_at=r.created_at, age_seconds=_seconds(now, r.created_at) or 0,
                                recipient=recipient, about=_about(svc, r), centre=r.centre, may_follow_up=may_act,
                                on_call_page=on_call_page))
    return out, total


def _recipients(uow: Any, *found: tuple[list[Any], int]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """The professionals (by id and by mobile) and users (by mobile) the texts went to, in two queries."""
    rows = [r for listed, _ in found for r in listed]
    pro_rows, user_rows = uow.dashboard.recipients({r.professional_id for r in rows if r.professional_id},
                                                   {r.to for r in rows})
    pros: dict[Any, Any] = {p.id: p for p in pro_rows} | {p.mobile: p for p in pro_rows}
    people: dict[str, Any] = {}
    for u in user_rows:  # the first user with that mobile (several may share a desk phone)
        people.setdefault(u.mobile, u)
    return pros, people


def _last_line(text: str | None) -> str:
    """The exception itself, without the traceback: the lines after the last indented (frame) line,
    e.g. "RuntimeError: gateway refused", joined; at most 300 characters. Redacted like a log line: RQ
    keeps the exception's text, which a database error fills with a row's values."""
    lines = [ln for ln in (text or "").rstrip().splitlines() if ln.strip()]
    start = max((i + 1 for i, ln in enumerate(lines) if ln[:1].isspace()), default=0)
    tail = " ".join(ln.strip() for ln in lines[start:]) or (lines[-1].strip() if lines else "")
    return redact(tail)[:300] or "(no exception recorded)"


def failed_registries(svc: Services) -> list[FailedJobRegistry]:
    """The failed jobs of each of the app's queues: the texts' and the SLA timers' (WORKER_QUEUES)."""
    from rq import Queue
    from rq.registry import FailedJobRegistry

    return [FailedJobRegistry(queue=Queue(name, connection=svc.redis())) for name in WORKER_QUEUES]


def failed_jobs(svc: Services) -> tuple[list[FailedJob], int]:
    """RQ's failed jobs on the app's queues, most recent first. Only id, function name, time and the
    exception's last line: job arguments are never shown."""
    from rq.job import Job

    # Each registry's most recent EXCEPTIONS_LIMIT (scored by when they expire: their failure plus the
    # one failure_ttl every job is given), merged.
    total, scored = 0, list[tuple[Any, float]]()
    for registry in failed_registries(svc):
        total += registry.count
        scored += cast("list[tuple[Any, float]]",
                       svc.redis().zrevrange(registry.key, 0, EXCEPTIONS_LIMIT - 1, withscores=True))
    ids = [(i.decode() if isinstance(i, bytes) else i) for i, _ in sorted(scored, key=lambda s: -s[1])]
    ids = ids[:EXCEPTIONS_LIMIT]
    out: list[FailedJob] = []
    for job_id, job in zip(ids, Job.fetch_many(ids, connection=svc.redis()) if ids else []):
        if job is None:  # expired between the two reads
            continue
        result = None
        try:
            result = job.latest_result()
        except Exception:  # noqa: BLE001 - an unreadable result still lists the job
            log.warning("failed job %s: result unreadable", job_id)
        exc = getattr(result, "exc_string", None) if result is not None else None
        failed_at = _utc(job.ended_at or (result.created_at if result is not None else None))
        out.append(FailedJob(id=job_id, func_name=_func_name(job), failed_at=failed_at, error=_last_line(exc)))
    return out, total


def _func_name(job: Job) -> str:
    try:
        return job.func_name or "(unknown)"
    except Exception:  # noqa: BLE001 - a job whose function cannot be read still lists
        return "(unknown)"


def exceptions(svc: Services, viewer: Actor | None = None) -> Exceptions:
    """The exceptions panel as viewer sees it: who a text about a call was for, and its follow-up, only
    where the access policy lets them (_reach); without a viewer, for no call."""
    now = svc.clock.now()
    window = now - EXCEPTIONS_WINDOW
    with svc.uow() as uow:
        late = uow.dashboard.undelivered_texts(NOT_DELIVERED_YET, now - UNDELIVERED_AFTER, window, EXCEPTIONS_LIMIT)
        gone = uow.dashboard.failed_texts(PERMANENTLY_FAILED, window, EXCEPTIONS_LIMIT)
        who = _recipients(uow, late, gone)
        reach = _reach(uow, viewer, now, late, gone)
        nobody_rows, untexted_total = uow.rotas.choices_with_step(NOBODY, window, EXCEPTIONS_LIMIT)
    untexted = [UntextedReferral(r.call_ref, r.service, _service_words(svc, r.service) or r.service, r.created_at,
                                 r.reason) for r in nobody_rows]
    rota_gaps = rota_gaps_ahead(svc, now)
    undelivered, undelivered_total = _sms_rows(svc, now, late, who, reach)
    failed, failed_total = _sms_rows(svc, now, gone, who, reach)
    jobs: list[FailedJob] = []
    jobs_total, jobs_error = 0, None
    try:
        jobs, jobs_total = failed_jobs(svc)
    except Exception as exc:  # noqa: BLE001 - Redis down must not take the dashboard with it
        log.warning("failed jobs unavailable: %s", type(exc).__name__)
        jobs_error = "Background job status is unavailable: the queue (Redis) cannot be reached."
    return Exceptions(undelivered=undelivered, undelivered_total=undelivered_total, failed=failed,
                      failed_total=failed_total, jobs=jobs, jobs_total=jobs_total, jobs_error=jobs_error,
                      trail=audit.status(svc), untexted=untexted, untexted_total=untexted_total,
                      rota_gaps=rota_gaps)


def rota_gaps_ahead(svc: Services, now: datetime) -> list[RotaGap]:
    """The rota gaps of the next 24 hours per service, in words (service/rotas.outlook: once a minute)."""
    ahead = rotas.outlook(svc, now)
    found = [RotaGap(code, _service_words(svc, code) or code,
                     "nobody rostered " + " and ".join(gap_words(start, end, ahead.minute, ahead.window_end)
                                                       for start, end in seen.gaps.intervals),
                     seen.gaps.intervals[0][0])
             for code, seen in ahead.services.items() if seen.gaps]
    return sorted(found, key=lambda g: (g.starts_at, g.service))


# -- following up a text not delivered ----------------------------------------------------------------

class FollowUpStale(ValueError):
    """The text is no longer on the exceptions panel: followed up already, or delivered since."""


def _on_panel(status: str, created_at: datetime, now: datetime) -> bool:
    """Whether a text, not followed up, is one the exceptions panel lists for a follow-up."""
    return status in PERMANENTLY_FAILED or (status in NOT_DELIVERED_YET and created_at <= now - UNDELIVERED_AFTER)


def exception_text(svc: Services, sms_id: str, viewer: Actor | None = None) -> SmsException | None:
    """One text as the exceptions panel shows it to viewer, while it is there to follow up (else None)."""
    now = svc.clock.now()
    with svc.uow() as uow:
        found = uow.dashboard.text_on_panel(sms_id)
        who = _recipients(uow, found)
        reach = _reach(uow, viewer, now, found)
    rows, _ = _sms_rows(svc, now, found, who, reach)
    return next((m for m in rows if _on_panel(m.status, m.created_at, now)), None)


def _may_follow_up(uow: Any, actor: Actor, call_ref: str | None, now: datetime) -> None:
    """A follow-up writes a note on the text's call's record: the access policy's `act` on that call, as
    every change (docs/information-governance.md, section 3); OutsideRelationship (a 403) otherwise. A text
    about no call (a duty lead's, about a colleague's OFF) is any supervisor's."""
    if not call_ref:
        return
    call = uow.calls.get(call_ref)
    if call is None:  # never for a stored text: refused rather than followed up on no record
        raise Forbidden("This text's call is not on record: nothing was marked followed up.")
    access.authorise(uow, actor, call, "act", now)


def _check_note(note: Any) -> str:
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput({"note": "Enter a note: say who you spoke to and what was agreed"})
    if len(note) > FOLLOW_UP_NOTE_MAX:
        raise InvalidInput({"note": f"Enter a note of {FOLLOW_UP_NOTE_MAX} characters or fewer"})
    if problem := text_problem(note, multiline=True, field="note"):  # a NUL, a bidi override: never stored
        raise InvalidInput({"note": problem})
    return note.strip()


def mark_followed_up(svc: Services, actor: Actor, sms_id: str, note: Any) -> str:
    """A supervisor rang the recipient of a text that was not delivered: the text is marked followed up
    (who, when, the note) and leaves the exceptions panel; an audit event on the call records it, in the
    same unit of work. Refused: no such text (NotFound), a text about a call the access policy does not let
    the supervisor change (OutsideRelationship, before the note is looked at: nothing of the text is shown
    back), a note missing or too long (InvalidInput), a text followed up already or delivered since
    (FollowUpStale). Returns the text's call reference."""
    if actor.role not in CAPABILITIES["supervisor.view"]:
        raise Forbidden(f"only supervisors follow up texts; {actor.username} is a {actor.role}")
    now = svc.clock.now()
    with svc.uow() as uow:
        text = uow.dashboard.exception_text(sms_id)
        if text is None:
            raise NotFound(f"no text {sms_id}")
        _may_follow_up(uow, actor, text.call_ref, now)
        note = _check_note(note)
        if text.followed_up_at is not None:
            raise FollowUpStale("This text was followed up already: it is no longer on the exceptions panel.")
        if not _on_panel(text.status, _utc(text.created_at) or now, now):
            raise FollowUpStale(f"This text is now {text.status.replace('_', ' ')}: there is nothing to follow "
                                "up.")
        if not uow.dashboard.mark_followed_up(sms_id, at=now, by=actor.username, note=note):
            raise FollowUpStale("This text was followed up already: it is no longer on the exceptions panel.")
        uow.add_event(AuditEvent(
            call_ref=text.call_ref, entity="text", entity_id=sms_id, actor=actor.username, at=now,
            from_state=text.status, to_state=text.status, trigger="followed_up", reason=note,
            data={"recipient": text.recipient_kind, "template": text.template}))
        uow.commit()
    log.info("text %s followed up by %s", sms_id, actor.username)  # never the number or the note
    return str(text.call_ref)


class JobNotFound(LookupError):
    pass


def requeue_failed_job(svc: Services, job_id: str, by: str) -> None:
    """Put a failed job back on its queue (it runs again from the start: send jobs never text twice)."""
    from rq.exceptions import InvalidJobOperation, InvalidJobOperationError, NoSuchJobError

    registry = next((r for r in failed_registries(svc) if job_id in r), None)
    if registry is None:
        raise JobNotFound(job_id)
    try:
        registry.requeue(job_id)
    except (InvalidJobOperation, InvalidJobOperationError, NoSuchJobError) as exc:
        raise JobNotFound(job_id) from exc
    log.info("failed job %s requeued by %s", job_id, by)


__all__ = ["figures", "calls_behind", "exceptions", "requeue_failed_job", "mark_followed_up", "exception_text",
           "Dashboard", "Figures", "Rag", "Drill", "DrillRow", "Exceptions", "TextRecipient", "UnknownMeasure",
           "JobNotFound", "FollowUpStale", "FOLLOW_UP_NOTE_MAX", "CENTRE_MEASURES",
           "SERVICE_MEASURES", "AMBER_SHARE", "amber_thresholds", "SIGNED_IN_WITHIN",
           "UNDELIVERED_AFTER", "RotaGap", "rota_gaps_ahead", "gap_words"]
