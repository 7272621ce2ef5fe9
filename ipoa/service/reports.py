"""Per-period reports for supervisors and boards (docs/domain.md, "What supervisors and boards look at"):
the use cases. A report reads its period's rows in one unit of work (its read model, uow.reports:
ipoa/adapters/report_queries.py) and works its figures out from them (ipoa/domain/reporting/measures.py,
which says how each cohort is followed); the board view sets two reports against the targets of
workflows/board.yaml."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain.reporting.board import BoardRow, BoardTargetError, board
from ..domain.reporting.figures import DayRow, Report
from ..domain.reporting.measures import call_measures, referral_measures, sms_measures
from ..domain.reporting.period import Period, Scope
from ..domain.reporting.workflow_terms import call_triggers, referral_terms
from ..domain.telephony.measures import Verdict, verdicts
from . import phone_measures

if TYPE_CHECKING:
    from ..bootstrap import Services

__all__ = ["board_view", "build_report", "phone_verdicts"]


def build_report(svc: Services, period: Period, scope: Scope) -> Report:
    now = svc.clock.now()
    report = Report(period=period, scope=scope, generated_at=now,
                    service_names={code: s.name for code, s in svc.directory.services.items()})
    days = {d: DayRow(d) for d in period.days()}
    start, end, centre, service = period.start, period.end, scope.centre, scope.service
    with svc.uow() as uow:
        rows = uow.reports
        # Every deployed version: a period's calls and referrals may have started on any.
        definitions = svc.engine().definitions()
        if scope.calls_apply:
            triggers = call_triggers(definitions)
            call_measures(report, days, now=now, triggers=triggers,
                          logged=rows.logged_calls(start, end, centre),
                          decisions=rows.call_decisions(start, end, centre, triggers.routing),
                          triage_clocks=rows.triage_clocks(start, end, centre),
                          transfers=rows.call_transfers(start, end, triggers.transfer))
            # The phone lines' measures: of the centre, or every centre's together (docs/domain.md).
            report.phone = phone_measures.for_period(svc, uow, start, end, centre, now)
            abandoned = phone_measures.abandoned_terms(svc)
            report.abandoned_after_seconds = int(abandoned.after.total_seconds())
            report.call_back_within_minutes = int(abandoned.call_back_within.total_seconds() // 60)
        referral_measures(report, days, now=now, terms=referral_terms(definitions),
                          sent=rows.sent_referrals(start, end, centre, service),
                          changes=rows.referral_changes(start, end, centre, service),
                          clocks=rows.referral_clocks(start, end, centre, service))
        sms_measures(report, days, rows.texts(start, end, centre, service))
    report.days = list(days.values())
    return report


def phone_verdicts(svc: Services, report: Report) -> list[Verdict]:
    """The report's phone measures against board.yaml's targets (none for a service's report)."""
    if report.phone is None:
        return []
    abandoned = phone_measures.abandoned_terms(svc)
    return verdicts(report.phone, phone_measures.targets(svc), abandoned_after=abandoned.after,
                    call_back_within=abandoned.call_back_within)


def board_view(svc: Services, period: Period, scope: Scope) -> tuple[Report, Report, list[BoardRow]]:
    """The period's report, the previous period's (of equal length) and the board's rows comparing them
    against the deployment's targets (workflows/board.yaml, loaded with the catalogue)."""
    targets = svc.catalogue.board
    if targets is None:  # load_catalogue always sets them; a catalogue made by hand may not
        raise BoardTargetError("the catalogue has no board targets (workflows/board.yaml)")
    current = build_report(svc, period, scope)
    previous = build_report(svc, period.previous(), scope)
    return current, previous, board(current, previous, targets)
