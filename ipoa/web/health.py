"""Liveness and readiness probes for load balancers; no sign-in, no data."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from ..entry.request_context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    svc = services()
    try:
        with svc.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        svc.redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        svc.engine()
        checks["workflows"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["workflows"] = f"error: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), (200 if ready else 503)
