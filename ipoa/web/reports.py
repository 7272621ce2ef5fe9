"""Reports for a period and a centre or service, with charts, CSV and the board view.

Every route takes the same GET parameters: from, to (Europe/London days, inclusive; both blank: the last
30 days, today included), centre and service (codes; blank: all). The form sends each date as day, month
and year boxes (from-day, from-month, from-year...), never the browser's date picker, whose order follows
its locale (issue 12); the links between the views, and older links, carry them as YYYY-MM-DD."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from ..domain.reporting.board import minutes_text
from ..domain.reporting.figures import Rate, Report
from ..domain.reporting.period import ReportInputError, parse_params
from ..entry.request_context import services
from ..entry.role_check import requires
from ..service import report_export
from ..service import reports as report_service
from . import charts
from .form_values import has_parts, part_names, typed

bp = Blueprint("reports", __name__, url_prefix="/reports")

DATES = ("from", "to")
# What a report's address may carry: a link's YYYY-MM-DD dates, the form's date boxes, the scope.
_PARAMS = (*DATES, *(p for name in DATES for p in part_names(name)), "centre", "service")


def _boxes(name: str, day: date) -> dict[str, str]:
    return dict(zip(part_names(name), (str(day.day), str(day.month), str(day.year)), strict=True))


def _typed(name: str) -> dict[str, str]:
    """A date's boxes as the form shows them again: what was typed, or a link's YYYY-MM-DD in them."""
    if has_parts(request.args, name):
        return typed(request.args, name)
    try:
        return _boxes(name, date.fromisoformat((request.args.get(name) or "").strip()))
    except ValueError:
        return {}


def _inputs():
    """(period, scope, values, query, errors, error_parts): values echo the form; query carries the report
    to its other views (YYYY-MM-DD dates once they are read); errors is {field: message} or {}."""
    svc = services()
    values = {k: (request.args.get(k) or "").strip() for k in ("centre", "service")}
    try:
        period, scope = parse_params(
            request.args, now=svc.clock.now(), centres=svc.directory.centres, services=svc.directory.services)
    except ReportInputError as exc:
        for name in DATES:
            values.update(_typed(name))
        given = {k: v for k in _PARAMS if (v := (request.args.get(k) or "").strip())}
        return None, None, values, urlencode(given), exc.errors, exc.parts
    values.update({**_boxes("from", period.first), **_boxes("to", period.last),
                   "centre": scope.centre or "", "service": scope.service or ""})
    query = {"from": period.first.isoformat(), "to": period.last.isoformat(), "centre": scope.centre,
             "service": scope.service}
    return period, scope, values, urlencode({k: v for k, v in query.items() if v}), {}, {}


def _form_context(values, query, errors, error_parts) -> dict:
    svc = services()
    return {
        "values": values, "errors": errors, "error_parts": error_parts, "query": query,
        "centre_choices": [(c.code, f"{c.code} – {c.name}") for c in svc.directory.centres.values()],
        "service_choices": [(s.code, f"{s.code} – {s.name}") for s in svc.directory.services.values()],
    }


def _invalid(template: str, values, query, errors, error_parts):
    return render_template(template, report=None, **_form_context(values, query, errors, error_parts)), 400


def _day_label(d) -> str:
    return f"{d.day} {d:%b}"


def _charts(report: Report) -> list[dict]:
    period, days = report.period, report.days
    target = services().catalogue.board.accepted_in_sla  # workflows/board.yaml
    out = []
    if report.scope.calls_apply:
        total = report.calls_logged or 0
        busiest = max(days, key=lambda d: d.calls_logged) if days else None
        desc = (f"{total} calls logged from {period.label}"
                + (f"; the busiest day was {_day_label(busiest.day)} with {busiest.calls_logged}."
                   if total and busiest is not None else "."))
        out.append({"id": "chart-calls", "caption": "Calls logged per day",
                    "svg": charts.bar_chart("chart-calls", "Calls logged per day", desc,
                                            [_day_label(d.day) for d in days], [d.calls_logged for d in days],
                                            y_label="Calls")})
    weekly = period.length > 14
    if weekly:
        points = [(f"w/c {_day_label(first)}", rate) for first, rate in report.weeks()]
    else:
        points = [(_day_label(d.day), Rate(d.accepted_in_sla, d.acceptance_judged)) for d in days]
    pct = report.accepted_in_sla.pct
    desc = (f"Referrals accepted within their SLA clock, {'by week' if weekly else 'by day'} (weeks start on the "
            f"period's first day). Over the period: "
            + ("no referral was judged." if pct is None else
               f"{pct:.1f}% ({report.accepted_in_sla.hits} of {report.accepted_in_sla.total})")
            + f"; target {target:g}%. Days with no referral judged are gaps.")
    out.append({"id": "chart-accepted", "caption": "% of referrals accepted within SLA",
                "svg": charts.line_chart("chart-accepted", "% of referrals accepted within SLA", desc,
                                         [p[0] for p in points], [p[1].pct for p in points],
                                         target=target,
                                         y_label="Accepted within SLA")})
    bands = report.acceptance_bands()
    t = report.time_to_acceptance
    desc = (f"How long the {t.count} accepted referrals waited from being sent to being accepted: "
            + ", ".join(f"{label}: {n}" for label, n in bands)
            + (f". Median {minutes_text(t.median)}, 90th percentile "
               f"{minutes_text(t.p90)}." if t.count else "."))
    out.append({"id": "chart-acceptance", "caption": "Time to acceptance",
                "svg": charts.bar_chart("chart-acceptance", "Time to acceptance", desc,
                                        [b[0] for b in bands], [b[1] for b in bands], y_label="Referrals")})
    for c in out:
        c["svg"] = Markup(c["svg"])  # built from escaped text only (charts.py)
    return out


@bp.get("/")
@requires("reports.view")
def index():
    period, scope, values, query, errors, error_parts = _inputs()
    if errors:
        return _invalid("reports.html", values, query, errors, error_parts)
    report = report_service.build_report(services(), period, scope)
    return render_template("reports.html", report=report, measures=report_export.measure_rows(report),
                           phone_verdicts=report_service.phone_verdicts(services(), report),
                           charts=_charts(report), minutes=minutes_text,
                           basis_label=report_export.basis_label,
                           **_form_context(values, query, {}, {}))


@bp.get("/board")
@requires("reports.view")
def board():
    period, scope, values, query, errors, error_parts = _inputs()
    if errors:
        return _invalid("report_board.html", values, query, errors, error_parts)
    current, previous, rows = report_service.board_view(services(), period, scope)
    return render_template("report_board.html", report=current, previous=previous,
                           rows=rows, **_form_context(values, query, {}, {}))


@bp.get("/export.csv")
@requires("reports.view")
def export_csv():
    period, scope, _values, _query, errors, _parts = _inputs()
    if errors:
        return Response("Report not exported: " + "; ".join(errors.values()) + "\n", status=400,
                        mimetype="text/plain")
    report = report_service.build_report(services(), period, scope)
    headers = {"Content-Disposition": f'attachment; filename="{report_export.csv_filename(report)}"',
               "Cache-Control": "no-store"}
    return Response(report_export.report_csv(report), mimetype="text/csv", headers=headers)
