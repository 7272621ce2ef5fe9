"""A report as rows of text: the summary table of the report page, and the CSV download (the summary,
then one row per day) that ipoa/web/reports.py serves."""
from __future__ import annotations

import csv
import io
from typing import TypeVar

from ..domain.reporting.figures import DayRow, Report
from ..domain.sharing import BASES
from ..domain.spreadsheet import safe_cell

__all__ = ["DAY_COLUMNS", "basis_label", "csv_filename", "day_values", "measure_rows", "phone_rows", "report_csv"]

_T = TypeVar("_T")


def basis_label(basis: str | None) -> str:
    return "Not recorded (sent before the basis was recorded)" if basis is None else BASES.get(basis, basis)


def measure_rows(r: Report) -> list[tuple[str, str, str]]:
    """(measure, value, detail) for the summary table and the CSV; values as plain numbers or blank."""
    def num(v: float | None) -> str:
        return "" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))

    def mins(v: float | None) -> str:
        return "" if v is None else f"{v / 60:.1f}"

    na = "not applicable to one service"
    rows: list[tuple[str, str, str]] = []
    if r.scope.calls_apply:
        resolved, referred = _measured(r.resolved, "resolved"), _measured(r.referred, "referred")
        triage, in_sla = _measured(r.time_to_triage, "time_to_triage"), _measured(r.triage_in_sla, "triage_in_sla")
        rows += [
            ("Calls logged", num(r.calls_logged), ""),
            ("Resolved at first contact (tier 1) %", num(resolved.pct), f"{resolved.hits} of {resolved.total}"),
            ("Diverted to 999", num(r.diverted_999), ""),
            ("Referred %", num(referred.pct), f"{referred.hits} of {referred.total}"),
            ("Transfers between centres", num(r.transfers),
             "" if r.transfers_out is None else f"{r.transfers_out} out, {r.transfers_in} in"),
            ("Time to triage median (min)", mins(triage.median), f"{triage.count} calls"),
            ("Time to triage 90th percentile (min)", mins(triage.p90), f"{triage.count} calls"),
            ("Triaged within SLA %", num(in_sla.pct), f"{in_sla.hits} of {in_sla.total}"),
        ]
        rows += phone_rows(r)
    else:
        rows += [(name, "", na) for name in ("Calls logged", "Resolved at first contact (tier 1) %", "Referred %",
                                              "Transfers between centres", "Time to triage", "Phone calls")]
    accepted = f"{r.time_to_acceptance.count} accepted"
    rows += [
        ("Referrals sent", num(r.referrals_sent), ""),
        ("Time to acceptance median (min)", mins(r.time_to_acceptance.median), accepted),
        ("Time to acceptance 90th percentile (min)", mins(r.time_to_acceptance.p90), accepted),
        ("Accepted within SLA %", num(r.accepted_in_sla.pct), f"{r.accepted_in_sla.hits} of {r.accepted_in_sla.total}"),
        ("Declined", num(r.declined), ""),
    ]
    # By service, never by reason: a decline's reason is free text that can name the person
    # (docs/information-governance.md, section 3).
    rows += [(f"Declined: {code}", str(n), r.service_names.get(code, "")) for code, n in r.declined_by_service]
    rows += [(f"Shared: {basis_label(basis)}", str(n), basis or "") for basis, n in r.shared_by_basis]
    rows += [
        ("Responded within target %", num(r.responded_in_target.pct),
         f"{r.responded_in_target.hits} of {r.responded_in_target.total}"),
        ("Texts sent", num(r.sms_sent), f"{r.sms_recorded} recorded"),
        ("Texts delivered", num(r.sms_delivered), ""),
        ("Texts failed", num(r.sms_failed), ""),
    ]
    return rows


def phone_rows(r: Report) -> list[tuple[str, str, str]]:
    """The phone lines' measures (docs/domain.md, "Telephony measures"), each name starting "Phone: ".
    Counts only: never a caller's number."""
    p = _measured(r.phone, "phone")
    after, within = r.abandoned_after_seconds, r.call_back_within_minutes

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.1f}"

    answered, abandoned, back = p.answered_within_rate, p.abandoned_rate, p.called_back_rate
    return [
        ("Phone: calls offered", str(p.offered),
         # Out of hours includes a caller still queued at closing, who was offered (docs/domain.md).
         f"{p.overflowed} overflowed to another centre; {p.out_of_hours} out of hours "
         "(rang while closed, or still waiting at closing)"),
        ("Phone: calls answered", str(p.answered), f"{p.still_waiting} still waiting; {p.not_held} not held"),
        ("Phone: answered within 60 s %", num(answered.pct), f"{answered.hits} of {answered.total} answered"),
        (f"Phone: abandoned after {after} s %", num(abandoned.pct),
         f"{abandoned.hits} of {abandoned.total} offered; {p.short_abandons} hung up within {after} s"),
        ("Phone: average speed to answer (s)", num(p.average_speed_to_answer), f"{p.answered} answered"),
        ("Phone: longest wait (s)", num(p.longest_wait_seconds), f"{p.offered} offered"),
        (f"Phone: abandoned calls called back within {within} min %", num(back.pct),
         f"{back.hits} of {back.total}; {p.withheld} withheld, cannot be called back"),
    ]


def _measured(value: _T | None, measure: str) -> _T:
    """A calls measure of a report whose scope takes calls in: build_report (service/reports.py) sets them
    all then."""
    if value is None:
        raise ValueError(f"the report takes calls in but its {measure} was not worked out")
    return value


DAY_COLUMNS = ("date", "calls_logged", "resolved_first_contact", "referred", "transfers", "referrals_sent",
               "accepted_within_sla", "acceptance_judged", "declined", "sms_sent", "sms_delivered", "sms_failed")


def day_values(d: DayRow) -> list[str]:
    return [d.day.isoformat(), str(d.calls_logged), str(d.resolved), str(d.referred), str(d.transfers),
            str(d.referrals_sent), str(d.accepted_in_sla), str(d.acceptance_judged), str(d.declined),
            str(d.sms_sent), str(d.sms_delivered), str(d.sms_failed)]


def report_csv(report: Report) -> str:
    """The CSV download: the report's period and scope, its measures, then one row per day."""
    period, scope = report.period, report.scope
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["report", "ipoa per-period measures"])
    w.writerow(["from", period.first.isoformat()])
    w.writerow(["to", period.last.isoformat()])
    w.writerow(["scope", scope.label])
    w.writerow(["generated_at", report.generated_at.isoformat()])
    w.writerow([])
    w.writerow(["measure", "value", "detail"])
    for name, value, detail in measure_rows(report):
        w.writerow([safe_cell(name), value, safe_cell(detail)])  # names come from configuration files
    w.writerow([])
    w.writerow(DAY_COLUMNS)
    for d in report.days:
        w.writerow(day_values(d))
    return buf.getvalue()


def csv_filename(report: Report) -> str:
    period, scope = report.period, report.scope
    name = f"ipoa-report-{period.first.isoformat()}-to-{period.last.isoformat()}"
    name += "".join(f"-{code}" for code in (scope.centre, scope.service) if code)
    return f"{name}.csv"
