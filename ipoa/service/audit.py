"""Verifying the tamper-evident audit trail (domain/audit_chain.py): walk each chain (audit, access,
security) and report its first broken link; record every run in `audit_verifications`, whose latest
results the supervisors' exceptions panel shows. Run by `flask --app ipoa audit verify`, nightly by the
timer scheduler (workers/scheduler.py), which decides with `nightly_due` below.

A walk reads the chain in pages, each page in a short transaction of its own: a walk over millions of
events holds no lock (SQLite's transactions take the write lock) and no snapshot open for its whole
length. The head is read first and only the events it covers are checked; events appended while the
walk runs are left for the next run. Events the head does not cover are then looked for the other way
round, the highest number first and the head after it: the application numbers an event and moves the
head in one transaction, so any event above a head read later than it was added outside the application.
A run whose chains all verify is still broken if they hold fewer events than an earlier successful run
counted (_fewer_than_before): the last events deleted and a head moved back to match.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, overload
from zoneinfo import ZoneInfo

from ..adapters.audit_queries import Unreadable
from ..domain.audit_chain import CHAINS, Break, Head, verify

if TYPE_CHECKING:
    from ..adapters.audit_queries import RunRow
    from ..bootstrap import Services

log = logging.getLogger(__name__)

LONDON = ZoneInfo("Europe/London")
PAGE = 2000  # events read per transaction
# The nightly run starts at this local time (Europe/London): after the evening's calls, before the day's.
NIGHTLY_AT = time(2, 30)
# A run neither finished nor updated within this long has died (its process killed): it no longer counts
# as running, and tonight's run is tried again.
STALE_AFTER = timedelta(hours=6)
# After a failed attempt to run tonight's verification (it died, or could not finish), wait this long
# before trying again.
RETRY_AFTER = timedelta(minutes=30)
# The exceptions panel says so when no verification has succeeded for this long.
SUCCESS_WITHIN = timedelta(hours=48)


# -- verifying --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainResult:
    chain: str
    events: int  # events checked
    head: Head | None  # the head the walk checked against (None: the chain has no head record)
    problem: Break | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Verification:
    id: int
    by: str
    started_at: datetime
    finished_at: datetime
    chains: list[ChainResult]
    # Fewer events than an earlier successful run counted (see `_fewer_than_before`): a line of its own.
    shrunk: str | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains) and self.shrunk is None

    @property
    def events(self) -> int:
        return sum(c.events for c in self.chains)

    @property
    def problem(self) -> str | None:
        """One line per broken chain (what audit_verifications.problem holds)."""
        lines = [str(c.problem) for c in self.chains if c.problem]
        if self.shrunk is not None:
            lines.append(self.shrunk)
        return "\n".join(lines) or None


def _head(svc: Services, chain: str) -> Head | None:
    with svc.uow() as uow:
        return uow.audit_trail.head(chain)


# An event whose values cannot be read back, or hashed, was changed outside the application: a break
# there, reported as any other (exit status 1), never a verification that could not finish.
UNREADABLE = "the event cannot be read (a value changed outside the application)"


class _UnreadableEvent(Exception):
    def __init__(self, seq: int):
        super().__init__(seq)
        self.seq = seq


def _rows(svc: Services, chain: str, upto: int | None,
          counter: list[int]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The chain's events in seq order, up to seq `upto` (None: all), a page per transaction; an event
    that cannot be read raises _UnreadableEvent when the walk reaches it (every event before it checked)."""
    last = None
    while True:
        with svc.uow() as uow:
            page = uow.audit_trail.page(chain, last, upto, PAGE)
        if not page:
            return
        for r in page:
            if isinstance(r, Unreadable):
                raise _UnreadableEvent(r.seq)
            counter[0] += 1
            yield r
        last = page[-1][0]


def verify_chain(svc: Services, chain: str) -> ChainResult:
    """Walk one chain: its first broken link (changed, deleted, inserted or reordered events, or one that
    cannot be read), or none."""
    head = _head(svc, chain)
    counter = [0]
    rows = _rows(svc, chain, head.seq if head is not None else None, counter)
    try:
        problem = verify(chain, rows, head)
    except _UnreadableEvent as exc:  # the walk reached it: every event before it links
        problem = Break(chain, exc.seq, UNREADABLE)
    except (ValueError, TypeError):
        # The last event handed over could not be hashed (domain/audit_chain.canonical). verify checked its
        # number first, and the numbers run 1, 2, 3, ...: it is the counter's.
        problem = Break(chain, counter[0], UNREADABLE)
    if problem is None:
        # Events above the head. Highest number first, the head second: see the module's docstring.
        with svc.uow() as uow:
            top = uow.audit_trail.top_seq(chain)
        later = _head(svc, chain)
        covered = later.seq if later is not None else 0
        if top is not None and top > covered:
            problem = Break(chain, covered + 1, f"events after {covered}, the last the head records, were "
                                                "added outside the application (inserted)")
    return ChainResult(chain, counter[0], head, problem)


def verify_all(svc: Services, by: str, chains: tuple[str, ...] = CHAINS) -> Verification:
    """Verify every chain and record the run in audit_verifications (by: "cli:<os user>", "scheduler",
    or "web:<username>"). A run that cannot finish (the database went away) is recorded as such, with
    ok left empty: it neither passes nor fails the trail, and tonight's run is tried again."""
    started = svc.clock.now()
    with svc.uow() as uow:
        run_id = uow.audit_trail.start_run(started, by[:80])
        uow.commit()
    try:
        results = [verify_chain(svc, chain) for chain in chains]
    except BaseException as exc:  # noqa: BLE001 - interrupted (Ctrl-C, SIGTERM) as well as errors
        why = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else type(exc).__name__
        try:
            _finish(svc, run_id, ok=None, events=None, problem=f"The verification could not finish ({why}).")
        except Exception:  # noqa: BLE001 - the database is what failed: the run stays unfinished
            log.warning("audit verification %s could not be recorded as unfinished", run_id)
        raise
    shrunk = _fewer_than_before(svc, results) if chains == CHAINS else None
    finished = svc.clock.now()
    outcome = Verification(run_id, by, started, finished, results, shrunk)
    _finish(svc, run_id, ok=outcome.ok, events=outcome.events, problem=outcome.problem, at=finished)
    if outcome.ok:
        log.info("audit verification %s: %d events, all chains intact", run_id, outcome.events)
    else:
        # Not ok: a chain has a break, so problem holds its line (the `or`: for the type only).
        log.error("audit verification %s FAILED: %s", run_id, (outcome.problem or "").replace("\n", "; "))
    return outcome


def _fewer_than_before(svc: Services, results: list[ChainResult]) -> str | None:
    """The chains only grow (nothing is deleted, retention included: docs/audit-and-retention.md), so a trail
    whose chains each verify but which holds fewer events than an earlier successful run counted has lost its
    last events, with the heads moved back to match: what the chains cannot show on their own
    (docs/audit-and-retention.md, "What the check detects"). Checked only when every chain verifies (a
    broken one says more, and counts only up to its break), against all chains' total, as each run records."""
    if not all(c.ok for c in results):
        return None
    with svc.uow() as uow:
        before = uow.audit_trail.most_events_verified()
    now = sum(c.events for c in results)
    if before is None or now >= before[0]:
        return None
    count, at = before
    return (f"the chains hold {now} events, fewer than the {count} the verification of "
            f"{_aware(at).astimezone(UTC):%Y-%m-%d %H:%M} UTC counted (events deleted at the end, and a head "
            "moved back to match)")


def _finish(svc: Services, run_id: int, *, ok: bool | None, events: int | None, problem: str | None,
            at: datetime | None = None) -> None:
    with svc.uow() as uow:
        uow.audit_trail.finish_run(run_id, finished_at=at or svc.clock.now(), ok=ok, events=events,
                                   problem=problem)
        uow.commit()


# -- runs: what happened, and whether tonight's is due ---------------------------------------------

@dataclass(frozen=True)
class Run:
    """A row of audit_verifications."""

    id: int
    started_at: datetime
    finished_at: datetime | None = None
    by: str = ""
    ok: bool | None = None  # None: still running, died, or could not finish
    events: int | None = None
    problem: str | None = None

    def running(self, now: datetime) -> bool:
        return self.finished_at is None and now - self.started_at < STALE_AFTER

    @property
    def completed(self) -> bool:
        """It checked every chain and said whether the trail is intact."""
        return self.finished_at is not None and self.ok is not None

    def breaks(self) -> list[BreakLine]:
        return [BreakLine.parse(line) for line in (self.problem or "").splitlines() if line.strip()]


_BREAK = re.compile(r"^(?P<chain>\w+) chain broken at (?:event (?P<seq>\d+)|the head): (?P<problem>.*)$")


@dataclass(frozen=True)
class BreakLine:
    """One chain's break as a run recorded it (str(Break)), split for display."""

    chain: str | None
    seq: int | None
    problem: str

    @classmethod
    def parse(cls, line: str) -> BreakLine:
        m = _BREAK.match(line.strip())
        if m is None:
            return cls(None, None, line.strip())
        return cls(m["chain"], int(m["seq"]) if m["seq"] else None, m["problem"])


def _run(r: RunRow) -> Run:
    return Run(id=r.id, started_at=r.started_at, finished_at=r.finished_at, by=r.by, ok=r.ok, events=r.events,
               problem=r.problem)


def recent_runs(svc: Services, since: datetime) -> list[Run]:
    """Runs started since then, oldest first."""
    with svc.uow() as uow:
        rows = uow.audit_trail.runs_since(since)
    return [_run(r) for r in rows]


def running(svc: Services, now: datetime | None = None) -> Run | None:
    """A run still going (started, not finished, not yet given up as dead)."""
    now = now or svc.clock.now()
    return next((r for r in reversed(recent_runs(svc, now - STALE_AFTER)) if r.running(now)), None)


def tonight(now: datetime) -> datetime:
    """The start of the current night's slot: the latest NIGHTLY_AT (Europe/London) at or before now."""
    local = now.astimezone(LONDON)
    slot = datetime.combine(local.date(), NIGHTLY_AT, tzinfo=LONDON)
    if local < slot:
        slot = datetime.combine(local.date() - timedelta(days=1), NIGHTLY_AT, tzinfo=LONDON)
    return slot.astimezone(now.tzinfo)


def nightly_due(now: datetime, runs_: list[Run], last_attempt: datetime | None = None) -> bool:
    """Whether the scheduler should start a verification now: once per night, from NIGHTLY_AT
    (Europe/London) on. Not while one runs; not if one completed since tonight's NIGHTLY_AT (whoever
    started it: an operator's run at 02:45 is tonight's); and not within RETRY_AFTER of the scheduler's
    own last attempt (last_attempt) when that died or could not finish. A scheduler down at 02:30
    catches up when it starts. runs_: the runs started since at least tonight's NIGHTLY_AT."""
    if any(r.running(now) for r in runs_):
        return False
    slot = tonight(now)
    if any(r.completed and r.started_at >= slot for r in runs_):
        return False
    return not (last_attempt is not None and last_attempt >= slot and now - last_attempt < RETRY_AFTER)


# -- for the exceptions panel ----------------------------------------------------------------------

@dataclass(frozen=True)
class TrailStatus:
    failed: Run | None  # the latest completed run, when it found a break
    last_success: datetime | None  # when the latest successful run finished
    overdue: bool  # no success within SUCCESS_WITHIN (and there was something to verify)
    running: Run | None = None
    breaks: list[BreakLine] = field(default_factory=list)

    @property
    def problem(self) -> bool:
        return self.failed is not None or self.overdue


def status(svc: Services) -> TrailStatus:
    """The audit trail's verification, as the supervisors' exceptions panel shows it. A fresh system, with
    no run yet and nothing older than SUCCESS_WITHIN to verify, is not overdue."""
    now = svc.clock.now()
    with svc.uow() as uow:
        trail = uow.audit_trail
        latest = trail.latest_completed_run()
        success = trail.last_success()
        ever = trail.any_run()
        oldest = None
        if not ever:
            # Each chain's first event, by its key (the fragment asks every 2 s: no scan of a large table).
            firsts = [trail.first_event_at(c) for c in CHAINS]
            oldest = min((_aware(f) for f in firsts if f is not None), default=None)
        in_progress = trail.latest_unfinished_run(now - STALE_AFTER)
    success = _aware(success)
    failed = _run(latest) if latest is not None and latest.ok is False else None
    something_to_verify = ever or (oldest is not None and now - oldest > SUCCESS_WITHIN)
    overdue = something_to_verify and (success is None or now - success > SUCCESS_WITHIN)
    return TrailStatus(failed=failed, last_success=success, overdue=overdue,
                       running=_run(in_progress) if in_progress is not None else None,
                       breaks=failed.breaks() if failed is not None else [])


@overload
def _aware(value: None) -> None: ...


@overload
def _aware(value: datetime | str) -> datetime: ...


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands back text, and no zone."""

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = ["verify_chain", "verify_all", "Verification", "ChainResult", "Run", "BreakLine", "recent_runs",
           "running", "tonight", "nightly_due", "status", "TrailStatus", "NIGHTLY_AT", "STALE_AFTER",
           "RETRY_AFTER", "SUCCESS_WITHIN"]
