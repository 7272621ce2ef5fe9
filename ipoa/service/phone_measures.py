"""The telephony measures as the dashboard and the reports use them (issue 15, point 5; docs/domain.md,
"Telephony measures"): a period's phone legs and callbacks read in the caller's unit of work
(adapters/phone_measure_queries.py), worked out by the pure core (domain/telephony/measures.py), judged
against board.yaml's targets."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..domain.calendar import LONDON
from ..domain.reporting.period import london_midnight
from ..domain.reporting.workflow_terms import callback_terms
from ..domain.sla import AbandonedCalls
from ..domain.telephony.measures import PhoneMeasures, TelephonyTargets, Verdict, by_centre, phone_measures, verdicts

if TYPE_CHECKING:
    from ..adapters.unit_of_work import UnitOfWork
    from ..bootstrap import Services

__all__ = ["CentreLine", "abandoned_terms", "for_period", "targets", "today_by_centre"]


def abandoned_terms(svc: Services) -> AbandonedCalls:
    """sla.yaml's `abandoned_call` (its defaults without one)."""
    sla = svc.catalogue.sla
    return sla.abandoned if sla is not None else AbandonedCalls()


def targets(svc: Services) -> TelephonyTargets:
    board = svc.catalogue.board
    return board.telephony if board is not None else TelephonyTargets()


def for_period(svc: Services, uow: UnitOfWork, start: datetime, end: datetime, centre: str | None,
               now: datetime) -> PhoneMeasures:
    """One centre's measures for the period (None: every centre's together)."""
    terms = callback_terms(uow.engine(svc).definitions())
    rows = uow.phone_measures
    return phone_measures(centre, rows.period_legs(start, end, centre),
                          rows.callbacks_made(start, end, centre, waiting=terms.waiting, made=terms.made),
                          now=now, call_back_within=abandoned_terms(svc).call_back_within)


@dataclass(frozen=True)
class CentreLine:
    code: str
    name: str
    measures: PhoneMeasures
    verdicts: list[Verdict]
    # Callers waiting in the centre's queue now, whenever they rang: live, where the measures are today's
    # cohort (a caller who rang before midnight and still waits is waiting now).
    waiting_now: int = 0

    @property
    def met(self) -> int:
        return sum(1 for v in self.verdicts if v.met)

    @property
    def missed(self) -> int:
        return sum(1 for v in self.verdicts if v.met is False)


def today_by_centre(svc: Services, uow: UnitOfWork, now: datetime) -> list[CentreLine]:
    """Today's (Europe/London) measures of each centre whose line ipoa answers (a `voice` block in the
    directory), and of any other centre calls were put through to today or callers wait for now, in the
    directory's order; with each centre's callers waiting now, whenever they rang."""
    today = now.astimezone(LONDON).date()
    start, end = london_midnight(today), london_midnight(today + timedelta(days=1))
    terms = callback_terms(uow.engine(svc).definitions())
    rows = uow.phone_measures
    legs = rows.period_legs(start, end, None)
    made = rows.callbacks_made(start, end, None, waiting=terms.waiting, made=terms.made)
    abandoned = abandoned_terms(svc)
    codes = [c.code for c in svc.directory.centres.values() if c.voice is not None]
    waiting = rows.waiting_now()
    codes += sorted({leg.queue for leg in legs if leg.queue and leg.queue not in codes}
                    | {queue for queue in waiting if queue not in codes})
    measured = by_centre(codes, legs, made, now=now, call_back_within=abandoned.call_back_within)
    goals = targets(svc)
    return [CentreLine(code, c.name if (c := svc.directory.centres.get(code)) else code, m,
                       verdicts(m, goals, abandoned_after=abandoned.after,
                                call_back_within=abandoned.call_back_within), waiting.get(code, 0))
            for code, m in measured.items()]
