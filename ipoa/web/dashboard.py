"""The supervisor's live dashboard (issue: supervisors' dashboard). Being built."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/supervisor")
