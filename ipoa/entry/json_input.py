"""JSON from outside, decoded safely: the app's JSON provider (request.get_json anywhere) and the API's
body reader. Limits in docs/security.md, "Hostile input".

- Depth: at most MAX_JSON_DEPTH nested arrays and objects, checked on the raw text by a scan that keeps
  a counter (no recursion) before the JSON is decoded. Python's decoder recurses once per level: 1,000
  nested arrays raised RecursionError, a 500. Deeper is 400.
- NaN and Infinity (not JSON, and refused by PostgreSQL's json) and non-UTF-8 are 400 too.
- A key given twice in one object is 400 naming it: RFC 8259 leaves such an object's meaning to the parser,
  and Python's keeps the last value, so a proxy, a log or an audit tool that keeps the first would see
  another request than the one acted on ({"centre": "ASC", ..., "centre": "CNH"}).
The body's size is limited before it is read, for every request (web/input_limits.py).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from ..domain.validation import text_problem

MAX_JSON_DEPTH = 32  # the deepest legitimate body (data.consent_override.reason) is 3 levels


class JSONTooDeep(ValueError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"JSON nested more than {limit} levels deep")


class JSONNotStandard(ValueError):
    """NaN, Infinity or a number too large for a float: Python accepts them, JSON does not."""


class JSONDuplicateKey(ValueError):
    def __init__(self, key: str):
        self.key = key
        super().__init__("a key is given twice in one JSON object")


class UnreadableBody(Exception):
    """The request's body is not JSON the API can read: the status, code and message of its answer, and the
    field it names if any (api/error_handlers.py answers it)."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        self.status, self.code, self.message, self.fields = status, code, message, fields
        super().__init__(message)


# A JSON string with its escapes: brackets inside strings are not structure. Linear (the alternatives
# cannot both match a character), so no catastrophic backtracking.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does this JSON text nest arrays and objects more than `limit` deep? A counter over the brackets
    outside strings: no recursion, linear time, whatever the input (valid JSON or not)."""
    if text.count("[") + text.count("{") <= limit:
        # No deeper than it has opening brackets, wherever they are: an intake's body has three, and this
        # count costs a thirtieth of the scan (docs/performance.md, "Intake's app CPU cut").
        return False
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


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # only then look for which key it was
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONDuplicateKey(key)
            seen.add(key)
    return obj


def loads(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text safely: UTF-8 only (RFC 8259), depth checked first (JSONTooDeep), NaN and
    Infinity refused (JSONNotStandard), a key given twice in one object refused (JSONDuplicateKey). Each is
    a ValueError, like any other malformed JSON."""
    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    if json_depth_exceeds(text, limit):
        raise JSONTooDeep(limit)
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_object)


class SafeJSONProvider(DefaultJSONProvider):
    """The app's JSON decoding (request.get_json anywhere: the API, any hook) goes through loads()."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


_NOT_JSON = "The body must be a JSON object (Content-Type: application/json)."


def json_body() -> Any:
    """The request's JSON body (size-limited before it is read), or UnreadableBody saying why not. A
    body that is JSON but not an object is for the use case to refuse (422)."""
    if not request.is_json:
        raise UnreadableBody(400, "bad_request", _NOT_JSON)
    raw = request.get_data(cache=True)  # 413 past the limit, before reading it all
    try:
        return loads(raw)
    except JSONTooDeep as exc:
        raise UnreadableBody(400, "too_deep", f"The JSON is nested more than {exc.limit} levels deep.") from None
    except JSONDuplicateKey as exc:
        # The key as sent only if it is a plain name (it is echoed back); never its values.
        key = exc.key if len(exc.key) <= 40 and text_problem(exc.key, multiline=False) is None else "?"
        message = f"The JSON gives '{key}' more than once in one object: give each field once."
        raise UnreadableBody(400, "duplicate_key", message, fields={key: message}) from None
    except ValueError:
        raise UnreadableBody(400, "bad_request", _NOT_JSON) from None


__all__ = ["MAX_JSON_DEPTH", "JSONDuplicateKey", "JSONTooDeep", "JSONNotStandard", "UnreadableBody",
           "json_depth_exceeds", "loads", "SafeJSONProvider", "json_body"]
