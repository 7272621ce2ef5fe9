"""The intake benchmark's baseline: the same app, token check and transaction, one plain insert.
Registered only when IPOA_BENCH_ENDPOINTS=1."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..adapters.orm import bench_pings
from ..web.access import csrf, services
from .v1 import _authenticate

bp = Blueprint("bench", __name__, url_prefix="/api/v1/bench")
csrf.exempt(bp)
bp.before_request(_authenticate)


@bp.post("/baseline")
def baseline():
    svc = services()
    with svc.uow() as uow:
        uow.session.execute(bench_pings.insert().values(created_at=svc.clock.now(), note="baseline"))
        uow.commit()
    return jsonify(ok=True), 201
