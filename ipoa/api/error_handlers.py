"""The API's answers to what the use cases refuse, registered once on its blueprint (register()): a view
calls the use case and returns the answer, and a refusal raised on the way is answered here, in the JSON
error shape (ipoa/entry/json_errors.py) with the status, code and extra keys the OpenAPI document lists
(api/openapi.py). An exception with no handler here is a 500 (web/access.py answers it in JSON on /api).

Flask picks the handler of the most specific class: EscalationTooSoon (an InvalidInput) is a 429,
RouteNotOffered (an InvalidInput) a 400, and OutsideRelationship (a Forbidden) says whether break-glass
may open the call."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response

from ..domain.errors import GuardFailed, TriggerNotAllowed, VersionConflict
from ..entry.json_errors import json_error
from ..entry.json_input import UnreadableBody
from ..service.calls import DuplicateSuspected, EscalationTooSoon, OpenCall, RouteNotOffered
from ..service.errors import Forbidden, NotFound, OutsideRelationship
from ..service.inputs import InvalidInput


def _unreadable(exc: UnreadableBody) -> Response:
    return json_error(exc.status, exc.code, exc.message, **({"fields": exc.fields} if exc.fields else {}))


def _invalid(exc: InvalidInput) -> Response:
    return json_error(422, "invalid", "Some fields are not valid.", fields=exc.errors)


def _too_soon(exc: EscalationTooSoon) -> Response:
    # A limit on how often, not a fault in the request: 429, and when it may be repeated.
    resp = json_error(429, "too_soon", "This referral was escalated too recently.", fields=exc.errors,
                      retry_at=exc.retry_at.isoformat())
    resp.headers["Retry-After"] = str(exc.retry_after_seconds)
    return resp


def _not_offered(exc: RouteNotOffered) -> Response:
    # A claim of the routing table's out-of-hours alternative that the table does not make now.
    return json_error(400, "not_offered", "The routing table does not offer this route as its out-of-hours "
                      "alternative now.", fields=exc.errors)


def _version_conflict(exc: VersionConflict) -> Response:
    return json_error(409, "version_conflict", "The call changed since you loaded it; reload and try again.",
                      expected_version=exc.expected, current_version=exc.actual)


def _trigger_not_allowed(exc: TriggerNotAllowed) -> Response:
    return json_error(422, "trigger_not_allowed", str(exc), state=exc.state, allowed=exc.allowed,
                      fields={"trigger": f"Not allowed in state '{exc.state}'."})


def _guard_failed(exc: GuardFailed) -> Response:
    return json_error(422, "guard_failed", str(exc), fields=exc.errors)


def _not_found(exc: NotFound) -> Response:
    return json_error(404, "not_found", str(exc))


def _forbidden(exc: Forbidden) -> Response:
    return json_error(403, "forbidden", str(exc))


def _outside_relationship(exc: OutsideRelationship) -> Response:
    extra = {"break_glass": f"POST /api/v1/calls/{exc.ref}/break-glass with a reason"} if exc.break_glass else {}
    return json_error(403, "outside_relationship", str(exc), **extra)


def _possible_duplicate(exc: DuplicateSuspected) -> Response:
    return json_error(409, "possible_duplicate",
                      "Open calls exist for this NHS number; see them, or repeat with ?allow_duplicate=true.",
                      open_calls=[_open_call(c) for c in exc.open_calls])


def _open_call(c: OpenCall) -> dict:
    # Outside the user's relationship: that an open call exists, where, in what state, since when.
    out: dict[str, str | None] = {"ref": c.ref, "centre": c.centre, "state": c.state,
                                   "logged_at": c.logged_at.isoformat()}
    if c.visible:
        out.update(need=c.need, urgency=c.urgency)
    return out


ANSWERS: dict[type[Exception], Callable[..., Response]] = {
    UnreadableBody: _unreadable,
    InvalidInput: _invalid,
    EscalationTooSoon: _too_soon,
    RouteNotOffered: _not_offered,
    VersionConflict: _version_conflict,
    TriggerNotAllowed: _trigger_not_allowed,
    GuardFailed: _guard_failed,
    NotFound: _not_found,
    Forbidden: _forbidden,
    OutsideRelationship: _outside_relationship,
    DuplicateSuspected: _possible_duplicate,
}


def register(bp: Blueprint) -> None:
    for exc_type, answer in ANSWERS.items():
        bp.register_error_handler(exc_type, answer)


__all__ = ["ANSWERS", "register"]
