"""Each workflow definition drawn, with the live count of records in each state. Being built."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for

from .access import requires

bp = Blueprint("workflows", __name__, url_prefix="/workflows")


@bp.get("/")
@requires("workflows.view")
def index():
    return redirect(url_for("web.supervisor"))
