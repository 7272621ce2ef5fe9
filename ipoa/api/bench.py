"""The benchmarks' baselines: the same app, token check and transaction as the endpoint measured, with
one plain statement (intake: one insert; dashboard: one indexed count). Registered only when
IPOA_BENCH_ENDPOINTS=1."""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from ..adapters.orm import bench_pings, calls
from ..entry.request_context import services
from .tokens import authenticate as _authenticate  # the API's token check (api/tokens.py)

bp = Blueprint("bench", __name__, url_prefix="/api/v1/bench")  # exempt from CSRF like the API (create_app)
bp.before_request(_authenticate)


@bp.post("/baseline")
def baseline():
    svc = services()
    with svc.uow() as uow:
        uow.session.execute(bench_pings.insert().values(created_at=svc.clock.now(), note="baseline"))
        uow.commit()
    return jsonify(ok=True), 201


@bp.get("/count")
def count():
    """bench/dashboard.py's baseline: `SELECT count(*) FROM calls WHERE state = :state` (ix_calls_state),
    with ?centre= also on the centre (ix_calls_centre_state)."""
    stmt = select(func.count()).select_from(calls).where(calls.c.state == request.args.get("state", "logged"))
    if request.args.get("centre"):
        stmt = stmt.where(calls.c.centre == request.args["centre"])
    with services().uow() as uow:
        n = uow.session.execute(stmt).scalar_one()
    return jsonify(count=n)
