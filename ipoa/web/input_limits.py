"""Limits on what a request may carry, checked before anything acts on it.

- Body size: MAX_CONTENT_LENGTH (64 KiB) for every request, the API's JSON and the web forms alike; the
  largest legitimate body (a call's intake form with a 4,000-character summary, percent-encoded) is well
  under it. A larger declared Content-Length is refused with 413 before a byte of the body is read; a body
  without one (chunked) is read through a stream that stops at the limit. The API answers in its JSON
  error shape.
- JSON depth, NaN and Infinity: the app's JSON provider decodes through ipoa/entry/json_input.py, which
  says why.
- Path and query parameters: a value with a control character (NUL included), a bidirectional override
  or an unpaired surrogate, or a path value longer than MAX_PATH_VALUE, never reaches a view: 404 for a
  path (there is no such thing), 400 naming the parameter for a query. PostgreSQL refuses a NUL in a
  query parameter, which was a 500 (GET /api/v1/calls/AB%00CD). Twilio's webhooks check their signature
  first (403) and then the query parameters they read, each a 400 naming it.
- 405 answers carry Allow (the error pages are rendered afresh and lost it).
"""
from __future__ import annotations

from flask import Flask, Response, abort, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from ..domain.validation import text_problem
from ..entry.json_errors import is_api_request, json_error
from ..entry.json_input import SafeJSONProvider

MAX_CONTENT_LENGTH = 64 * 1024
MAX_FORM_PARTS = 200  # the longest form has a few dozen fields
MAX_PATH_VALUE = 200  # references are 9 characters, referral ids 32, SMS link tokens 22
TWILIO_WEBHOOKS = "/webhooks/twilio/"  # web/webhooks.py, web/voice_webhooks.py: signed, their own checks


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
        for value in (request.view_args or {}).values():
            if isinstance(value, str) and (len(value) > MAX_PATH_VALUE
                                           or text_problem(value, multiline=False) is not None):
                abort(404)  # no record has such a name
        if request.path.startswith(TWILIO_WEBHOOKS):
            # Twilio's signature covers the query (web/webhooks.py): checked first, so an unsigned or
            # mis-signed request gets its 403 whatever it carries, and learns nothing of how input is checked
            # (docs/telephony.md, "Bad input and retries"). Each webhook checks the parameters it reads.
            return None
        for name, value in request.args.items(multi=True):
            if text_problem(name, multiline=False) or text_problem(value, multiline=True):
                return _bad_parameter(name)
        return None

    def _bad_parameter(name: str):
        safe = name if text_problem(name, multiline=False) is None else "?"
        message = (f"The query parameter '{safe[:40]}' must be given without control characters (such as NUL) "
                   "or bidirectional-text overrides.")
        if is_api_request():
            return json_error(400, "bad_request", message, fields={safe[:40]: message})
        return _page(400, "Bad request", message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        limit = request.max_content_length or MAX_CONTENT_LENGTH
        message = f"The request body is larger than {limit // 1024} KiB."
        if is_api_request():
            return json_error(413, "too_large", message)
        return _page(413, "Too large", message + " Nothing was saved.")

    @app.errorhandler(400)
    def _bad_request(exc: HTTPException):
        # Malformed form data or JSON read by werkzeug; the CSRF check's refusals have their own handler
        # where one is registered (a more specific class wins).
        if is_api_request():
            return json_error(400, "bad_request", "The request could not be read.")
        return _page(400, "Bad request", exc.description or "The request could not be read.")

    @app.after_request
    def _allow_on_405(resp: Response) -> Response:
        if resp.status_code == 405 and "Allow" not in resp.headers:
            exc = request.routing_exception
            if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return resp


__all__ = ["MAX_CONTENT_LENGTH", "MAX_PATH_VALUE", "init_app"]
