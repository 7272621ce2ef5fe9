"""Information governance pages: the supervisor's break-glass review list, and the centre's calls as an
identifiable CSV for case audits (each call in it recorded in the access log). See
docs/information-governance.md."""
from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from ..domain.access import BREAK_GLASS_REASONS
from ..domain.calendar import LONDON
from ..domain.spreadsheet import safe_cell
from ..domain.validation import day_in_range
from ..entry.request_context import actor, services
from ..entry.role_check import requires
from ..service import calls as call_service
from ..service import records
from ..service.inputs import InvalidInput
from . import people

bp = Blueprint("governance", __name__, url_prefix="/supervisor")

EXPORT_DAYS_MAX = 31


@bp.get("/break-glass")
@requires("break_glass.review")
def break_glass_list():
    """Every break-glass opening of a call held by the supervisor's centre: unreviewed first."""
    show_all = request.args.get("show") == "all"
    rows = records.break_glass_reviews(services(), actor(), include_reviewed=show_all)
    people.preload(r.reviewed_by for r in rows)  # named by the `who` filter, in one query
    resp = render_template("break_glass_reviews.html", rows=rows, reasons=BREAK_GLASS_REASONS,
                           show_all=show_all, errors={}, now=services().clock.now())
    return resp, 200, {"Cache-Control": "no-store"}


@bp.post("/break-glass/<int:grant_id>/review")
@requires("break_glass.review")
def break_glass_review(grant_id: int):
    try:
        records.review_break_glass(services(), actor(), grant_id, request.form.get("comment"))
    except call_service.NotFound:
        abort(404)
    except InvalidInput as exc:
        flash(f"Break-glass access {grant_id} not marked reviewed: " + "; ".join(exc.errors.values()), "error")
        return redirect(url_for("governance.break_glass_list") + f"#grant-{grant_id}")
    except call_service.Forbidden as exc:
        return render_template("error.html", code=403, title="You cannot review this", message=str(exc)), 403
    flash(f"Break-glass opening {grant_id} marked reviewed: your comment is on the record.", "success")
    return redirect(url_for("governance.break_glass_list"))


def _day(value: str | None, default):
    if not value:
        return default
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return day if day_in_range(day) else None  # far-off days overflowed the period's arithmetic


@bp.get("/calls.csv")
@requires("supervisor.view")
def calls_csv():
    """The supervisor's centre's calls logged in a period (at most 31 days), with the person's details,
    for case audits. Only calls the supervisor may see are included; each one is recorded in the access
    log as seen through this export."""
    svc = services()
    today = svc.clock.now().astimezone(LONDON).date()
    first = _day(request.args.get("from"), today - timedelta(days=6))
    last = _day(request.args.get("to"), today)
    problems = []
    if first is None:
        problems.append("from: give a date as YYYY-MM-DD.")
    if last is None:
        problems.append("to: give a date as YYYY-MM-DD.")
    if first and last and (last < first or (last - first).days >= EXPORT_DAYS_MAX):
        problems.append(f"to: the period must end on or after its start and cover at most {EXPORT_DAYS_MAX} days.")
    if problems:
        return Response("Calls not exported: " + " ".join(problems) + "\n", status=400, mimetype="text/plain")
    me = actor()
    start = datetime.combine(first, time.min, LONDON)
    end = datetime.combine(last + timedelta(days=1), time.min, LONDON)
    calls = records.export_centre_calls(svc, me, start, end, route="GET /supervisor/calls.csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["ref", "centre", "logged_at", "state", "urgency", "need", "nhs_number", "given_name",
                "family_name", "date_of_birth", "address_line_1", "town", "postcode", "locality", "caller_type",
                "consent", "summary"])
    for c in calls:
        w.writerow([safe_cell(v) for v in (
            c.ref, c.centre, c.logged_at.isoformat(), c.state, c.urgency, c.need, c.nhs_number, c.given_name,
            c.family_name, c.date_of_birth.isoformat() if c.date_of_birth else "", c.address_line_1, c.town,
            c.postcode, c.locality,
            c.caller_type, c.consent, c.summary)])
    name = f"ipoa-calls-{me.centre}-{first.isoformat()}-to-{last.isoformat()}.csv"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
