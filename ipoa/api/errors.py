"""JSON error answers: one shape for every 4xx, with field-level messages where a field is at fault."""
from __future__ import annotations

from typing import Any

from flask import jsonify


def error(status: int, code: str, message: str, **extra: Any):
    body: dict[str, Any] = {"code": code, "message": message}
    body.update(extra)
    resp = jsonify(error=body)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="ipoa"'
    return resp
