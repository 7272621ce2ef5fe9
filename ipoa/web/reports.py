"""Reports for a period and a centre or service, with charts, CSV and the board view. Being built."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for

from .access import requires

bp = Blueprint("reports", __name__, url_prefix="/reports")


@bp.get("/")
@requires("reports.view")
def index():
    return redirect(url_for("web.supervisor"))
