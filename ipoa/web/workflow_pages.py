"""Each deployed workflow definition drawn (Mermaid, rendered in the browser from the vendored script),
with the live count of records in each state on that version. Without JavaScript the page still shows
the counts as a table and the Mermaid text itself."""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..domain.engine import CALL_WORKFLOW, REFERRAL_WORKFLOW
from ..entry.request_context import services
from ..entry.role_check import requires
from ..service.work_queues import workflow_state_counts

bp = Blueprint("workflows", __name__, url_prefix="/workflows")

_RECORDS = {CALL_WORKFLOW: "calls", REFERRAL_WORKFLOW: "referrals"}


def _records(name: str) -> str:
    return _RECORDS.get(name, "records")


@bp.get("/")
@requires("workflows.view")
def index():
    engine = services().engine()
    definitions = sorted(engine.definitions(), key=lambda d: (d.name, -d.version))
    latest = {d.name: engine.latest(d.name).version for d in definitions}
    return render_template("workflows.html", definitions=definitions, latest=latest, records=_records)


@bp.get("/<name>/<int:version>")
@requires("workflows.view")
def diagram(name: str, version: int):
    svc = services()
    engine = svc.engine()
    if not engine.has(name, version):
        abort(404)
    definition = engine.definition(name, version)
    counts = workflow_state_counts(svc, name, version)
    rows = [(s, counts.get(s.name, 0)) for s in definition.states.values()]
    return render_template(
        "workflows_diagram.html", definition=definition, rows=rows, total=sum(n for _, n in rows),
        mermaid=definition.mermaid(counts), records=_records(name),
        is_latest=engine.latest(name).version == version)
