"""The JSON API's error answer, one shape for every 4xx and 5xx: {"error": {"code", "message", ...}}, with
`fields` (dotted path -> what is wrong) where a field is at fault and any other keys the refusal carries
(the OpenAPI document's Error schema, api/openapi.py). Built here only: by the API's error handlers
(api/error_handlers.py), its token and Idempotency-Key checks, and the app's HTTP error handlers when the
request is the API's (web/access.py, web/input_limits.py)."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request


def json_error(status: int, code: str, message: str, **extra: Any) -> Response:
    resp = jsonify(error={"code": code, "message": message, **extra})
    resp.status_code = status
    return resp


def is_api_request() -> bool:
    """Answer in JSON: a route of the API's blueprint, or any address under /api/ (one that matches no
    route has no blueprint)."""
    return request.blueprint == "api" or request.path.startswith("/api/")


__all__ = ["json_error", "is_api_request"]
