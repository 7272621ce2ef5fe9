"""Limits on what a request may carry, checked before anything acts on it.

- Body size: MAX_CONTENT_LENGTH (64 KiB) for every request, the API's JSON and the web forms alike; the
  largest legitimate body (a call's intake form with a 4,000-character summary, percent-encoded) is well
  under it. A larger declared Content-Length is refused with 413 before a byte of the body is read; a body
  without one (chunked) is read through a stream that stops at the limit. The API answers in its JSON
  error shape.
- JSON depth: at most MAX_JSON_DEPTH nested arrays and objects, checked on the raw bytes by a scan that
  keeps a counter (no recursion) before the JSON is decoded. Python's decoder recurses once per level:
  1,000 nested arrays raised RecursionError, a 500. Deeper is 400. NaN and Infinity (not JSON, and
  refused by PostgreSQL's json) are 400 too.
- Path and query parameters: a value with a control character (NUL included), a bidirectional override
  or an unpaired surrogate, or a path value longer than MAX_PATH_VALUE, never reaches a view: 404 for a
  path (there is no such thing), 400 naming the parameter for a query. PostgreSQL refuses a NUL in a
  query parameter, which was a 500 (GET /api/v1/calls/AB%00CD).
- 405 answers carry Allow (the error pages are rendered afresh and lost it).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from ..domain.validation import text_problem

MAX_CONTENT_LENGTH = 64 * 1024
MAX_FORM_PARTS = 200  # the longest form has a few dozen fields
MAX_JSON_DEPTH = 32  # the deepest legitimate body (data.consent_override.reason) is 3 levels
MAX_PATH_VALUE = 200  # references are 9 characters, referral ids 32, SMS link tokens 22


class JSONTooDeep(ValueError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"JSON nested more than {limit} levels deep")


class JSONNotStandard(ValueError):
    """NaN, Infinity or a number too large for a float: Python accepts them, JSON does not."""


# A JSON string with its escapes: brackets inside strings are not structure. Linear (the alternatives
# cannot both match a character), so no catastrophic backtracking.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does this JSON text nest arrays and objects more than `limit` deep? A counter over the brackets
    outside strings: no recursion, linear time, whatever the input (valid JSON or not)."""
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise JSONNotStandard(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONNotStandard("number too large")
    return value


def loads(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text safely: UTF-8 only (RFC 8259), depth checked first (JSONTooDeep), NaN and
    Infinity refused (JSONNotStandard). Each is a ValueError, like any other malformed JSON."""
    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    if json_depth_exceeds(text, limit):
        raise JSONTooDeep(limit)
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


class SafeJSONProvider(DefaultJSONProvider):
    """The app's JSON decoding (request.get_json anywhere: the API, any hook) goes through loads()."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def read_json_body() -> tuple[Any, tuple[int, str, str] | None]:
    """The request's JSON body, or (None, (status, code, message)) saying why not."""
    if not request.is_json:
        return None, (400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")
    raw = request.get_data(cache=True)  # 413 past the limit, before reading it all
    try:
        return loads(raw), None
    except JSONTooDeep as exc:
        return None, (400, "too_deep", f"The JSON is nested more than {exc.limit} levels deep.")
    except ValueError:
        return None, (400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")


def _is_api() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def _api_error(status: int, code: str, message: str, **extra: Any) -> Response:
    resp = jsonify(error={"code": code, "message": message, **extra})
    resp.status_code = status
    return resp


def _page(status: int, title: str, message: str):
    return render_template("error.html", code=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    # Form fields are held in memory: no field may be larger than the whole body may be.
    app.config["MAX_FORM_MEMORY_SIZE"] = min(app.config.get("MAX_FORM_MEMORY_SIZE") or MAX_CONTENT_LENGTH,
                                             app.config["MAX_CONTENT_LENGTH"])
    app.config["MAX_FORM_PARTS"] = min(app.config.get("MAX_FORM_PARTS") or MAX_FORM_PARTS, MAX_FORM_PARTS)
    app.json = SafeJSONProvider(app)

    @app.before_request
    def _check_request():
        limit = request.max_content_length
        if limit is not None and request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()  # answered without reading the body
        for name, value in (request.view_args or {}).items():
            if isinstance(value, str) and (len(value) > MAX_PATH_VALUE
                                           or text_problem(value, multiline=False) is not None):
                abort(404)  # no record has such a name
        for name, value in request.args.items(multi=True):
            if text_problem(name, multiline=False) or text_problem(value, multiline=True):
                return _bad_parameter(name)
        return None

    def _bad_parameter(name: str):
        safe = name if text_problem(name, multiline=False) is None else "?"
        message = (f"The query parameter '{safe[:40]}' must be given without control characters (such as NUL) "
                   "or bidirectional-text overrides.")
        if _is_api():
            return _api_error(400, "bad_request", message, fields={safe[:40]: message})
        return _page(400, "Bad request", message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        limit = request.max_content_length or MAX_CONTENT_LENGTH
        message = f"The request body is larger than {limit // 1024} KiB."
        if _is_api():
            return _api_error(413, "too_large", message)
        return _page(413, "Too large", message + " Nothing was saved.")

    @app.errorhandler(400)
    def _bad_request(exc: HTTPException):
        # Malformed form data or JSON read by werkzeug; the CSRF check's refusals have their own handler
        # where one is registered (a more specific class wins).
        if _is_api():
            return _api_error(400, "bad_request", "The request could not be read.")
        return _page(400, "Bad request", exc.description or "The request could not be read.")

    @app.after_request
    def _allow_on_405(resp: Response) -> Response:
        if resp.status_code == 405 and "Allow" not in resp.headers:
            exc = request.routing_exception
            if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return resp


__all__ = ["MAX_CONTENT_LENGTH", "MAX_JSON_DEPTH", "MAX_PATH_VALUE", "JSONTooDeep", "loads",
           "json_depth_exceeds", "read_json_body", "init_app"]
